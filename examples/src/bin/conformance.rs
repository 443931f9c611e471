//! `conformance --listen ADDR` (default `127.0.0.1:3000`): the server the official Engine.IO and
//! Socket.IO protocol test suites expect; what it serves is described in
//! `hunchensocket_examples::conformance`.

use hunchensocket_examples::{Args, bind, conformance, shutdown_signal};

const USAGE: &str = "usage: conformance [--listen ADDR]";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse(USAGE);
    let (server, io) = conformance::server();
    let listener = bind(args.get_or("listen", "127.0.0.1:3000")).await?;
    server
        .serve_with_shutdown(listener, async move {
            shutdown_signal().await;
            io.close().await;
        })
        .await
}
