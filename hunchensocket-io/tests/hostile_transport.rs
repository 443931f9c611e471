//! Engine.IO transport abuse: unknown transports (`__proto__` and friends), a WebSocket
//! transport without an upgrade, an upgrade request with a body, a burst of concurrent polls
//! on one session, polling sessions that never poll, WebSocket sessions that never answer,
//! upgrades that never finish, a second WebSocket for a session that already has one, and a
//! POST whose body stalls. Each gets its documented answer; what the server holds for the
//! abuser returns to what it was (the engine's session count), and a bystander is served after.

mod support;

use std::time::Duration;

use hunchensocket_core::{Connector, MaybeTlsStream, Message, WebSocket};
use hunchensocket_io::{Builder, DisconnectReason, Event, Socket, SocketIo};
use support::{
    PollingClient, UPGRADE_HEADERS, WAIT, WsClient, error_code, eventually, http, next,
    raw_request, read_body, start,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// A server built by `configure` whose `message` event is answered `got` with its arguments,
/// and which reports every disconnect reason.
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
                let _ = s.emit("got", &event.args);
            });
            socket.on_disconnect(move |_s, reason| async move {
                let _ = reasons_tx.send(reason);
            });
        }
    });
    let addr = start(&io).await;
    (io, addr, reasons)
}

