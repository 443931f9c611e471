//! Protocol-level tests of the Engine.IO v4 / Socket.IO v5 server against the conformance setup
//! (the behaviours the official protocol suites check; see /work/shared/protocols.md §5–7).

use std::time::{Duration, Instant};

use hunchensocket_core::Version;
use hunchensocket_tests::io::{
    Echo, Frame, Polling, Ws, b64, get, open_packet, packets, post, sio, sio_join, start,
    start_with_echo, until_waiting_polls,
};
use serde_json::json;

const EIO: &str = "/engine.io/";
const SIO: &str = "/socket.io/";

// ---------------------------------------------------------------------------------------------
// Engine.IO: handshake and refusals

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_over_polling() {
    let server = start().await;
    let res = get(server.addr, &format!("{EIO}?EIO=4&transport=polling")).await;
    assert_eq!(res.status, 200);
    let open = open_packet(&res.text());
    assert_eq!(open["upgrades"], json!(["websocket"]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_over_websocket() {
    let server = start().await;
    let (_ws, open) = Ws::open(server.addr, EIO).await;
    assert_eq!(open["upgrades"], json!([]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_eio_version() {
    let server = start().await;
    for query in [
        "EIO=3&transport=polling",
        "transport=polling",
        "EIO=abc&transport=polling",
    ] {
        get(server.addr, &format!("{EIO}?{query}"))
            .await
            .assert_error(5);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_transport() {
    let server = start().await;
    for query in ["EIO=4&transport=abc", "EIO=4"] {
        get(server.addr, &format!("{EIO}?{query}"))
            .await
            .assert_error(0);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_handshake_method() {
    let server = start().await;
    post(server.addr, &format!("{EIO}?EIO=4&transport=polling"), "")
        .await
        .assert_error(2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_unknown_sid() {
    let server = start().await;
    let path = format!("{EIO}?EIO=4&transport=polling&sid=nope");
    get(server.addr, &path).await.assert_error(1);
    post(server.addr, &path, "4hello").await.assert_error(1);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Engine.IO: messages

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_text_packet_over_polling() {
    let server = start().await;
    let mut p = Polling::open(server.addr, EIO).await;
    p.send(&["4hello"]).await;
    assert_eq!(p.next().await, "4hello");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_text_packets_over_polling() {
    let server = start().await;
    let p = Polling::open(server.addr, EIO).await;
    let res = p.post("4hello\x1e4€uro\x1e4third").await;
    assert_eq!((res.status, res.text().as_str()), (200, "ok"));
    let res = p.get().await;
    assert_eq!(res.status, 200);
    assert_eq!(packets(&res.text()), ["4hello", "4€uro", "4third"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_binary_over_polling() {
    let server = start().await;
    let p = Polling::open(server.addr, EIO).await;
    let bin = format!("b{}", b64(&[1, 2, 3, 4]));
    assert_eq!(bin, "bAQIDBA==");
    let res = p.post(&format!("4hello\x1e{bin}")).await;
    assert_eq!(res.status, 200);
    let res = p.get().await;
    assert_eq!(res.status, 200);
    assert_eq!(packets(&res.text()), ["4hello", bin.as_str()]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_binary_over_websocket() {
    let server = start().await;
    let (mut ws, _) = Ws::open(server.addr, EIO).await;
    ws.send("4hello").await;
    ws.send_binary(&[1, 2, 3, 4]).await;
    assert_eq!(ws.next().await, Frame::Text("4hello".into()));
    assert_eq!(ws.next().await, Frame::Binary(vec![1, 2, 3, 4]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_packet_format_closes_polling_session() {
    let server = start().await;
    let p = Polling::open(server.addr, EIO).await;
    let res = p.post("abc").await;
    assert_eq!(res.status, 400, "{:?}", res.text());
    p.get().await.assert_error(1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_packet_format_closes_websocket_session() {
    let server = start().await;
    let (mut ws, _) = Ws::open(server.addr, EIO).await;
    ws.send("abc").await;
    let seen = ws.closed_within(Duration::from_secs(2), true).await;
    assert!(seen.is_empty(), "{seen:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_polls_close_the_session() {
    let server = start().await;
    let p = Polling::open(server.addr, EIO).await;
    let (a, b) = tokio::join!(p.get(), p.get());
    let mut statuses = [(a.status, a.text()), (b.status, b.text())];
    statuses.sort();
    assert_eq!(statuses[0].0, 200, "{statuses:?}");
    assert_eq!(
        statuses[0].1, "1",
        "the first poll ends with a close packet"
    );
    assert_eq!(statuses[1].0, 400, "{statuses:?}");
    p.get().await.assert_error(1);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Engine.IO: heartbeat and close

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_over_polling() {
    let server = start().await;
    let p = Polling::open(server.addr, EIO).await;
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1200) {
        let res = p.get().await;
        assert_eq!(res.status, 200, "{:?}", res.text());
        assert_eq!(res.text(), "2");
        pings += 1;
        p.send(&["3"]).await;
    }
    assert!(pings >= 3, "{pings} pings in 1.2 s");
    // Still alive.
    p.send(&["4still"]).await;
    let res = p.get().await;
    assert_eq!(res.status, 200);
    assert!(packets(&res.text()).contains(&"4still".to_string()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_over_websocket() {
    let server = start().await;
    let (mut ws, _) = Ws::open(server.addr, EIO).await;
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1200) {
        let frame = ws.recv_within(Duration::from_secs(2)).await;
        assert_eq!(frame, Some(Frame::Text("2".into())));
        pings += 1;
        ws.send("3").await;
    }
    assert!(pings >= 3, "{pings} pings in 1.2 s");
    ws.send("4still").await;
    assert_eq!(ws.next_text().await, "4still");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_closes_polling_session() {
    let server = start().await;
    let p = Polling::open(server.addr, EIO).await;
    let started = Instant::now();
    // Poll (receiving pings) but never answer them: the session must end.
    loop {
        let res = p.get().await;
        if res.status == 400 {
            res.assert_error(1);
            break;
        }
        let body = res.text();
        assert!(body == "2" || body == "1", "{body:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "still open");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450),
        "closed early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "closed late: {elapsed:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_closes_websocket_session() {
    let server = start().await;
    let (mut ws, _) = Ws::open(server.addr, EIO).await;
    let started = Instant::now();
    let seen = ws.closed_within(Duration::from_secs(2), false).await;
    assert!(seen.is_empty(), "{seen:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450),
        "closed early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "closed late: {elapsed:?}"
    );
    server.shutdown().await;
}

/// Client sends `1` while a GET is pending; returns the pending GET's answer.
async fn close_with_pending_poll(
    p: &Polling,
    echo: &Echo,
) -> hunchensocket_tests::io::HttpResponse {
    let pending = p.get();
    let close = async {
        until_waiting_polls(echo, 1).await;
        p.post("1").await
    };
    let (polled, closed) = tokio::join!(pending, close);
    assert_eq!(closed.status, 200, "{:?}", closed.text());
    assert_eq!(closed.text(), "ok");
    assert_eq!(polled.status, 200);
    polled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forceful_close_over_polling() {
    let (server, echo) = start_with_echo().await;
    let p = Polling::open(server.addr, EIO).await;
    let polled = close_with_pending_poll(&p, &echo).await;
    assert!(
        ["1", "6"].contains(&polled.text().as_str()),
        "{:?}",
        polled.text()
    );
    p.get().await.assert_error(1);
    p.post("4late").await.assert_error(1);
    server.shutdown().await;
}

/// The official engine.io-protocol suite ("should forcefully close the session") expects the
/// pending poll to be released with a noop `6` (the reference server's polling `onClose`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forceful_close_releases_pending_poll_with_noop() {
    let (server, echo) = start_with_echo().await;
    let p = Polling::open(server.addr, EIO).await;
    let polled = close_with_pending_poll(&p, &echo).await;
    assert_eq!(
        polled.text(),
        "6",
        "the pending poll is released with a noop"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forceful_close_over_websocket() {
    let server = start().await;
    let (mut ws, _) = Ws::open(server.addr, EIO).await;
    ws.send("1").await;
    let seen = ws.closed_within(Duration::from_millis(500), false).await;
    assert!(seen.is_empty(), "{seen:?}");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Engine.IO: upgrade

/// Upgrades a fresh polling session to WebSocket; returns both (the polling side for its sid).
async fn upgraded(addr: std::net::SocketAddr, echo: &Echo) -> (Polling, Ws) {
    let p = Polling::open(addr, EIO).await;
    let pending = tokio::spawn({
        let (addr, path) = (p.addr, p.path());
        async move { get(addr, &path).await }
    });
    until_waiting_polls(echo, 1).await;
    let mut ws = Ws::connect(&p.ws_url(), Version::Rfc6455).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv().await, Some(Frame::Text("3probe".into())));
    // The pending poll is released with a noop (a ping may have come first; answer it).
    let mut res = pending.await.expect("poll task");
    loop {
        assert_eq!(res.status, 200, "{:?}", res.text());
        let body = res.text();
        if packets(&body).contains(&"6".to_string()) {
            break;
        }
        assert_eq!(body, "2", "unexpected poll answer during the upgrade");
        let _ = p.post("3").await;
        res = p.get().await;
    }
    ws.send("5").await;
    // Polls made before the server has read `5` are still answered `6`; a WebSocket echo
    // round trip (processed after `5`) shows the upgrade is complete.
    ws.send("4upgraded").await;
    assert_eq!(ws.next_text().await, "4upgraded");
    (p, ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_polling_to_websocket() {
    let (server, echo) = start_with_echo().await;
    let (_p, mut ws) = upgraded(server.addr, &echo).await;
    ws.send("4hello").await;
    assert_eq!(ws.next_text().await, "4hello");
    ws.send_binary(&[9, 8, 7]).await;
    assert_eq!(ws.next().await, Frame::Binary(vec![9, 8, 7]));
    // Heartbeat now runs over the WebSocket.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(800) {
        assert_eq!(ws.recv().await, Some(Frame::Text("2".into())));
        ws.send("3").await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_after_upgrade_refused() {
    let (server, echo) = start_with_echo().await;
    let (p, mut ws) = upgraded(server.addr, &echo).await;
    let res = p.get().await;
    assert_eq!(res.status, 400, "{:?}", res.text());
    let res = p.post("4nope").await;
    assert_eq!(res.status, 400, "{:?}", res.text());
    // The WebSocket side is unaffected.
    ws.send("4after").await;
    assert_eq!(ws.next_text().await, "4after");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_websocket_after_upgrade_closed() {
    // As the reference server and the official suite ("should ignore WebSocket connection with
    // same sid after upgrade"): the handshake completes, then the server closes it.
    let (server, echo) = start_with_echo().await;
    let (p, mut ws) = upgraded(server.addr, &echo).await;
    let mut second = Ws::connect(&p.ws_url(), Version::Rfc6455).await;
    let seen = second.closed_within(Duration::from_secs(5), false).await;
    assert!(seen.is_empty(), "{seen:?}");
    ws.send("4after").await;
    assert_eq!(ws.next_text().await, "4after");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Socket.IO: namespaces

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_main_namespace() {
    let server = start().await;
    let mut ws = sio(server.addr).await;
    sio_join(&mut ws, "40").await;
    assert_eq!(ws.next_text().await, r#"42["auth",{}]"#);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_main_namespace_with_auth() {
    let server = start().await;
    let mut ws = sio(server.addr).await;
    sio_join(&mut ws, r#"40{"token":"abc"}"#).await;
    assert_eq!(ws.next_text().await, r#"42["auth",{"token":"abc"}]"#);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_custom_namespace() {
    let server = start().await;
    let mut ws = sio(server.addr).await;
    sio_join(&mut ws, "40/custom,").await;
    assert_eq!(ws.next_text().await, r#"42/custom,["auth",{}]"#);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_custom_namespace_with_auth() {
    let server = start().await;
    let mut ws = sio(server.addr).await;
    sio_join(&mut ws, r#"40/custom,{"token":"abc"}"#).await;
    assert_eq!(
        ws.next_text().await,
        r#"42/custom,["auth",{"token":"abc"}]"#
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_over_polling() {
    let server = start().await;
    let mut p = Polling::open(server.addr, SIO).await;
    p.send(&[r#"40{"token":"xyz"}"#]).await;
    let answer = p.next().await;
    let sid: serde_json::Value =
        serde_json::from_str(answer.strip_prefix("40").expect("40{...}")).expect("json");
    assert!(sid["sid"].is_string(), "{sid}");
    assert_eq!(p.next().await, r#"42["auth",{"token":"xyz"}]"#);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_namespace_refused() {
    let server = start().await;
    let mut ws = sio(server.addr).await;
    ws.send("40/random,").await;
    assert_eq!(
        ws.next_text().await,
        r#"44/random,{"message":"Invalid namespace"}"#
    );
    // The connection itself stays usable.
    sio_join(&mut ws, "40").await;
    assert_eq!(ws.next_text().await, r#"42["auth",{}]"#);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_handshake_refused() {
    let server = start().await;
    for bad in ["4abc", "40[]", r#"40"text""#, "40null", "40{"] {
        let mut ws = sio(server.addr).await;
        ws.send(bad).await;
        let seen = ws.closed_within(Duration::from_secs(2), true).await;
        assert!(
            seen.iter()
                .all(|f| !matches!(f, Frame::Text(t) if t.starts_with("40"))),
            "{bad:?} was accepted: {seen:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connect_within_timeout_closes() {
    let server = start().await;
    let mut ws = sio(server.addr).await;
    let started = Instant::now();
    let seen = ws.closed_within(Duration::from_secs(3), true).await;
    assert!(seen.is_empty(), "{seen:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(2000),
        "closed late: {elapsed:?}"
    );
    server.shutdown().await;
}

/// After leaving, the next frame is a ping and the session keeps going.
async fn session_lives_on(ws: &mut Ws) {
    for _ in 0..3 {
        assert_eq!(
            ws.recv_within(Duration::from_secs(1)).await,
            Some(Frame::Text("2".into()))
        );
        ws.send("3").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_from_main_namespace() {
    let server = start().await;
    let mut ws = sio(server.addr).await;
    sio_join(&mut ws, "40").await;
    assert_eq!(ws.next_text().await, r#"42["auth",{}]"#);
    ws.send("41").await;
    // The socket is gone: an event on `/` is not answered (only pings follow).
    ws.send(r#"42["message",1]"#).await;
    session_lives_on(&mut ws).await;
    // Joining again works.
    sio_join(&mut ws, "40").await;
    assert_eq!(ws.next_text().await, r#"42["auth",{}]"#);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_from_custom_namespace() {
    let server = start().await;
    let mut ws = sio(server.addr).await;
    sio_join(&mut ws, "40/custom,").await;
    assert_eq!(ws.next_text().await, r#"42/custom,["auth",{}]"#);
    ws.send("41/custom,").await;
    session_lives_on(&mut ws).await;
    sio_join(&mut ws, "40/custom,").await;
    assert_eq!(ws.next_text().await, r#"42/custom,["auth",{}]"#);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Socket.IO: events and acks

async fn joined(addr: std::net::SocketAddr) -> Ws {
    let mut ws = sio(addr).await;
    sio_join(&mut ws, "40").await;
    assert_eq!(ws.next_text().await, r#"42["auth",{}]"#);
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_event() {
    let server = start().await;
    let mut ws = joined(server.addr).await;
    ws.send(r#"42["message",1,"2",{"3":[true]}]"#).await;
    assert_eq!(
        ws.next_text().await,
        r#"42["message-back",1,"2",{"3":[true]}]"#
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_event_with_ack() {
    let server = start().await;
    let mut ws = joined(server.addr).await;
    ws.send(r#"4213["message-with-ack",1,"2",{"3":[false]}]"#)
        .await;
    assert_eq!(ws.next_text().await, r#"4313[1,"2",{"3":[false]}]"#);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_event() {
    let server = start().await;
    let mut ws = joined(server.addr).await;
    ws.send(r#"451-["message",{"_placeholder":true,"num":0}]"#)
        .await;
    ws.send_binary(&[1, 2, 3]).await;
    assert_eq!(
        ws.next_text().await,
        r#"451-["message-back",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(ws.next().await, Frame::Binary(vec![1, 2, 3]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_event_with_ack() {
    let server = start().await;
    let mut ws = joined(server.addr).await;
    ws.send(r#"451-15["message-with-ack",{"_placeholder":true,"num":0}]"#)
        .await;
    ws.send_binary(&[4, 5, 6]).await;
    assert_eq!(
        ws.next_text().await,
        r#"461-15[{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(ws.next().await, Frame::Binary(vec![4, 5, 6]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_event_over_polling() {
    let server = start().await;
    let mut p = Polling::open(server.addr, SIO).await;
    p.send(&["40"]).await;
    assert!(p.next().await.starts_with(r#"40{"sid":"#));
    assert_eq!(p.next().await, r#"42["auth",{}]"#);
    let bin = format!("b{}", b64(&[1, 2, 3]));
    p.send(&[r#"451-["message",{"_placeholder":true,"num":0}]"#, &bin])
        .await;
    assert_eq!(
        p.next().await,
        r#"451-["message-back",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(p.next().await, bin);
    p.send(&[
        r#"451-7["message-with-ack",{"_placeholder":true,"num":0}]"#,
        &bin,
    ])
    .await;
    assert_eq!(p.next().await, r#"461-7[{"_placeholder":true,"num":0}]"#);
    assert_eq!(p.next().await, bin);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ack_round_trip() {
    let server = start().await;
    let mut ws = joined(server.addr).await;
    ws.send(r#"42["server-ack",1]"#).await;
    let asked = ws.next_text().await;
    let rest = asked
        .strip_prefix("42")
        .unwrap_or_else(|| panic!("{asked:?}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert!(!digits.is_empty(), "no ack id in {asked:?}");
    assert_eq!(&rest[digits.len()..], r#"["server-ack",1]"#);
    ws.send(&format!(r#"43{digits}["B"]"#)).await;
    assert_eq!(ws.next_text().await, r#"42["server-ack-result","B"]"#);
    server.shutdown().await;
}

async fn closes_joined_connection(packet: &str) {
    let server = start().await;
    let mut ws = joined(server.addr).await;
    ws.send(packet).await;
    let seen = ws.closed_within(Duration::from_secs(2), true).await;
    assert!(seen.is_empty(), "{packet:?} answered with {seen:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_packet_type_closes() {
    closes_joined_connection("4abc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_event_payload_closes() {
    closes_joined_connection(r#"42{"message":1}"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_ack_id_closes() {
    closes_joined_connection(r#"42abc["message-with-ack",1]"#).await;
}

// ---------------------------------------------------------------------------------------------
// hixie-76

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hixie76_session() {
    let server = start().await;
    let (mut ws, open) = Ws::open_with(server.addr, SIO, Version::Hixie76).await;
    assert_eq!(open["upgrades"], json!([]));
    sio_join(&mut ws, "40").await;
    assert_eq!(ws.next_text().await, r#"42["auth",{}]"#);
    ws.send(r#"42["message","hi",{"x":[1]}]"#).await;
    assert_eq!(ws.next_text().await, r#"42["message-back","hi",{"x":[1]}]"#);
    ws.send(r#"423["message-with-ack",2]"#).await;
    assert_eq!(ws.next_text().await, "433[2]");
    ws.send(r#"451-["message",{"_placeholder":true,"num":0}]"#)
        .await;
    ws.send_binary(&[1, 2, 3, 255]).await;
    assert_eq!(
        ws.next_text().await,
        r#"451-["message-back",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(
        ws.next().await,
        Frame::Text(format!("b{}", b64(&[1, 2, 3, 255])))
    );
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Order: events sent right behind the CONNECT, and many events in a row, are handled in the
// order they were sent (found by the js-client suite).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_right_behind_connect_over_polling_in_order() {
    let server = start().await;
    let mut p = Polling::open(server.addr, "/socket.io/").await;
    let mut batch = vec!["40".to_string()];
    batch.extend((0..20).map(|i| format!(r#"42["message",{i}]"#)));
    let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
    p.send(&refs).await;
    assert!(p.next().await.starts_with("40{"));
    assert_eq!(p.next().await, r#"42["auth",{}]"#);
    for i in 0..20 {
        assert_eq!(p.next().await, format!(r#"42["message-back",{i}]"#));
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_right_behind_connect_over_websocket_in_order() {
    let server = start().await;
    for _ in 0..10 {
        let mut ws = sio(server.addr).await;
        ws.send("40").await;
        for i in 0..20 {
            ws.send(&format!(r#"42["message",{i}]"#)).await;
        }
        assert!(ws.next_text().await.starts_with("40{"));
        assert_eq!(ws.next_text().await, r#"42["auth",{}]"#);
        for i in 0..20 {
            assert_eq!(ws.next_text().await, format!(r#"42["message-back",{i}]"#));
        }
    }
    server.shutdown().await;
}
