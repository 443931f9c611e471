//! The Rust servers under test, each run by the harness as `hunchensocket-bench serve-KIND
//! --workers N` in its own process (pinned to CPU 0). Each binds `127.0.0.1:0` and prints
//! `listening on ADDR` once it accepts connections.
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

/// Runs the server `kind` until the process is killed.
pub fn serve(kind: &str, workers: usize) -> Result<(), String> {
    let rt = runtime(workers);
    match kind {
        "io" => rt.block_on(hunchensocket_io_server()),
        "echo" => rt.block_on(hunchensocket_echo_server()),
        "sioxide" => rt.block_on(socketioxide_server()),
        "fws" => rt.block_on(fastwebsockets_server()),
        other => {
            return Err(format!(
                "unknown server kind {other:?} (io, echo, sioxide, fws)"
            ));
        }
    }
    .map_err(|e| format!("serve-{kind}: {e}"))
}

/// Ours: hunchensocket-io with the bench events.
async fn hunchensocket_io_server() -> std::io::Result<()> {
    use hunchensocket_io::{AckSender, Event, Socket, SocketIo};

    let io = SocketIo::builder().serve_client(false).build();
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
    io.serve(listen().await).await
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
async fn socketioxide_server() -> std::io::Result<()> {
    use serde_json::Value;
    use socketioxide::SocketIo;
    use socketioxide::extract::{AckSender, Data, SocketRef};

    let (svc, io) = SocketIo::builder().build_svc();
    io.ns("/", async |socket: SocketRef| {
        socket.on("echo", async |Data::<Value>(data), ack: AckSender| {
            let _ = ack.send(&data);
        });
        socket.on(
            "echo-emit",
            async |socket: SocketRef, Data::<Value>(data)| {
                let _ = socket.emit("echo", &data);
            },
        );
        socket.on(
            "join",
            async |socket: SocketRef, Data::<String>(room), ack: AckSender| {
                socket.join(room);
                let _ = ack.send("ok");
            },
        );
        socket.on(
            "bcast",
            async |socket: SocketRef, Data::<(String, u64)>((room, n))| {
                let _ = socket.to(room).emit("tick", &n).await;
            },
        );
        socket.on("gc", async |ack: AckSender| {
            let _ = ack.send("ok");
        });
    });
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
