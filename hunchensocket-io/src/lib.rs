//! Engine.IO v4 and Socket.IO v5 over hunchensocket-core: named JSON events, acks both ways,
//! namespaces, rooms and broadcasts, middleware, heartbeats, polling and WebSocket (every
//! version the core speaks, hixie-76 included) with upgrade. The official Socket.IO clients
//! connect unchanged.
//!
//! A chat server in a few lines:
//!
//! ```no_run
//! use hunchensocket_io::{AckSender, Socket, SocketIo};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let io = SocketIo::new();
//!     io.ns("/", |socket: Socket| async move {
//!         socket.on("join", |socket: Socket, room: String| async move {
//!             socket.join(room);
//!         });
//!         socket.on("chat", |socket: Socket, (room, text): (String, String), ack: AckSender| async move {
//!             let _ = socket.to(room).emit("chat", &text);
//!             let _ = ack.send("delivered");
//!         });
//!     });
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     io.serve(listener).await
//! }
//! ```
#![forbid(unsafe_code)]

pub mod ack;
pub mod adapter;
pub mod args;
mod client;
mod client_js;
pub mod engine;
mod handler;
mod handshake;
mod namespace;
mod operators;
pub mod packet;
mod pending;
// Public for the fuzz targets only.
#[doc(hidden)]
pub mod reassembly;
mod remote;
mod server;
mod socket;

pub use ack::{AckError, AckSender, EmitError};
pub use adapter::{Adapter, AdapterFactory, BroadcastOptions, InMemory, LocalAdapter, Room};
pub use client::ClientData;
pub use engine::{AllowRequest, Cors, CorsOrigins, EngineConfig};
#[doc(hidden)]
pub use handler::shape;
pub use handler::{ConnectError, Event, EventError, EventHandler, RawArgs};
pub use namespace::{Namespace, ServerAckSender, ServerEmitError};
pub use operators::Operators;
pub use remote::RemoteSocket;
pub use server::{Builder, IoConfig, IoService, SocketIo};
pub use socket::{DisconnectReason, IntoRooms, Socket, SocketId};
