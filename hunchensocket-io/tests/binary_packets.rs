//! Binary packets from a hostile client: a header declaring too many attachments, attachments
//! past the payload limit, placeholders that name no attachment, text or binary out of turn.
//! Each ends that client's session with a parse error, over WebSocket and over polling, and the
//! other clients are served as before.

mod support;

use hunchensocket_io::{Builder, DisconnectReason, Event, IoConfig, Socket, SocketIo};
use support::{PollingClient, WsClient, b64, eventually, next, start};
use tokio::sync::mpsc;

/// What a test client sends: an Engine.IO text packet or a binary message.
#[derive(Clone, Debug)]
enum Frame {
    Text(String),
    Bin(Vec<u8>),
}

fn text(t: &str) -> Frame {
    Frame::Text(t.to_string())
}

fn bin(len: usize) -> Frame {
    Frame::Bin(vec![7; len])
}

/// A server whose `message` event answers `got` with its number of attachments, and which
/// reports every disconnect reason.
async fn server(
    configure: impl FnOnce(Builder) -> Builder,
) -> (
    SocketIo,
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<DisconnectReason>,
) {
    let io = configure(SocketIo::builder()).build();
    let (reasons_tx, reasons) = mpsc::unbounded_channel();
    io.ns("/", move |socket: Socket| {
        let reasons_tx = reasons_tx.clone();
        async move {
            socket.on("message", |s: Socket, event: Event| async move {
                let _ = s.emit("got", &event.attachments.len());
            });
            socket.on_disconnect(move |_s, reason| async move {
                let _ = reasons_tx.send(reason);
            });
        }
    });
    let addr = start(&io).await;
    (io, addr, reasons)
}

