//! Admission into a namespace while connect middleware runs: the events a client sends before
//! it is admitted wait in a bounded queue, and a socket whose client leaves around its
//! admission is never left behind in the namespace.

mod support;

use std::sync::{Arc, Mutex};

use hunchensocket_io::adapter::{BroadcastOptions, Local};
use hunchensocket_io::{
    Adapter, Builder, DisconnectReason, LocalAdapter, Room, Socket, SocketId, SocketIo,
};
use serde_json::Value;
use support::{PollingClient, WsClient, eventually, next, start};
use tokio::sync::{mpsc, watch};

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

/// A gated `/` whose middleware registers a disconnect handler (reporting its reason) before it
/// waits, and whose connection handler reports that it ran.
async fn gated_with_reports(
    configure: impl FnOnce(Builder) -> Builder,
) -> (
    SocketIo,
    std::net::SocketAddr,
    watch::Sender<bool>,
    mpsc::UnboundedReceiver<DisconnectReason>,
    mpsc::UnboundedReceiver<Socket>,
) {
    let io = configure(SocketIo::builder()).build();
    let (open, gate) = watch::channel(false);
    let (reasons_tx, reasons) = mpsc::unbounded_channel();
    let (admitted_tx, admitted) = mpsc::unbounded_channel();
    io.ns("/", move |socket: Socket| {
        let _ = admitted_tx.send(socket);
        async {}
    })
    .use_middleware(move |socket: Socket| {
        let (mut gate, reasons_tx) = (gate.clone(), reasons_tx.clone());
        async move {
            socket.on_disconnect(move |_s, reason| async move {
                let _ = reasons_tx.send(reason);
            });
            let _ = gate.wait_for(|open| *open).await;
            Ok(())
        }
    });
    io.ns("/free", |_socket: Socket| async {});
    let addr = start(&io).await;
    (io, addr, open, reasons, admitted)
}

/// Nothing of the socket is left in `/`: neither the namespace nor its adapter knows it.
async fn nobody_in_main_namespace(io: &SocketIo) {
    let ns = io.of("/").unwrap();
    eventually("the namespace is empty", || {
        ns.sockets().is_empty() && ns.rooms().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_the_namespace_during_middleware_is_not_admitted() {
    let (io, addr, open, mut reasons, mut admitted) = gated_with_reports(|b| b).await;
    let mut client = WsClient::open(addr).await;
    client.send("40").await;
    client.send("41").await;
    // The DISCONNECT has been handled once a later packet is answered.
    client.send("40/free,").await;
    assert!(client.next_text().await.unwrap().starts_with("40/free,{"));
    open.send_replace(true);
    assert_eq!(
        next(&mut reasons).await,
        DisconnectReason::ClientNamespaceDisconnect
    );
    nobody_in_main_namespace(&io).await;
    assert!(admitted.try_recv().is_err(), "the connection handler ran");
    // The connection itself lives on.
    client.send("40/free,").await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_during_middleware_admits_nobody() {
    let (io, addr, open, mut reasons, mut admitted) = gated_with_reports(|b| b).await;
    let mut client = WsClient::open(addr).await;
    client.send("40").await;
    drop(client);
    eventually("the session is gone", || io.connections() == 0).await;
    open.send_replace(true);
    assert_eq!(next(&mut reasons).await, DisconnectReason::TransportClose);
    nobody_in_main_namespace(&io).await;
    assert!(admitted.try_recv().is_err(), "the connection handler ran");
    io.close().await;
}

/// The in-memory adapter, which runs a hook the first time a socket is added to its rooms (that
/// is, in the middle of its admission).
struct HookedAdapter {
    rooms: LocalAdapter,
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Adapter for HookedAdapter {
    fn add_all(&self, sid: &SocketId, rooms: &[Room]) {
        let hook = self.hook.lock().unwrap().take();
        self.rooms.add_all(sid, rooms);
        if let Some(hook) = hook {
            hook();
        }
    }
    fn del(&self, sid: &SocketId, room: &str) {
        self.rooms.del(sid, room);
    }
    fn del_all(&self, sid: &SocketId) {
        self.rooms.del_all(sid);
    }
    fn socket_rooms(&self, sid: &SocketId) -> Vec<Room> {
        self.rooms.socket_rooms(sid)
    }
    fn rooms(&self) -> Vec<Room> {
        self.rooms.rooms()
    }
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.rooms.sockets(opts)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_in_the_middle_of_admission_leaves_nothing_behind() {
    // The connection closes at the moment the socket is being added to the namespace: after
    // the middleware has let it in, before it counts as connected.
    let joining: Arc<Mutex<Option<Socket>>> = Arc::default();
    let slot = joining.clone();
    let adapter = Arc::new(HookedAdapter {
        rooms: LocalAdapter::new(),
        hook: Mutex::new(Some(Box::new(move || {
            let socket = slot.lock().unwrap().take().expect("the joining socket");
            socket.close_connection();
        }))),
    });
    let (io, addr, open, mut reasons, mut admitted) = gated_with_reports(move |b| {
        b.adapter(move |path: &str, _local: std::sync::Weak<dyn Local>| {
            if path == "/" {
                adapter.clone() as Arc<dyn Adapter>
            } else {
                Arc::new(LocalAdapter::new())
            }
        })
    })
    .await;
    let slot = joining.clone();
    io.of("/").unwrap().use_middleware(move |socket: Socket| {
        *slot.lock().unwrap() = Some(socket);
        async { Ok(()) }
    });
    let mut client = WsClient::open(addr).await;
    client.send("40").await;
    open.send_replace(true);
    let seen = client.closed().await;
    assert!(
        seen.iter().all(|p| !p.starts_with("40")),
        "admitted after its connection closed: {seen:?}"
    );
    assert_eq!(next(&mut reasons).await, DisconnectReason::ForcedClose);
    nobody_in_main_namespace(&io).await;
    if let Ok(socket) = admitted.try_recv() {
        assert!(!socket.connected(), "{socket:?} still connected");
    }
    io.close().await;
}
