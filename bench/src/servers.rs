//! The Rust servers under test, each run by the harness as `hunchensocket-bench serve-KIND
//! --workers N [--redis URL]` in its own process (pinned to CPU 0). Each binds `127.0.0.1:0` and
//! prints `listening on ADDR` once it accepts connections. With `--redis URL` (the Socket.IO
//! servers), rooms and broadcasts span every server on that Redis: ours through
//! hunchensocket-redis's classic (pub/sub) adapter, socketioxide through socketioxide-redis.
//!
//! The Socket.IO servers (ours and socketioxide) and the Node one (`node/server.js`) handle the
//! same events on `/`:
//!
//! - `echo` (args…, with an ack id) → acked with the same arguments;
//! - `echo-emit` (args…) → `echo` emitted back with the same arguments;
//! - `join` (room, with an ack id) → the socket joins the room, acked `"ok"`;
//! - `bcast` (room, n) → `tick` (n) emitted to every socket in the room;
//! - `gc` (with an ack id) → acked `"ok"` (Node collects garbage first).

use std::io::Write;

use tokio::net::TcpListener;

/// The tokio runtime of a server: `0` workers means `current_thread`, otherwise a multi-thread
/// runtime with that many workers.
fn runtime(workers: usize) -> tokio::runtime::Runtime {
    let mut builder = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder.enable_all().build().expect("tokio runtime")
}

async fn listen() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
    listener
}

type BoxError = Box<dyn std::error::Error>;

/// Runs the server `kind` until the process is killed; `redis` (a URL) joins it to a cluster.
pub fn serve(kind: &str, workers: usize, redis: Option<&str>) -> Result<(), String> {
    let rt = runtime(workers);
    let r: Result<(), BoxError> = match (kind, redis) {
        ("io", _) => rt.block_on(hunchensocket_io_server(redis)),
        ("sioxide", None) => rt.block_on(socketioxide_server()),
        ("sioxide", Some(url)) => rt.block_on(socketioxide_redis_server(url)),
        ("echo" | "fws", Some(_)) => return Err(format!("serve-{kind} takes no --redis")),
        ("echo", None) => rt.block_on(hunchensocket_echo_server()).map_err(Into::into),
        ("fws", None) => rt.block_on(fastwebsockets_server()).map_err(Into::into),
        (other, _) => {
            return Err(format!(
                "unknown server kind {other:?} (io, echo, sioxide, fws)"
            ));
        }
    };
    r.map_err(|e| format!("serve-{kind}: {e}"))
}

/// Ours: hunchensocket-io with the bench events; on Redis with `redis`.
async fn hunchensocket_io_server(redis: Option<&str>) -> Result<(), BoxError> {
    use hunchensocket_io::{AckSender, Event, Socket, SocketIo};

    let mut builder = SocketIo::builder().serve_client(false);
    if let Some(url) = redis {
        builder = with_redis_adapter(builder, url).await?;
    }
    let io = builder.build();
    io.ns("/", |socket: Socket| async move {
        socket.on("echo", |_socket: Socket, event: Event| async move {
            let (args, ack) = event.split();
            let _ = ack.send(&args);
        });
        socket.on("echo-emit", |socket: Socket, event: Event| async move {
            let _ = socket.emit("echo", &event.raw_args());
        });
        socket.on(
            "join",
            |socket: Socket, room: String, ack: AckSender| async move {
                socket.join(room);
                let _ = ack.send("ok");
            },
        );
        socket.on(
            "bcast",
            |socket: Socket, (room, n): (String, u64)| async move {
                let _ = socket.to(room).emit("tick", &n);
            },
        );
        socket.on("gc", |_socket: Socket, event: Event| async move {
            let _ = event.ack.send("ok");
        });
    });
    // On Redis: subscribed before it listens (in memory: at once).
    io.ready().await?;
    Ok(io.serve(listen().await).await?)
}

/// Our server's classic Redis adapter (pub/sub), connected to `url`.
async fn with_redis_adapter(
    builder: hunchensocket_io::Builder,
    url: &str,
) -> Result<hunchensocket_io::Builder, BoxError> {
    use hunchensocket_redis::{ClassicAdapter, Config};

    let adapter = ClassicAdapter::connect(Config::new(url)).await?;
    Ok(builder.adapter(adapter))
}