/// A client that is served normally: a binary event and its answer.
async fn still_served(client: &mut WsClient) {
    client
        .send(r#"451-["message",{"_placeholder":true,"num":0}]"#)
        .await;
    client.send_binary(&[1, 2, 3]).await;
    assert_eq!(client.next_text().await.as_deref(), Some(r#"42["got",1]"#));
}

/// Sends `frames` over a WebSocket and over polling; each session must end with a parse
/// error while a bystander keeps being served.
async fn rejected(frames: &[Frame], configure: impl Fn(Builder) -> Builder) {
    let (io, addr, mut reasons) = server(&configure).await;
    let mut bystander = WsClient::join(addr).await;
    still_served(&mut bystander).await;

    // WebSocket.
    let mut client = WsClient::join(addr).await;
    for frame in frames {
        match frame {
            Frame::Text(t) => client.send(t).await,
            Frame::Bin(b) => client.send_binary(b).await,
        }
    }
    assert_eq!(next(&mut reasons).await, DisconnectReason::ParseError);
    let seen = client.closed().await;
    assert!(
        seen.iter().all(|p| !p.starts_with("42[\"got\"")),
        "over WebSocket, {frames:?} reached the handler: {seen:?}"
    );
    still_served(&mut bystander).await;

    // Polling: one packet per POST (a body holding them all could pass max_payload and be
    // refused for that instead).
    let client = PollingClient::join(addr).await;
    for frame in frames {
        let packet = match frame {
            Frame::Text(t) => t.clone(),
            Frame::Bin(b) => b64(b),
        };
        client.post(&[&packet]).await;
    }
    assert_eq!(next(&mut reasons).await, DisconnectReason::ParseError);
    eventually("the polling session is gone", || io.connections() == 1).await;
    let res = client.get().await;
    assert_eq!(res.status, 400, "{res:?}");
    still_served(&mut bystander).await;
    io.close().await;
}

fn defaults(b: Builder) -> Builder {
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_with_too_many_attachments_is_refused_at_once() {
    // Trillions declared: refused before any binary arrives, whatever follows.
    rejected(&[text(r#"45999999999999-["message"]"#), bin(10)], defaults).await;
    // Past the default limit of 10.
    rejected(&[text(r#"4511-["message"]"#)], defaults).await;
    rejected(&[text(r#"463-/,1[]"#)], |b| b.max_attachments(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attachment_limit_itself_is_accepted() {
    let (io, addr, _reasons) = server(defaults).await;
    let placeholders: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#))
        .collect();
    let mut client = WsClient::join(addr).await;
    client
        .send(&format!(r#"4510-["message",{}]"#, placeholders.join(",")))
        .await;
    for i in 0..10u8 {
        client.send_binary(&[i]).await;
    }
    assert_eq!(client.next_text().await.as_deref(), Some(r#"42["got",10]"#));
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_past_max_payload_end_the_session() {
    // Each attachment fits the payload limit; together they do not.
    let header = r#"453-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]"#;
    rejected(&[text(header), bin(1500), bin(1500), bin(1500)], |b| {
        b.max_payload(4000)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_past_max_payload_ends_the_session_at_once() {
    // Found by the attachments fuzz target: with a WebSocket message limit above the payload
    // limit, such a header was held until its first attachment came (a client need not send
    // it).
    let (io, addr, mut reasons) = server(|b| {
        let mut config = IoConfig::default();
        config.engine = config.engine.with_max_payload(200);
        config.engine.ws.max_message_size = 10_000;
        b.config(config)
    })
    .await;
    let mut client = WsClient::join(addr).await;
    let header = format!(
        r#"451-["message",{{"_placeholder":true,"num":0}},"{}"]"#,
        "x".repeat(300)
    );
    client.send(&header).await;
    assert_eq!(next(&mut reasons).await, DisconnectReason::ParseError);
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholders_must_name_an_attachment() {
    for placeholder in [
        r#"{"_placeholder":true,"num":1}"#,
        r#"{"_placeholder":true,"num":-1}"#,
        r#"{"_placeholder":true,"num":"0"}"#,
        r#"{"_placeholder":true,"num":0.5}"#,
        r#"{"_placeholder":true}"#,
    ] {
        let header = format!(r#"451-["message",[{placeholder}]]"#);
        rejected(&[Frame::Text(header), bin(3)], defaults).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_packet_announcing_no_attachment_has_no_placeholder() {
    // Found by the attachments fuzz target: the placeholder names an attachment that never
    // comes, yet the packet used to reach the handler.
    rejected(
        &[text(r#"450-["message",{"_placeholder":true,"num":0}]"#)],
        defaults,
    )
    .await;
    // Without one it is an event with no attachments.
    let (io, addr, _reasons) = server(defaults).await;
    let mut client = WsClient::join(addr).await;
    client.send(r#"450-["message",{"num":0}]"#).await;
    assert_eq!(client.next_text().await.as_deref(), Some(r#"42["got",0]"#));
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_while_attachments_are_awaited_ends_the_session() {
    let header = r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
    rejected(&[text(header), bin(3), text(r#"42["message"]"#)], defaults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_without_a_header_ends_the_session() {
    rejected(&[bin(3)], defaults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volatile_binary_emit_is_queued_whole_or_not_at_all() {
    // Over polling the queue is counted exactly (each message's length plus one), so the room
    // left can be set to fit a binary packet's header but not its attachment.
    let io = SocketIo::builder().max_buffer(1000).build();
    let (sockets_tx, mut sockets) = mpsc::unbounded_channel();
    io.ns("/", move |socket: Socket| {
        let _ = sockets_tx.send(socket);
        async {}
    });
    let addr = start(&io).await;
    let client = PollingClient::join(addr).await;
    let socket = next(&mut sockets).await;

    let filler = "x".repeat(900); // `2["f","x…"]`: 910 bytes queued
    socket.volatile().emit("f", &filler).unwrap();
    let attachment = bytes::Bytes::from(vec![1u8; 500]);
    let dropped = socket.volatile().emit("b", &attachment);
    assert!(dropped.is_err(), "there was no room for the attachment");
    assert!(
        socket.connected(),
        "a dropped volatile emit does not disconnect"
    );

    // What the client gets: the filler alone, never a header without its attachment.
    let res = client.get().await;
    let packets: Vec<&str> = res.body.split('\x1e').collect();
    assert_eq!(
        packets.len(),
        1,
        "sent without its attachment: {:?}",
        packets.last()
    );
    assert_eq!(packets[0], format!(r#"42["f","{filler}"]"#));

    // With room again, the same emit goes out whole.
    socket.volatile().emit("b", &attachment).unwrap();
    let res = client.get().await;
    let packets: Vec<&str> = res.body.split('\x1e').collect();
    assert_eq!(
        packets,
        [
            r#"451-["b",{"_placeholder":true,"num":0}]"#.to_string(),
            b64(&attachment)
        ]
    );
    io.close().await;
}
