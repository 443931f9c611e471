//! WebSockets for hyper 1.x on tokio, in every version a client may speak: hixie-75,
//! hixie-76 (hybi-00), hybi-07/08 and RFC 6455, all on one port beside ordinary HTTP.
//!
//! An echo server and a client talking to it:
//!
//! ```
//! use hunchensocket_core::{Accept, Connector, Handshake, Message, Server};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::new().dispatch(|_: &Handshake<'_>| {
//!     Some(Accept::session(|sender| {
//!         move |msg: Message| {
//!             let sender = sender.clone();
//!             async move {
//!                 if msg.is_data() {
//!                     let _ = sender.send(msg).await;
//!                 }
//!             }
//!         }
//!     }))
//! });
//! tokio::spawn(server.serve(listener));
//!
//! let (mut ws, _) = Connector::new().connect(&format!("ws://{addr}/")).await?;
//! ws.send("hello").await?;
//! assert_eq!(ws.recv().await.transpose()?, Some(Message::text("hello")));
//! ws.close(hunchensocket_core::CloseCode::NORMAL, "bye").await?;
//! # Ok(())
//! # }
//! ```
//!
//! The layers, from the bottom: [`handshake`] (pure functions over requests), [`codec`]
//! (sans-io framing), [`WebSocket`] (the async socket, split into [`Reader`] and [`Sender`]),
//! [`Upgrade`] (one hyper request), [`Server`] (an acceptor with dispatchers, TLS and graceful
//! shutdown), and [`Connector`] (the client).

#![forbid(unsafe_code)]

mod acceptor;
mod client;
pub mod codec;
mod config;
mod error;
pub mod handshake;
pub mod message;
mod socket;
pub mod tls;
mod upgrade;

pub use acceptor::{
    Accept, Body, BoxError, Dispatcher, Handshake, PeerAddr, Server, text_response,
};
pub use client::{Connector, connect};
pub use config::Config;
pub use error::{Error, ProtocolError, Refusal, Result};
pub use handshake::Version;
pub use message::{CloseCode, CloseFrame, Message, Utf8Bytes};
pub use socket::{Reader, Sender, WeakSender, WebSocket};
pub use tls::MaybeTlsStream;
pub use upgrade::{PendingSocket, Upgrade, Upgraded};
