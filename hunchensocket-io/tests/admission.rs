//! Admission into a namespace while connect middleware runs: the events a client sends before
//! it is admitted wait in a bounded queue.

mod support;

use hunchensocket_io::{Builder, Socket, SocketIo};
use serde_json::Value;
use support::{PollingClient, WsClient, eventually, start};
use tokio::sync::watch;

/// A server whose `/` admits sockets only once `open` is set, and whose `/free` admits at
/// once; both answer `message` with `echo`.
async fn gated(
    configure: impl FnOnce(Builder) -> Builder,
) -> (SocketIo, std::net::SocketAddr, watch::Sender<bool>) {
    let io = configure(SocketIo::builder()).build();
    let (open, gate) = watch::channel(false);
    let echo = |socket: Socket| async move {
        socket.on("message", |s: Socket, arg: Value| async move {
            let _ = s.emit("echo", &arg);
        });
    };
    io.ns("/", echo).use_middleware(move |_socket: Socket| {
        let mut gate = gate.clone();
        async move {
            let _ = gate.wait_for(|open| *open).await;
            Ok(())
        }
    });
    io.ns("/free", echo);
    let addr = start(&io).await;
    (io, addr, open)
}

/// A client of `/free`, served at once.
async fn bystander(addr: std::net::SocketAddr) -> WsClient {
    let mut client = WsClient::open(addr).await;
    client.send("40/free,").await;
    let answer = client.next_text().await.unwrap();
    assert!(answer.starts_with("40/free,{"), "{answer}");
    client
}

async fn still_served(client: &mut WsClient) {
    client.send(r#"42/free,["message","hi"]"#).await;
    assert_eq!(
        client.next_text().await.as_deref(),
        Some(r#"42/free,["echo","hi"]"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_before_admission_wait_and_are_handled_in_order() {
    let (io, addr, open) = gated(|b| b).await;
    let mut client = WsClient::open(addr).await;
    client.send("40").await;
    for i in 0..10 {
        client.send(&format!(r#"42["message",{i}]"#)).await;
    }
    open.send_replace(true);
    let answer = client.next_text().await.unwrap();
    assert!(answer.starts_with("40{\"sid\":"), "{answer}");
    for i in 0..10 {
        assert_eq!(client.next_text().await, Some(format!(r#"42["echo",{i}]"#)));
    }
    io.close().await;
}

/// Sends `40` and then `events` while the middleware holds the socket; the session must end,
/// over WebSocket and over polling, and the bystander be served.
async fn too_many_before_admission(events: &[String], configure: impl Fn(Builder) -> Builder) {
    let (io, addr, open) = gated(configure).await;
    let mut other = bystander(addr).await;

    let mut client = WsClient::open(addr).await;
    client.send("40").await;
    for event in events {
        client.send(event).await;
    }
    let seen = client.closed().await;
    assert!(seen.is_empty(), "{seen:?}");
    eventually("the WebSocket session is gone", || io.connections() == 1).await;
    still_served(&mut other).await;

    let client = PollingClient::open(addr).await;
    client.post(&["40"]).await;
    for event in events {
        client.post(&[event]).await;
    }
    eventually("the polling session is gone", || io.connections() == 1).await;
    assert_eq!(client.get().await.status, 400);
    still_served(&mut other).await;

    // Letting the middleware finish now admits nobody.
    open.send_replace(true);
    still_served(&mut other).await;
    assert!(io.of("/").unwrap().sockets().is_empty());
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_events_before_admission_end_the_session() {
    let events: Vec<String> = (0..300).map(|i| format!(r#"42["message",{i}]"#)).collect();
    too_many_before_admission(&events, |b| b).await;
    let events: Vec<String> = (0..4).map(|i| format!(r#"42["message",{i}]"#)).collect();
    too_many_before_admission(&events, |b| b.max_pending_events(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_bytes_before_admission_end_the_session() {
    let big = format!(r#"42["message","{}"]"#, "x".repeat(400_000));
    too_many_before_admission(&[big.clone(), big.clone(), big], |b| b).await;
    let small = format!(r#"42["message","{}"]"#, "x".repeat(600));
    too_many_before_admission(&[small.clone(), small], |b| b.max_pending_bytes(1000)).await;
}
