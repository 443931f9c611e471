//! The soak's server, `hunchensocket-bench serve-soak`: hunchensocket-io with the bench events
//! and the admin events the soak reads its figures from.

use std::io::Write as _;

use serde_json::json;

/// `serve-soak`: the bench events of `serve-io` (`echo`, `join`, `bcast`) plus two admin events:
/// `stats`, acked with `{connections, sockets, rooms, tasks, rss, heap, allocator}`: Engine.IO connections
/// (`io.connections()`), sockets and rooms of `/` on this node, the runtime's alive tokio tasks,
/// this process's resident set in bytes (/proc/self/statm), the bytes the program holds on the
/// heap (counted by [`crate::alloc`], 0 when not counted) and the allocator's name; and `trim`,
/// acked `"ok"` once the allocator has handed its free memory back
/// ([`crate::alloc::release_free_memory`]).
pub fn serve(workers: usize) -> Result<(), String> {
    let mut builder = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let rt = builder.enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(soak_server())
        .map_err(|e| format!("serve-soak: {e}"))
}

async fn soak_server() -> std::io::Result<()> {
    use hunchensocket_io::{AckSender, Event, Socket, SocketIo};

    let io = SocketIo::builder().serve_client(false).build();
    let handle = io.clone();
    io.ns("/", move |socket: Socket| {
        let io = handle.clone();
        async move {
            socket.on("echo", |_socket: Socket, event: Event| async move {
                let (args, ack) = event.split();
                let _ = ack.send(&args);
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
            socket.on("trim", |_socket: Socket, event: Event| async move {
                crate::alloc::release_free_memory();
                let _ = event.ack.send("ok");
            });
            socket.on("stats", move |socket: Socket, event: Event| {
                let io = io.clone();
                async move {
                    let ns = socket.namespace();
                    let stats = json!({
                        "connections": io.connections(),
                        "sockets": ns.sockets().len(),
                        "rooms": ns.rooms().len(),
                        "tasks": tokio::runtime::Handle::current().metrics().num_alive_tasks(),
                        "rss": statm_rss(),
                        "heap": crate::alloc::in_use().1.unwrap_or(0),
                        "allocator": crate::alloc::in_use().0,
                    });
                    let _ = event.ack.send(&stats);
                }
            });
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", listener.local_addr()?);
    let _ = out.flush();
    io.serve(listener).await
}

/// This process's resident set in bytes: the second field of /proc/self/statm, in pages.
fn statm_rss() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * if page > 0 { page as u64 } else { 4096 }
}
