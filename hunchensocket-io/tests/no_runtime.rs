//! Handles used from a thread that has no tokio runtime (a plain `std::thread`, a C callback):
//! disconnecting a socket and closing a connection must not panic, and what they start (close
//! frames, disconnect handlers) still runs, on the runtime the server runs on.

mod support;

use hunchensocket_io::{DisconnectReason, Socket, SocketIo};
use support::{PollingClient, WsClient, eventually, next, start};
use tokio::sync::mpsc;

/// Runs `f` on a new thread without a runtime; panics there fail the test.
fn off_runtime(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f)
        .join()
        .expect("no panic outside the runtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_and_close_from_a_thread_without_a_runtime() {
    let io = SocketIo::new();
    let (sockets_tx, mut sockets) = mpsc::unbounded_channel();
    let (reasons_tx, mut reasons) = mpsc::unbounded_channel();
    io.ns("/", move |socket: Socket| {
        let (reasons_tx, sockets_tx) = (reasons_tx.clone(), sockets_tx.clone());
        async move {
            socket.on_disconnect(move |_s, reason| async move {
                let _ = reasons_tx.send(reason);
            });
            let _ = sockets_tx.send(socket);
        }
    });
    let addr = start(&io).await;

    // Leaving a namespace: the client gets its DISCONNECT, the disconnect handler runs.
    let mut client = WsClient::join(addr).await;
    let socket = next(&mut sockets).await;
    off_runtime(move || socket.disconnect());
    assert_eq!(client.next_text().await.as_deref(), Some("41"));
    assert_eq!(
        next(&mut reasons).await,
        DisconnectReason::ServerNamespaceDisconnect
    );

    // Closing a WebSocket connection: the client sees the close.
    client.send("40").await;
    assert!(client.next_text().await.unwrap().starts_with("40{"));
    let socket = next(&mut sockets).await;
    off_runtime(move || socket.close_connection());
    assert_eq!(next(&mut reasons).await, DisconnectReason::ForcedClose);
    client.closed().await;

    // The same over polling.
    let polling = PollingClient::join(addr).await;
    let socket = next(&mut sockets).await;
    off_runtime(move || socket.disconnect());
    assert_eq!(polling.get().await.body, "41");
    assert_eq!(
        next(&mut reasons).await,
        DisconnectReason::ServerNamespaceDisconnect
    );
    polling.post(&["40"]).await;
    assert!(polling.get().await.body.starts_with("40{"));
    let socket = next(&mut sockets).await;
    off_runtime(move || socket.close_connection());
    assert_eq!(next(&mut reasons).await, DisconnectReason::ForcedClose);
    eventually("every session is gone", || io.connections() == 0).await;
    io.close().await;
}
