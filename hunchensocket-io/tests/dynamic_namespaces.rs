//! Dynamic namespaces from a hostile client: every path the predicate accepts makes a
//! namespace, so a client walking through `/room-0`, `/room-1`, ... would leave one behind per
//! path. An empty child namespace is removed when its last socket leaves (Socket.IO's
//! `cleanupEmptyChildNamespaces`), or when its only join is refused; a socket still being
//! admitted keeps it.

mod support;

use std::sync::Arc;

use hunchensocket_io::{ConnectError, DisconnectReason, Socket, SocketIo};
use serde_json::json;
use support::{PollingClient, WsClient, eventually, next, start};
use tokio::sync::{Notify, mpsc};

/// What a test sees of the server.
struct Server {
    io: SocketIo,
    addr: std::net::SocketAddr,
    /// Lets a held join through.
    release: Arc<Notify>,
    /// A join is being held.
    held: mpsc::UnboundedReceiver<()>,
    reasons: mpsc::UnboundedReceiver<DisconnectReason>,
}

/// A server with dynamic namespaces `/room-*` whose middleware refuses `{"refuse":true}` and
/// holds `{"slow":true}` until released; it reports every disconnect.
async fn server() -> Server {
    let io = SocketIo::new();
    let release = Arc::new(Notify::new());
    let (held_tx, held) = mpsc::unbounded_channel();
    let (reasons_tx, reasons) = mpsc::unbounded_channel();
    let template = io.dynamic_ns(
        |path| path.starts_with("/room-"),
        move |socket: Socket| {
            let reasons_tx = reasons_tx.clone();
            async move {
                socket.on_disconnect(move |_s, reason| async move {
                    let _ = reasons_tx.send(reason);
                });
            }
        },
    );
    let gate = release.clone();
    template.use_middleware(move |socket: Socket| {
        let (gate, held_tx) = (gate.clone(), held_tx.clone());
        async move {
            if socket.auth()["refuse"] == true {
                return Err(ConnectError::new("refused"));
            }
            if socket.auth()["slow"] == true {
                let released = gate.notified();
                let _ = held_tx.send(());
                released.await;
            }
            Ok(())
        }
    });
    io.ns("/static", |_socket: Socket| async {});
    let addr = start(&io).await;
    Server {
        io,
        addr,
        release,
        held,
        reasons,
    }
}

/// Joins `nsp` on an open connection; gives the answer.
async fn join(client: &mut WsClient, nsp: &str, auth: Option<serde_json::Value>) -> String {
    let auth = auth.map(|a| a.to_string()).unwrap_or_default();
    client.send(&format!("40{nsp},{auth}")).await;
    client.next_text().await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_child_namespace_is_removed() {
    let Server {
        io,
        addr,
        mut reasons,
        ..
    } = server().await;
    let mut client = WsClient::open(addr).await;
    // A client walking through a thousand paths leaves none behind.
    for i in 0..1_000 {
        let nsp = format!("/room-{i}");
        let answer = join(&mut client, &nsp, None).await;
        assert!(
            answer.starts_with(&format!("40{nsp},{{\"sid\"")),
            "{answer}"
        );
        assert!(io.of(&nsp).is_some());
        client.send(&format!("41{nsp},")).await;
        assert_eq!(
            next(&mut reasons).await,
            DisconnectReason::ClientNamespaceDisconnect
        );
        eventually("the namespace is removed", || io.of(&nsp).is_none()).await;
    }

    // Two sockets: the namespace stays until both have left.
    let mut other = WsClient::open(addr).await;
    assert!(
        join(&mut client, "/room-x", None)
            .await
            .starts_with("40/room-x,")
    );
    assert!(
        join(&mut other, "/room-x", None)
            .await
            .starts_with("40/room-x,")
    );
    client.send("41/room-x,").await;
    assert_eq!(
        next(&mut reasons).await,
        DisconnectReason::ClientNamespaceDisconnect
    );
    assert_eq!(io.of("/room-x").expect("still in use").sockets().len(), 1);
    // The last one goes with its connection.
    drop(other);
    assert_eq!(next(&mut reasons).await, DisconnectReason::TransportClose);
    eventually("the namespace is removed", || io.of("/room-x").is_none()).await;

    // A refused join leaves nothing either, over polling too.
    let answer = join(&mut client, "/room-r", Some(json!({"refuse": true}))).await;
    assert_eq!(answer, r#"44/room-r,{"message":"refused"}"#);
    assert!(io.of("/room-r").is_none());
    let polling = PollingClient::open(addr).await;
    polling.post(&[r#"40/room-p,{"refuse":true}"#]).await;
    assert_eq!(
        polling.get().await.body,
        r#"44/room-p,{"message":"refused"}"#
    );
    assert!(io.of("/room-p").is_none());

    // Namespaces registered with `ns` stay, empty or not.
    assert!(
        join(&mut client, "/static", None)
            .await
            .starts_with("40/static,")
    );
    client.send("41/static,").await;
    assert!(
        join(&mut client, "/static", None)
            .await
            .starts_with("40/static,")
    );
    assert!(io.of("/static").is_some());
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_admitted_while_the_last_one_leaves_keeps_the_namespace() {
    let Server {
        io,
        addr,
        release,
        mut held,
        mut reasons,
    } = server().await;
    let mut first = WsClient::open(addr).await;
    assert!(
        join(&mut first, "/room-1", None)
            .await
            .starts_with("40/room-1,")
    );
    // The second is held in the middleware while the first leaves.
    let mut second = WsClient::open(addr).await;
    second.send(r#"40/room-1,{"slow":true}"#).await;
    next(&mut held).await;
    first.send("41/room-1,").await;
    assert_eq!(
        next(&mut reasons).await,
        DisconnectReason::ClientNamespaceDisconnect
    );
    release.notify_one();
    let answer = second.next_text().await.expect("admitted");
    assert!(answer.starts_with("40/room-1,{\"sid\""), "{answer}");
    // The namespace it joined is the one the server finds, and new joins land in it.
    let ns = io.of("/room-1").expect("the namespace is kept");
    assert_eq!(ns.sockets().len(), 1);
    assert!(
        join(&mut first, "/room-1", None)
            .await
            .starts_with("40/room-1,")
    );
    assert_eq!(io.of("/room-1").unwrap().sockets().len(), 2);
    io.of("/room-1").unwrap().emit("hello", "all").unwrap();
    assert_eq!(
        second.next_text().await.as_deref(),
        Some(r#"42/room-1,["hello","all"]"#)
    );
    assert_eq!(
        first.next_text().await.as_deref(),
        Some(r#"42/room-1,["hello","all"]"#)
    );
    io.close().await;
}
