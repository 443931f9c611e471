//! Opening handshakes from a hostile client: thousands of headers, one header trickled a byte at
//! a time without end (tungstenite's CVE-2023-43669 was quadratic time on this), an extension
//! named after an `Object.prototype` key, a subprotocol list of hundreds of thousands of
//! spaces. Each is answered (or the connection closed) within a bounded wait, and a bystander
//! is served meanwhile.
//!
//! The answers are hyper's (1.x): more than 100 headers, or a head that fills its read buffer
//! (8 KiB + 100 × 4 KiB = 417 792 bytes) before it ends, get `431 Request Header Fields Too
//! Large` and the connection is closed; hyper scans only the bytes that arrive for the end of
//! the head, so a trickled head costs linear time.

mod support;

use std::time::Duration;

use hunchensocket_core::Config;
use hunchensocket_core::codec::rfc6455::opcode::TEXT;
use support::{
    UPGRADE_HEAD, WAIT, bystander, echo_server, frame, read_frame, read_head, request, status,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// hyper's default limit on the bytes of a request head.
const HEAD_BUFFER_LIMIT: usize = 8192 + 4096 * 100;

/// The head of the trickled request, up to the header that never ends.
const PREFIX: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Long: ";

/// Checks that the server ends the connection (after whatever it sent).
async fn ends(s: &mut TcpStream) {
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut rest))
        .await
        .expect("the server ends the connection")
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_headers_get_431_and_the_connection_closed() {
    let addr = echo_server(Config::default()).await;
    let mut head = UPGRADE_HEAD.to_string();
    for i in 0..2_000 {
        head.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    let (mut s, answer) = request(addr, &head).await;
    let answer = answer.expect("an answer before the close");
    assert_eq!(status(&answer), 431, "{answer}");
    ends(&mut s).await;
    bystander(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_trickled_past_the_head_limit_gets_431() {
    let addr = echo_server(Config::default()).await;
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (mut read, mut write) = s.into_split();
    // The answer is read while the header is being written.
    let answer = tokio::spawn(async move {
        let mut raw = Vec::new();
        let _ = read.read_to_end(&mut raw).await;
        String::from_utf8_lossy(&raw).into_owned()
    });
    let trickle = async {
        write.write_all(PREFIX).await.unwrap();
        let mut sent = 0usize;
        // A byte per write up to a little past the limit; a bystander is served halfway.
        while sent < HEAD_BUFFER_LIMIT + 4096 {
            if write.write_all(b"a").await.is_err() {
                break;
            }
            sent += 1;
            if sent == HEAD_BUFFER_LIMIT / 2 {
                bystander(addr).await;
            }
            if answer.is_finished() {
                break;
            }
        }
        sent
    };
    let sent = tokio::time::timeout(WAIT * 6, trickle)
        .await
        .expect("the trickle ends within a bounded wait");
    // Not refused before the head filled hyper's buffer.
    assert!(
        PREFIX.len() + sent >= HEAD_BUFFER_LIMIT,
        "refused after {sent} bytes"
    );
    // Whatever is still in flight, the server has answered and closed once past its limit.
    let answer = tokio::time::timeout(WAIT, answer)
        .await
        .expect("the server ends the connection")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");
    bystander(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_named_constructor_is_ignored() {
    let addr = echo_server(Config::default()).await;
    for extensions in [
        "constructor",
        "__proto__",
        "constructor; toString=1, hasOwnProperty",
    ] {
        let head = format!("{UPGRADE_HEAD}Sec-WebSocket-Extensions: {extensions}\r\n");
        let (mut s, answer) = request(addr, &head).await;
        let answer = answer.expect("a handshake answer");
        assert_eq!(status(&answer), 101, "{answer}");
        assert!(
            !answer
                .to_ascii_lowercase()
                .contains("sec-websocket-extensions"),
            "no extension is negotiated: {answer}"
        );
        s.write_all(&frame(true, TEXT, b"hi")).await.unwrap();
        assert_eq!(read_frame(&mut s).await, Some((TEXT, b"hi".to_vec())));
    }
    bystander(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subprotocol_list_of_spaces_is_answered() {
    let addr = echo_server(Config::default()).await;
    for value in [
        format!("{}chat", " ".repeat(300_000)),
        format!("{}chat", " ,".repeat(150_000)),
        format!("chat{}", ", \t ".repeat(75_000)),
    ] {
        let head = format!("{UPGRADE_HEAD}Sec-WebSocket-Protocol: {value}\r\n");
        let (mut s, answer) = tokio::time::timeout(WAIT, request(addr, &head))
            .await
            .expect("answered in time");
        let answer = answer.expect("a handshake answer");
        assert_eq!(status(&answer), 101, "{answer}");
        assert!(
            answer.contains("Sec-Websocket-Protocol: chat\r\n"),
            "{answer}"
        );
        s.write_all(&frame(true, TEXT, b"hi")).await.unwrap();
        assert_eq!(read_frame(&mut s).await, Some((TEXT, b"hi".to_vec())));
        bystander(addr).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_never_ends_is_dropped_at_the_handshake_timeout() {
    // The slowloris guard: a head still incomplete when the handshake timeout passes.
    let config = Config::default().with_handshake_timeout(Duration::from_millis(300));
    let addr = echo_server(config).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = read_head(&mut s).await;
    assert!(
        answer.as_deref().is_none_or(|a| status(a) == 408),
        "{answer:?}"
    );
    ends(&mut s).await;
    bystander(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_request_with_a_body_gets_400() {
    // The bytes after the head belong to the WebSocket: a body would be read as frames.
    let addr = echo_server(Config::default()).await;
    let ping = frame(true, 0x9, b"smuggled");
    for framing in [
        format!("Content-Length: {}\r\n", ping.len()),
        "Transfer-Encoding: chunked\r\n".to_string(),
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("{UPGRADE_HEAD}{framing}\r\n").as_bytes())
            .await
            .unwrap();
        let _ = s.write_all(&ping).await;
        let answer = read_head(&mut s).await.expect("an answer");
        assert_eq!(status(&answer), 400, "{framing}: {answer}");
        ends(&mut s).await;
    }
    bystander(addr).await;
}
