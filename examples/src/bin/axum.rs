//! `axum --listen ADDR` (default `127.0.0.1:3001`): hunchensocket-io mounted in an axum router,
//! beside ordinary routes. `GET /` is axum's; `/socket.io/` is Socket.IO (polling and
//! WebSocket, upgrades included); `ping` events are acked with their argument.

use axum::Router;
use axum::routing::get;
use hunchensocket_examples::{Args, bind, shutdown_signal};
use hunchensocket_io::{AckSender, Socket, SocketIo};
use serde_json::Value;

const USAGE: &str = "usage: axum [--listen ADDR]";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse(USAGE);
    hunchensocket_examples::init_logs();
    let io = SocketIo::new();
    io.ns("/", |socket: Socket| async move {
        socket.on(
            "ping",
            |_socket: Socket, data: Value, ack: AckSender| async move {
                let _ = ack.send(&data);
            },
        );
    });
    let app = Router::new()
        .route("/", get(|| async { "an axum page beside Socket.IO\n" }))
        .route_service("/socket.io/", io.service());
    let listener = bind(args.get_or("listen", "127.0.0.1:3001")).await?;
    let shutdown_io = io.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            shutdown_io.close().await;
        })
        .await
}
