//! `conformance [--listen ADDR] [--redis URL [--redis-sharded] [--key PREFIX]] [--redis-streams URL] [--node NAME] [--recovery-ms N]`:
//! the server the official Engine.IO and Socket.IO protocol test suites expect, and a node of a
//! fleet on Redis (classic pub/sub, or sharded pub/sub on a Redis Cluster with
//! `--redis-sharded`, or the Redis Streams adapter with `--redis-streams URL`, which recovers
//! clients across nodes), with connection state recovery when `--recovery-ms N` gives its maximum
//! disconnection duration; what it serves is described in `hunchensocket_examples::conformance`.
//! It prints `listening on ADDR` once it accepts connections (and, with Redis, is subscribed).

use std::sync::Arc;

use hunchensocket_examples::{Args, bind, conformance, shutdown_signal};
use hunchensocket_redis::{ClassicAdapter, Config, ShardedAdapter, Status, StreamsAdapter};

const USAGE: &str = "usage: conformance [--listen ADDR] [--redis URL [--redis-sharded] [--key PREFIX]] [--redis-streams URL] [--node NAME] [--recovery-ms N]";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse(USAGE);
    hunchensocket_examples::init_logs();
    let mut options = conformance::Options {
        node: args.get_or("node", "hunchensocket").to_string(),
        ..Default::default()
    };
    if let Some(ms) = args.get("recovery-ms") {
        match ms.parse::<u64>() {
            Ok(ms) => options.recovery = Some(std::time::Duration::from_millis(ms)),
            Err(_) => {
                eprintln!("conformance: --recovery-ms takes a number of milliseconds\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    if let Some(url) = args.get("redis-streams") {
        // Recovery across nodes: sessions are kept in Redis as long as a drop may last.
        let ttl = options
            .recovery
            .unwrap_or(std::time::Duration::from_secs(120));
        let config = Config::new(url)
            .key(args.get_or("key", "socket.io"))
            .session_ttl(ttl);
        match StreamsAdapter::connect(config).await {
            Ok(adapter) => {
                adapter.on_status(|status: Status| eprintln!("conformance: redis {status:?}"));
                options.adapter = Arc::new(adapter);
            }
            Err(e) => {
                eprintln!("conformance: cannot connect to Redis at {url}: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(url) = args.get("redis") {
        let config = Config::new(url).key(args.get_or("key", "socket.io"));
        // Outages and recoveries of Redis, one line each on stderr.
        let report = |status: Status| eprintln!("conformance: redis {status:?}");
        let connected = if args.get("redis-sharded").is_some() {
            ShardedAdapter::connect(config).await.map(|a| {
                a.on_status(report);
                Arc::new(a) as _
            })
        } else {
            ClassicAdapter::connect(config).await.map(|a| {
                a.on_status(report);
                Arc::new(a) as _
            })
        };
        options.adapter = match connected {
            Ok(adapter) => adapter,
            Err(e) => {
                eprintln!("conformance: cannot connect to Redis at {url}: {e}");
                std::process::exit(1);
            }
        };
    }
    let (server, io) = conformance::server_with(&options);
    if let Err(e) = io.ready().await {
        eprintln!("conformance: Redis subscriptions failed: {e}");
        std::process::exit(1);
    }
    let listener = bind(args.get_or("listen", "127.0.0.1:3000")).await?;
    server
        .serve_with_shutdown(listener, async move {
            shutdown_signal().await;
            io.close().await;
        })
        .await
}
