//! Events from a hostile client: names that are not strings, reserved names, arguments nested
//! 100 000 levels deep. The answers follow socket.io-parser 4.2 (`isPayloadValid`): an EVENT
//! must be an array whose first element is a number or a string that is not one of
//! `RESERVED_EVENTS`; anything else makes the decoder throw, and the Node server closes the
//! connection. Here such a packet ends the client's session with a parse error (disconnect
//! reason "parse error"), over WebSocket and over polling, while a bystander is served.
//! A number is a valid name: the event is dispatched under the number's JSON text (`42` →
//! `"42"`, as a Node `EventEmitter` keys it).

mod support;

use hunchensocket_io::{DisconnectReason, Event, Socket, SocketIo};
use support::{PollingClient, WsClient, eventually, next, start};
use tokio::sync::mpsc;

/// A server whose `message` event and `42` event answer `got` with their arguments, and which
/// reports every disconnect reason.
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
            for name in ["message", "42"] {
                socket.on(name, |s: Socket, event: Event| async move {
                    let _ = s.emit("got", &event.args);
                });
            }
            socket.on_disconnect(move |_s, reason| async move {
                let _ = reasons_tx.send(reason);
            });
        }
    });
    let addr = start(&io).await;
    (io, addr, reasons)
}

/// A client that is served normally: an event and its answer.
async fn still_served(client: &mut WsClient) {
    client.send(r#"42["message","hi"]"#).await;
    assert_eq!(
        client.next_text().await.as_deref(),
        Some(r#"42["got",["hi"]]"#)
    );
}

/// Sends `packet` over a WebSocket and over polling; each session must end with a parse error
/// without the event reaching a handler, while a bystander keeps being served.
async fn rejected(packet: &str) {
    let (io, addr, mut reasons) = server().await;
    let mut bystander = WsClient::join(addr).await;
    still_served(&mut bystander).await;

    let mut client = WsClient::join(addr).await;
    client.send(packet).await;
    assert_eq!(next(&mut reasons).await, DisconnectReason::ParseError);
    let seen = client.closed().await;
    assert!(
        seen.iter().all(|p| !p.starts_with(r#"42["got""#)),
        "over WebSocket, {packet:.60} reached a handler: {seen:?}"
    );
    still_served(&mut bystander).await;

    let client = PollingClient::join(addr).await;
    client.post(&[packet]).await;
    assert_eq!(next(&mut reasons).await, DisconnectReason::ParseError);
    eventually("the polling session is gone", || io.connections() == 1).await;
    let res = client.get().await;
    assert_eq!(res.status, 400, "{res:?}");
    still_served(&mut bystander).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_are_not_strings_or_numbers_end_the_session() {
    for packet in [
        r#"42[{"toString":"foo"}]"#,
        r#"42[null,"bar"]"#,
        r#"42[true,"x"]"#,
        r#"42[["message"],"x"]"#,
        "42[]",
        r#"451-[{"_placeholder":true,"num":0}]"#,
    ] {
        rejected(packet).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_names_end_the_session() {
    for name in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        rejected(&format!(r#"42["{name}","x"]"#)).await;
        // A binary event is refused from its header, before any attachment.
        rejected(&format!(
            r#"451-["{name}",{{"_placeholder":true,"num":0}}]"#
        ))
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_is_a_name() {
    let (io, addr, _reasons) = server().await;
    let mut ws = WsClient::join(addr).await;
    ws.send(r#"42[42,"x"]"#).await;
    assert_eq!(ws.next_text().await.as_deref(), Some(r#"42["got",["x"]]"#));
    let polling = PollingClient::join(addr).await;
    polling.post(&[r#"42[42,"y"]"#]).await;
    let res = polling.get().await;
    assert_eq!(res.body, r#"42["got",["y"]]"#);
    // Names that are other numbers have no handler here: ignored, the session lives on.
    ws.send(r#"42[4.5,"x"]"#).await;
    still_served(&mut ws).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_nested_100_000_deep_end_the_session() {
    // serde_json stops at 128 levels: a parse error, not a stack overflow.
    let depth = 100_000;
    let packet = format!(
        r#"42["message",{}{}]"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    rejected(&packet).await;
    // Objects too.
    let packet = format!(
        r#"42["message",{}1{}]"#,
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    );
    rejected(&packet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_nested_within_the_limit_are_delivered() {
    let (io, addr, _reasons) = server().await;
    let mut ws = WsClient::join(addr).await;
    let nested = format!("{}{}", "[".repeat(100), "]".repeat(100));
    ws.send(&format!(r#"42["message",{nested}]"#)).await;
    assert_eq!(
        ws.next_text().await,
        Some(format!(r#"42["got",[{nested}]]"#))
    );
    io.close().await;
}