/// A fresh client is served: it joins over WebSocket and exchanges an event.
async fn bystander(addr: std::net::SocketAddr) {
    let mut client = WsClient::join(addr).await;
    client.send(r#"42["message","hi"]"#).await;
    assert_eq!(
        client.next_text().await.as_deref(),
        Some(r#"42["got",["hi"]]"#)
    );
}

/// The value of the `Content-Length` header of a response head (0 without one).
fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Sends an upgrade request for `path` (plus `extra` headers and `body`); gives the status and
/// the body of a refusal.
async fn upgrade_request(
    addr: std::net::SocketAddr,
    path: &str,
    extra: &str,
    body: &str,
) -> (u16, String) {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{UPGRADE_HEADERS}{extra}\r\n{body}");
    let (status, head, mut s) = raw_request(addr, request.as_bytes()).await;
    let status = status.unwrap_or_else(|| panic!("no answer to the upgrade of {path}"));
    let body = if status == 101 {
        String::new()
    } else {
        read_body(&mut s, content_length(&head)).await
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_transports_get_400_code_0() {
    let (io, addr, _reasons) = server(|b| b).await;
    let polling = PollingClient::join(addr).await;
    for transport in [
        "__proto__",
        "constructor",
        "toString",
        "hasOwnProperty",
        "webtransport",
        "flashsocket",
        "POLLING",
        "polling%00",
        "",
    ] {
        let path = format!("/socket.io/?EIO=4&transport={transport}");
        let res = http(addr, "GET", &path, "").await;
        assert_eq!((res.status, error_code(&res.body)), (400, 0), "{path}");
        let (status, body) = upgrade_request(addr, &path, "", "").await;
        assert_eq!((status, error_code(&body)), (400, 0), "upgrade {path}");
        // With a live session's id too: the transport is checked first.
        let path = format!("{path}&sid={}", polling.sid());
        let res = http(addr, "POST", &path, "40").await;
        assert_eq!((res.status, error_code(&res.body)), (400, 0), "{path}");
    }
    assert_eq!(io.connections(), 1, "no session was made");
    bystander(addr).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_transport_without_an_upgrade_gets_400_code_3() {
    let (io, addr, _reasons) = server(|b| b).await;
    let polling = PollingClient::join(addr).await;
    for path in [
        "/socket.io/?EIO=4&transport=websocket".to_string(),
        format!(
            "/socket.io/?EIO=4&transport=websocket&sid={}",
            polling.sid()
        ),
    ] {
        let res = http(addr, "GET", &path, "").await;
        assert_eq!((res.status, error_code(&res.body)), (400, 3), "{path}");
        let res = http(addr, "POST", &path, "40").await;
        assert_eq!((res.status, error_code(&res.body)), (400, 3), "{path}");
    }
    assert_eq!(io.connections(), 1, "no session was made, none was closed");
    polling.post(&[r#"42["message",1]"#]).await;
    assert_eq!(polling.get().await.body, r#"42["got",[1]]"#);
    bystander(addr).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_request_with_a_body_gets_400() {
    let (io, addr, _reasons) = server(|b| b).await;
    let path = "/socket.io/?EIO=4&transport=websocket";
    let body = "\u{81}\u{85}hello";
    for (extra, body) in [
        (format!("Content-Length: {}\r\n", body.len()), body),
        (
            "Transfer-Encoding: chunked\r\n".to_string(),
            "5\r\nhello\r\n0\r\n\r\n",
        ),
    ] {
        let (status, reason) = upgrade_request(addr, path, &extra, body).await;
        assert_eq!(status, 400, "{extra}: {reason}");
    }
    assert_eq!(io.connections(), 0, "no session was made");
    // An empty body is no body.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{UPGRADE_HEADERS}Content-Length: 0\r\n\r\n"
    );
    let (status, head, _open) = raw_request(addr, request.as_bytes()).await;
    assert_eq!(status, Some(101), "{head}");
    eventually("the session is open", || io.connections() == 1).await;
    bystander(addr).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_50_polls_on_one_session_closes_it() {
    let (io, addr, mut reasons) = server(|b| b).await;
    let polling = PollingClient::join(addr).await;
    let path = polling.path();
    let polls: Vec<_> = (0..50)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { http(addr, "GET", &path, "").await })
        })
        .collect();
    let mut refused = 0;
    for poll in polls {
        let res = poll.await.unwrap();
        match res.status {
            // The poll that was waiting is released with the close packet.
            200 => assert_eq!(res.body, "1", "{res:?}"),
            400 => {
                assert!([1, 3].contains(&error_code(&res.body)), "{res:?}");
                refused += 1;
            }
            _ => panic!("{res:?}"),
        }
    }
    assert!(refused >= 1, "only one GET may wait");
    assert_eq!(next(&mut reasons).await, DisconnectReason::TransportError);
    eventually("the session is gone", || io.connections() == 0).await;
    bystander(addr).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_that_never_poll_or_answer_are_freed_at_the_ping_timeout() {
    let heartbeat =
        |b: Builder| b.heartbeat(Duration::from_millis(250), Duration::from_millis(250));
    let (io, addr, mut reasons) = server(heartbeat).await;
    // Polling sessions that joined and never poll again, and some that never even joined.
    for _ in 0..10 {
        let _ = PollingClient::join(addr).await;
        let _ = PollingClient::open(addr).await;
    }
    // WebSocket sessions that joined and never read (so never answer a ping).
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(WsClient::join(addr).await);
    }
    assert!(io.connections() > 0);
    eventually("every session is freed", || io.connections() == 0).await;
    for _ in 0..20 {
        assert_eq!(next(&mut reasons).await, DisconnectReason::PingTimeout);
    }
    // The silent WebSockets were closed by the server.
    for mut client in silent {
        client.closed().await;
    }
    bystander(addr).await;
    io.close().await;
}

/// Opens a WebSocket for the session `sid`.
async fn websocket_for(addr: std::net::SocketAddr, sid: &str) -> WebSocket<MaybeTlsStream> {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (ws, _) = tokio::time::timeout(WAIT, Connector::new().connect(&url))
        .await
        .expect("connect in time")
        .expect("the handshake succeeds");
    ws
}

/// The next text message, or `None` once the server has closed the WebSocket.
async fn next_text(ws: &mut WebSocket<MaybeTlsStream>) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.recv())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Text(t))) => return Some(t.to_string()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Probes and upgrades a polling session to `ws`.
async fn finish_upgrade(ws: &mut WebSocket<MaybeTlsStream>) {
    ws.send("2probe").await.unwrap();
    assert_eq!(next_text(ws).await.as_deref(), Some("3probe"));
    ws.send("5").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_that_never_finish_are_dropped_at_the_upgrade_timeout() {
    let (io, addr, mut reasons) = server(|b| b.upgrade_timeout(Duration::from_millis(200))).await;
    let polling = PollingClient::join(addr).await;

    // A WebSocket that never probes, and one that probes and never sends the upgrade packet:
    // each is closed by the server, and the session lives on over polling.
    let mut silent = websocket_for(addr, polling.sid()).await;
    assert_eq!(next_text(&mut silent).await, None);
    let mut probing = websocket_for(addr, polling.sid()).await;
    probing.send("2probe").await.unwrap();
    assert_eq!(next_text(&mut probing).await.as_deref(), Some("3probe"));
    assert_eq!(next_text(&mut probing).await, None);
    polling.post(&[r#"42["message",1]"#]).await;
    let res = polling.get().await;
    assert!(res.body.ends_with(r#"42["got",[1]]"#), "{res:?}");

    // Nothing of those upgrades is left in the way: a real one completes.
    let mut ws = websocket_for(addr, polling.sid()).await;
    finish_upgrade(&mut ws).await;
    ws.send(r#"42["message",2]"#).await.unwrap();
    assert_eq!(
        next_text(&mut ws).await.as_deref(),
        Some(r#"42["got",[2]]"#)
    );
    ws.send("1").await.unwrap();
    assert_eq!(next(&mut reasons).await, DisconnectReason::TransportClose);
    eventually("the session is gone", || io.connections() == 0).await;
    bystander(addr).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_websocket_for_an_upgraded_session_is_accepted_then_closed() {
    // As the reference server does (engine.io `onWebSocket`: "transport had already been
    // upgraded" → `websocket.close()`), and as the official protocol suite expects: the
    // handshake completes, then the server closes that WebSocket. The first one is untouched.
    let (io, addr, _reasons) = server(|b| b).await;
    let polling = PollingClient::join(addr).await;
    let mut first = websocket_for(addr, polling.sid()).await;

    // While the first is upgrading (probed, no upgrade packet yet).
    first.send("2probe").await.unwrap();
    assert_eq!(next_text(&mut first).await.as_deref(), Some("3probe"));
    let mut second = websocket_for(addr, polling.sid()).await;
    assert_eq!(next_text(&mut second).await, None);

    // Once upgraded.
    first.send("5").await.unwrap();
    first.send(r#"42["message",1]"#).await.unwrap();
    assert_eq!(
        next_text(&mut first).await.as_deref(),
        Some(r#"42["got",[1]]"#)
    );
    let mut third = websocket_for(addr, polling.sid()).await;
    assert_eq!(next_text(&mut third).await, None);

    first.send(r#"42["message",2]"#).await.unwrap();
    assert_eq!(
        next_text(&mut first).await.as_deref(),
        Some(r#"42["got",[2]]"#)
    );
    assert_eq!(io.connections(), 1);
    // An unknown session is still refused before any handshake.
    let (status, body) = upgrade_request(
        addr,
        "/socket.io/?EIO=4&transport=websocket&sid=nope",
        "",
        "",
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, 1));
    bystander(addr).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_body_stalls_gets_408() {
    let (io, addr, mut reasons) = server(|b| b.post_timeout(Duration::from_millis(300))).await;
    assert_eq!(
        SocketIo::new().config().engine.post_timeout,
        Duration::from_secs(30),
        "the documented default"
    );
    for trickle in [false, true] {
        let polling = PollingClient::join(addr).await;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\n\
             Content-Length: 1000000\r\n\r\n42[\"message\",\"",
            polling.path()
        );
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        // A body that stops, or one that trickles a byte at a time and would take hours.
        let (mut read, mut write) = s.into_split();
        let trickler = tokio::spawn(async move {
            while trickle && write.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            write
        });
        let mut raw = Vec::new();
        tokio::time::timeout(
            WAIT,
            tokio::io::AsyncReadExt::read_to_end(&mut read, &mut raw),
        )
        .await
        .expect("answered, and the connection closed, in time")
        .ok();
        let raw = String::from_utf8_lossy(&raw);
        assert!(raw.starts_with("HTTP/1.1 408 "), "{raw}");
        trickler.abort();
        assert_eq!(next(&mut reasons).await, DisconnectReason::TransportError);
        eventually("the session is gone", || io.connections() == 0).await;
    }
    bystander(addr).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_request_refuses_handshakes_with_403() {
    // Refused: requests with an `X-Deny` header (its value is the message; empty, the default).
    let (io, addr, _reasons) = server(|b| {
        b.allow_request(|req: &http::request::Parts| {
            assert!(
                req.extensions
                    .get::<hunchensocket_core::PeerAddr>()
                    .is_some(),
                "the client's address is known"
            );
            match req.headers.get("x-deny") {
                Some(message) => Err(String::from_utf8_lossy(message.as_bytes()).into_owned()),
                None => Ok(()),
            }
        })
    })
    .await;
    let handshake = "/socket.io/?EIO=4&transport=polling";
    let deny = |message: &str| format!("X-Deny: {message}\r\n");
    for (header, message) in [
        (deny(""), "Forbidden"),
        (deny(r#"no "token""#), r#"no "token""#),
    ] {
        let request = format!("GET {handshake} HTTP/1.1\r\nHost: {addr}\r\n{header}\r\n");
        let (status, head, mut s) = raw_request(addr, request.as_bytes()).await;
        assert_eq!(status, Some(403), "{head}");
        let body = read_body(&mut s, content_length(&head)).await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json, serde_json::json!({"code": 4, "message": message}));
        // Over WebSocket too: refused before the handshake.
        let (status, body) =
            upgrade_request(addr, "/socket.io/?EIO=4&transport=websocket", &header, "").await;
        assert_eq!((status, error_code(&body)), (403, 4), "{body}");
    }
    assert_eq!(io.connections(), 0);
    // Requests of an open session are not handshakes: the hook is not asked.
    let polling = PollingClient::join(addr).await;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\n{}Content-Length: 0\r\n\r\n",
        polling.path(),
        deny("")
    );
    let post = polling.post(&[r#"42["message",1]"#]);
    let ((status, head, mut s), _) = tokio::join!(raw_request(addr, request.as_bytes()), post);
    assert_eq!(status, Some(200), "{head}");
    let body = read_body(&mut s, content_length(&head)).await;
    assert_eq!(body, r#"42["got",[1]]"#);
    bystander(addr).await;
    io.close().await;
}
