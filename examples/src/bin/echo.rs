//! `echo --listen ADDR [--tls-cert PEM --tls-key PEM]`: echoes every message on every path, in
//! every WebSocket version; a plain `GET /` is answered `200` by the pass-through service.

use bytes::Bytes;
use http_body_util::Full;
use hunchensocket_core::{Accept, Config, Handshake, Message, Server};
use hunchensocket_examples::{Args, bind, shutdown_signal};

const USAGE: &str = "usage: echo [--listen ADDR] [--tls-cert PEM --tls-key PEM]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse(USAGE);
    hunchensocket_examples::init_logs();
    // Autobahn's cases 9.3.1 and 9.4.1 send 4 MiB in 64-byte fragments (65 536 frames and
    // more), past the default cap of 16 384 (the cap of `ws`): allow a frame per 4 bytes.
    let config = Config::default()
        .with_max_message_size(16 << 20)
        .with_max_frame_size(16 << 20)
        .with_max_fragments(1 << 20);
    let mut server = Server::new()
        .config(config)
        .fallback(|req: http::Request<_>| async move {
            let body = if req.uri().path() == "/" {
                "hunchensocket echo: connect a WebSocket to any path\n"
            } else {
                "not found\n"
            };
            let status = if req.uri().path() == "/" { 200 } else { 404 };
            http::Response::builder()
                .status(status)
                .header("content-type", "text/plain; charset=utf-8")
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap_or_default()
        })
        .dispatch(|hs: &Handshake<'_>| {
            let echo = Accept::session(|sender| {
                move |msg: Message| {
                    let sender = sender.clone();
                    async move {
                        if msg.is_data() {
                            let _ = sender.send(msg).await;
                        }
                    }
                }
            });
            // Whatever subprotocol the client offers first is spoken here (echoed).
            Some(echo.first_protocol(hs))
        });
    match (args.get("tls-cert"), args.get("tls-key")) {
        (Some(cert), Some(key)) => server = server.tls_pem(cert, key)?,
        (None, None) => {}
        _ => return Err("--tls-cert and --tls-key go together".into()),
    }
    let listener = bind(args.get_or("listen", "127.0.0.1:9001")).await?;
    server
        .serve_with_shutdown(listener, shutdown_signal())
        .await?;
    Ok(())
}