/// Ours, raw: the hunchensocket-core echo (the logic of examples/src/bin/echo.rs): every data
/// message back, in every WebSocket version (RFC 6455 and hixie-76 among them).
async fn hunchensocket_echo_server() -> std::io::Result<()> {
    use hunchensocket_core::{Accept, Handshake, Message, Server};

    let server = Server::new().dispatch(|_: &Handshake<'_>| {
        Some(Accept::session(|sender| {
            move |msg: Message| {
                let sender = sender.clone();
                async move {
                    if msg.is_data() {
                        let _ = sender.send(msg).await;
                    }
                }
            }
        }))
    });
    server.serve(listen().await).await
}

/// Peer: socketioxide (crates.io) with the bench events, served by hyper.
async fn socketioxide_server() -> Result<(), BoxError> {
    let (svc, io) = socketioxide::SocketIo::builder().build_svc();
    socketioxide_events(&io);
    Ok(serve_hyper(svc).await?)
}

/// Peer on Redis: socketioxide with socketioxide-redis (its pub/sub adapter; RESP3, which its
/// driver requires).
async fn socketioxide_redis_server(url: &str) -> Result<(), BoxError> {
    use socketioxide_redis::drivers::redis::redis_client as redis;
    use socketioxide_redis::{RedisAdapter, RedisAdapterCtr};

    let client = redis::Client::open(format!("{url}?protocol=resp3"))?;
    let adapter = RedisAdapterCtr::new_with_redis(&client).await?;
    let (svc, io) = socketioxide::SocketIo::builder()
        .with_adapter::<RedisAdapter<_>>(adapter)
        .build_svc();
    // The namespace subscribes to its channels before the server listens.
    socketioxide_events(&io).await?;
    Ok(serve_hyper(svc).await?)
}

/// The bench events on socketioxide's `/`, for any adapter; what `ns` returns (the adapter's
/// initialization) is the caller's to await.
fn socketioxide_events<A>(io: &socketioxide::SocketIo<A>) -> A::InitRes
where
    A: socketioxide::adapter::Adapter + socketioxide_core::adapter::DefinedAdapter,
{
    use serde_json::Value;
    use socketioxide::extract::{AckSender, Data, SocketRef};

    io.ns("/", async |socket: SocketRef<A>| {
        socket.on("echo", async |Data::<Value>(data), ack: AckSender<A>| {
            let _ = ack.send(&data);
        });
        socket.on(
            "echo-emit",
            async |socket: SocketRef<A>, Data::<Value>(data)| {
                let _ = socket.emit("echo", &data);
            },
        );
        socket.on(
            "join",
            async |socket: SocketRef<A>, Data::<String>(room), ack: AckSender<A>| {
                socket.join(room);
                let _ = ack.send("ok");
            },
        );
        socket.on(
            "bcast",
            async |socket: SocketRef<A>, Data::<(String, u64)>((room, n))| {
                let _ = socket.to(room).emit("tick", &n).await;
            },
        );
        socket.on("gc", async |ack: AckSender<A>| {
            let _ = ack.send("ok");
        });
    })
}

/// Serves a socketioxide service over hyper, one task per connection.
async fn serve_hyper<S>(svc: S) -> std::io::Result<()>
where
    S: hyper::service::HttpService<hyper::body::Incoming> + Clone + Send + 'static,
    S::Future: Send,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = listen().await;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .with_upgrades()
                .await;
        });
    }
}

/// Peer, raw floor: a fastwebsockets (crates.io) echo over hyper's upgrade.
async fn fastwebsockets_server() -> std::io::Result<()> {
    use fastwebsockets::{FragmentCollector, OpCode, upgrade};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};

    async fn session(fut: upgrade::UpgradeFut) -> Result<(), fastwebsockets::WebSocketError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                OpCode::Close => return Ok(()),
                _ => {}
            }
        }
    }

    async fn handle(
        mut req: http::Request<Incoming>,
    ) -> Result<http::Response<Empty<Bytes>>, fastwebsockets::WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut req)?;
        tokio::spawn(async move {
            let _ = session(fut).await;
        });
        Ok(response)
    }

    let listener = listen().await;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, hyper::service::service_fn(handle))
                .with_upgrades()
                .await;
        });
    }
}
