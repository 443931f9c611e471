//! A handler that panics ends its own socket (with a reason the application sees), never the
//! connection's other work: the connection keeps being served, its other namespaces too.

mod support;

use hunchensocket_io::{ConnectError, DisconnectReason, Socket, SocketIo};
use support::{PollingClient, WsClient, next, start};
use tokio::sync::mpsc;

async fn server() -> (
    SocketIo,
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<DisconnectReason>,
) {
    let io = SocketIo::new();
    let (reasons_tx, reasons) = mpsc::unbounded_channel();
    io.ns("/", move |socket: Socket| {
        let reasons_tx = reasons_tx.clone();
        async move {
            socket.on("boom", |_s: Socket| async move { panic!("boom at once") });
            socket.on("later", |_s: Socket| async move {
                tokio::task::yield_now().await;
                panic!("boom after an await")
            });
            // Panics when called, before it has made a future.
            socket.on("sync", |_s: Socket| {
                if true {
                    panic!("boom before any future");
                }
                std::future::ready(())
            });
            // Its arguments do not fit: the error hook runs, and panics.
            socket.on("typed", |_s: Socket, _n: u32| async {});
            socket.on_error(|_s, e| panic!("boom in the error hook: {e}"));
            socket.on("ping", |s: Socket| async move {
                let _ = s.emit("pong", &());
            });
            socket.on_disconnect(move |_s, reason| async move {
                let _ = reasons_tx.send(reason);
            });
        }
    });
    io.ns("/other", |socket: Socket| async move {
        socket.on("ping", |s: Socket| async move {
            let _ = s.emit("pong", &());
        });
    });
    io.ns("/broken", |_socket: Socket| async move {})
        .use_middleware(|_socket: Socket| async move {
            if true {
                panic!("boom in middleware");
            }
            Ok::<(), ConnectError>(())
        });
    let addr = start(&io).await;
    (io, addr, reasons)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_disconnects_its_socket_only() {
    let (io, addr, mut reasons) = server().await;
    // Kept open to the end, so that their sockets' later disconnects are not reported here.
    let mut clients = Vec::new();
    for event in ["boom", "later", "sync", "typed"] {
        let mut client = WsClient::join(addr).await;
        client.send("40/other,").await;
        assert!(client.next_text().await.unwrap().starts_with("40/other,{"));
        client.send(&format!(r#"42["{event}","x"]"#)).await;
        assert_eq!(client.next_text().await.as_deref(), Some("41"), "{event}");
        assert_eq!(
            next(&mut reasons).await,
            DisconnectReason::ServerNamespaceDisconnect
        );
        // The connection, its other namespace, and a new socket in `/` are served.
        client.send(r#"42/other,["ping"]"#).await;
        assert_eq!(
            client.next_text().await.as_deref(),
            Some(r#"42/other,["pong"]"#)
        );
        client.send("40").await;
        assert!(client.next_text().await.unwrap().starts_with("40{"));
        client.send(r#"42["ping"]"#).await;
        assert_eq!(client.next_text().await.as_deref(), Some(r#"42["pong"]"#));
        clients.push(client);
    }
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_over_polling() {
    let (io, addr, mut reasons) = server().await;
    let client = PollingClient::join(addr).await;
    let res = client.post(&[r#"42["boom"]"#]).await;
    assert_eq!((res.status, res.body.as_str()), (200, "ok"), "{res:?}");
    assert_eq!(client.get().await.body, "41");
    assert_eq!(
        next(&mut reasons).await,
        DisconnectReason::ServerNamespaceDisconnect
    );
    client.post(&["40"]).await;
    assert!(client.get().await.body.starts_with("40{"));
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_middleware_refuses_the_connection() {
    let (io, addr, _reasons) = server().await;
    let mut client = WsClient::open(addr).await;
    client.send("40/broken,").await;
    let answer = client.next_text().await.unwrap();
    assert!(answer.starts_with("44/broken,{\"message\":"), "{answer}");
    client.send("40/other,").await;
    assert!(client.next_text().await.unwrap().starts_with("40/other,{"));
    assert!(io.of("/broken").unwrap().sockets().is_empty());
    io.close().await;
}
