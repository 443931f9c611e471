//! The server the official Engine.IO and Socket.IO protocol test suites expect (see the
//! `conformance` binary), as a library for the binary and the project's own tests.
//!
//! - `/engine.io/`: a bare Engine.IO server that echoes every message.
//! - `/socket.io/`: a Socket.IO server. Namespaces `/` and `/custom` emit `auth` with the
//!   handshake's auth data on connect. On `/`: `message` → `message-back` with the same
//!   arguments; `message-with-ack` → acked with the same arguments; `server-ack` with
//!   arguments A → the server emits `server-ack` with A asking for an ack (1000 ms) and, when
//!   acked with B, emits `server-ack-result` with B. Also `join` (room name) and `to-room`
//!   (room, text) for broadcast tests.
//!
//! Both: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1 000 000, CORS for any origin;
//! Socket.IO connectTimeout 1000 ms.

use std::sync::Arc;
use std::time::Duration;

use hunchensocket_core::Server;
use hunchensocket_io::engine::{
    CloseReason, Engine, EngineConfig, Handler, HandshakeInfo, Payload, Session,
};
use hunchensocket_io::{Cors, CorsOrigins, Event, Socket, SocketIo};

/// The bare Engine.IO echo.
struct Echo;

impl Handler for Echo {
    type Data = ();
    fn data(&self, _info: &HandshakeInfo) {}
    fn on_open(&self, _session: &Arc<Session<()>>) {}
    fn on_message(&self, session: &Arc<Session<()>>, payload: Payload) {
        let _ = session.send(payload, false);
    }
    fn on_close(&self, _session: &Arc<Session<()>>, _reason: CloseReason) {}
}

fn any_origin() -> Cors {
    Cors {
        origins: CorsOrigins::Any,
        credentials: false,
    }
}

fn engine_config(path: &str) -> EngineConfig {
    EngineConfig::default()
        .with_path(path)
        .with_heartbeat(Duration::from_millis(300), Duration::from_millis(200))
        .with_max_payload(1_000_000)
        .with_cors(any_origin())
}

async fn on_connect(socket: Socket) {
    let _ = socket.emit("auth", socket.auth());
}

fn socket_io() -> SocketIo {
    let io = SocketIo::builder()
        .config({
            let mut config = hunchensocket_io::IoConfig::default();
            config.engine = engine_config("/socket.io/");
            config.connect_timeout = Duration::from_millis(1000);
            config
        })
        .build();
    io.ns("/", |socket: Socket| async move {
        socket.on("message", |socket: Socket, event: Event| async move {
            let _ = socket.emit("message-back", &event.raw_args());
        });
        socket.on(
            "message-with-ack",
            |_socket: Socket, event: Event| async move {
                let (args, ack) = event.split();
                let _ = ack.send(&args);
            },
        );
        socket.on("server-ack", |socket: Socket, event: Event| async move {
            let answer = socket.emit_with_ack_raw(
                "server-ack",
                &event.raw_args(),
                Duration::from_millis(1000),
            );
            if let Ok(b) = answer.await {
                let _ = socket.emit("server-ack-result", &b);
            }
        });
        socket.on("join", |socket: Socket, room: String| async move {
            socket.join(room);
        });
        socket.on(
            "to-room",
            |socket: Socket, (room, text): (String, String)| async move {
                let _ = socket.to(room).emit("room-message", &text);
            },
        );
        on_connect(socket).await;
    });
    io.ns("/custom", on_connect);
    io
}

/// The conformance server: serve it on a listener; close the [`SocketIo`] on shutdown.
pub fn server() -> (Server, SocketIo) {
    let engine = Engine::new(engine_config("/engine.io/"), Echo);
    let io = socket_io();
    let routed = io.clone();
    let server = Server::new().fallback(move |req: http::Request<hyper::body::Incoming>| {
        let (engine, io) = (engine.clone(), routed.clone());
        async move {
            if engine.matches(&req) {
                engine.handle(req).await
            } else if io.matches(&req) {
                io.handle(req).await
            } else {
                hunchensocket_core::text_response(http::StatusCode::NOT_FOUND, "not found\n")
            }
        }
    });
    (server, io)
}
