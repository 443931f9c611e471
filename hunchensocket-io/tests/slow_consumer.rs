//! A client that stops reading while the server sends to it: the server's memory for it stays
//! bounded, volatile emits are dropped without ending it, and a normal emit over the limit ends
//! it as a slow consumer.

use std::time::Duration;

use hunchensocket_core::{Connector, Message};
use hunchensocket_io::ack::EmitError;
use hunchensocket_io::engine::SendError;
use hunchensocket_io::{DisconnectReason, Socket, SocketIo};
use tokio::sync::mpsc;

const LIMIT: usize = 256 * 1024;
const CHUNK: usize = 64 * 1024;
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_bounded_then_dropped() {
    // Flow control alone is under test: the write timeout (a peer that reads nothing for that
    // long is dropped) must not end the client first on a slow machine.
    let mut config = hunchensocket_io::IoConfig::default();
    config.engine.ws = config
        .engine
        .ws
        .with_write_timeout(Duration::from_secs(600));
    let io = SocketIo::builder().config(config).max_buffer(LIMIT).build();
    let (sockets_tx, mut sockets) = mpsc::unbounded_channel::<Socket>();
    let (reasons_tx, mut reasons) = mpsc::unbounded_channel::<DisconnectReason>();
    io.ns("/", move |socket: Socket| {
        let (sockets_tx, reasons_tx) = (sockets_tx.clone(), reasons_tx.clone());
        async move {
            socket.on_disconnect(move |_s, reason| async move {
                let _ = reasons_tx.send(reason);
            });
            let _ = sockets_tx.send(socket);
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.clone().serve(listener));

    // Join `/` over WebSocket, then never read again.
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = Connector::new().connect(&url).await.unwrap();
    let open = tokio::time::timeout(WAIT, ws.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(&open, Message::Text(t) if t.starts_with("0{")),
        "{open:?}"
    );
    ws.send("40").await.unwrap();
    let joined = tokio::time::timeout(WAIT, ws.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(&joined, Message::Text(t) if t.starts_with("40{")),
        "{joined:?}"
    );
    let socket = tokio::time::timeout(WAIT, sockets.recv())
        .await
        .unwrap()
        .unwrap();

    let payload = "x".repeat(CHUNK);
    // Volatile: once the client's queue is full, emits are dropped; the client stays.
    let mut dropped = 0;
    let mut most_held = 0usize;
    for _ in 0..2000 {
        if socket.volatile().emit("flood", &payload).is_err() {
            dropped += 1;
        }
        most_held = most_held.max(socket.buffered());
        tokio::task::yield_now().await;
    }
    assert!(dropped > 0, "some volatile emits were dropped");
    assert!(
        socket.connected(),
        "dropping volatile emits does not disconnect"
    );

    // Not volatile: the first emit past the limit ends the session as a slow consumer. What the
    // server holds for this client never passes the limit (the kernel's socket buffers take
    // the rest of what was accepted, and they are bounded by the kernel).
    let mut accepted = 0usize;
    let mut refused = false;
    for _ in 0..2000 {
        match socket.emit("flood", &payload) {
            Ok(()) => {
                accepted += CHUNK;
                most_held = most_held.max(socket.buffered());
            }
            Err(EmitError::Send(SendError::Full | SendError::Closed)) => {
                refused = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        tokio::task::yield_now().await;
    }
    assert!(
        refused,
        "the server kept queueing for a client that does not read"
    );
    assert!(
        most_held <= LIMIT,
        "held {most_held} bytes for a stalled client, over the {LIMIT}-byte limit"
    );
    assert!(
        most_held > LIMIT - 2 * CHUNK,
        "the queue filled up to the limit before the client was dropped ({most_held})"
    );
    assert!(
        accepted <= LIMIT,
        "accepted {accepted} bytes past a full queue"
    );
    let reason = tokio::time::timeout(WAIT, reasons.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason, DisconnectReason::SlowConsumer);
    assert!(!socket.connected());
    drop(ws);
    io.close().await;
}
