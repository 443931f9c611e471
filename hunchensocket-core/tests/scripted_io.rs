//! Handshakes and closing over scripted in-memory IO: the test writes the client's exact bytes
//! (split and timed as real clients do) and checks the server's exact answer.

use std::convert::Infallible;
use std::time::Duration;

use hunchensocket_core::handshake::refusal_response;
use hunchensocket_core::{CloseCode, CloseFrame, Error, Message, Upgrade, Version};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const WAIT: Duration = Duration::from_secs(5);

/// Serves one hyper connection on the server end of a duplex pipe, echoing on upgrade.
fn serve(server_end: DuplexStream) {
    let service = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        let res = match Upgrade::from_request(req, &Default::default()).await {
            Ok((up, _parts)) => {
                let up = match up.request().protocols().first().cloned() {
                    Some(p) => up.protocol(p),
                    None => up,
                };
                up.on_upgrade(|mut ws| async move {
                    while let Some(Ok(msg)) = ws.recv().await {
                        if msg.is_data() && ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                })
                .map(|()| String::new())
            }
            Err(refusal) => refusal_response(&refusal),
        };
        Ok::<_, Infallible>(res.map(|s| http_body_util::Full::new(bytes::Bytes::from(s))))
    });
    tokio::spawn(async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .title_case_headers(true)
            .serve_connection(TokioIo::new(server_end), service)
            .with_upgrades()
            .await;
    });
}

async fn read_exactly(io: &mut DuplexStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WAIT, io.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    buf
}

/// Reads the response head; returns it without the `Date` line (the only varying part).
async fn head(io: &mut DuplexStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.extend(read_exactly(io, 1).await);
    }
    String::from_utf8(head)
        .expect("ascii head")
        .split("\r\n")
        .filter(|l| !l.starts_with("Date:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

const DRAFT_HEADERS: &str = "GET /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\nSec-WebSocket-Protocol: sample\r\nUpgrade: WebSocket\r\n\
    Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nOrigin: http://example.com\r\n";

const DRAFT_RESPONSE: &str = "HTTP/1.1 101 WebSocket Protocol Handshake\r\nUpgrade: WebSocket\r\n\
    Connection: Upgrade\r\nSec-Websocket-Origin: http://example.com\r\n\
    Sec-Websocket-Location: ws://example.com/demo\r\nSec-Websocket-Protocol: sample\r\n\r\n";

#[tokio::test]
async fn hixie76_key3_with_the_headers() {
    let (mut client, server_end) = tokio::io::duplex(4096);
    serve(server_end);
    client
        .write_all(format!("{DRAFT_HEADERS}\r\n^n:ds[4U").as_bytes())
        .await
        .unwrap();
    assert_eq!(head(&mut client).await, DRAFT_RESPONSE);
    assert_eq!(read_exactly(&mut client, 16).await, b"8jKS'y:G*Co,Wxa-");
    client.write_all(b"\x00echo me\xff").await.unwrap();
    assert_eq!(read_exactly(&mut client, 9).await, b"\x00echo me\xff");
    client.write_all(b"\xff\x00").await.unwrap();
    assert_eq!(read_exactly(&mut client, 2).await, b"\xff\x00");
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, client.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty(), "the server closes after FF 00");
}

#[tokio::test]
async fn hixie76_key3_in_pieces_after_the_headers() {
    let (mut client, server_end) = tokio::io::duplex(4096);
    serve(server_end);
    client
        .write_all(format!("{DRAFT_HEADERS}\r\n").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.write_all(b"^n:d").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.write_all(b"s[4U").await.unwrap();
    assert_eq!(head(&mut client).await, DRAFT_RESPONSE);
    assert_eq!(read_exactly(&mut client, 16).await, b"8jKS'y:G*Co,Wxa-");
}

#[tokio::test]
async fn hixie76_key3_as_a_body_with_content_length() {
    let (mut client, server_end) = tokio::io::duplex(4096);
    serve(server_end);
    // Some clients (Perl's Protocol::WebSocket) announce key3 as an 8-byte body.
    let req = format!("{DRAFT_HEADERS}Content-Length: 8\r\n\r\n^n:ds[4U");
    client.write_all(req.as_bytes()).await.unwrap();
    let head = head(&mut client).await;
    assert!(
        head.starts_with("HTTP/1.1 101 WebSocket Protocol Handshake\r\n"),
        "{head}"
    );
    assert_eq!(read_exactly(&mut client, 16).await, b"8jKS'y:G*Co,Wxa-");
}

#[tokio::test]
async fn rfc6455_handshake_echo_and_close() {
    let (mut client, server_end) = tokio::io::duplex(4096);
    serve(server_end);
    client
        .write_all(
            b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
              Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    assert_eq!(
        head(&mut client).await,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-Websocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-Websocket-Protocol: chat\r\n\r\n"
    );
    // RFC 6455 §5.7: a masked "Hello".
    client
        .write_all(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ])
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut client, 7).await, b"\x81\x05Hello");
    // A masked ping "Hello" is answered with an unmasked pong "Hello".
    client
        .write_all(&[
            0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ])
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut client, 7).await, b"\x8a\x05Hello");
    // Close 1000 (masked with a zero key) is echoed, then the server ends the stream.
    client
        .write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"\x88\x02\x03\xe8");
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, client.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn refusals_over_scripted_io() {
    let (mut client, server_end) = tokio::io::duplex(4096);
    serve(server_end);
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 9\r\n\r\n",
        )
        .await
        .unwrap();
    let head = head(&mut client).await;
    assert!(
        head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Sec-Websocket-Version: 13, 8, 7\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn client_over_scripted_io() {
    // Our client against our server through a pipe: both sides of the handshake in memory.
    let (client_end, server_end) = tokio::io::duplex(4096);
    serve(server_end);
    let (mut ws, protocol) = hunchensocket_core::Connector::new()
        .version(Version::Hixie76)
        .protocol("sample")
        .connect_on(client_end, "ws://example.com/demo")
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("sample"));
    ws.send("piped").await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("piped"));
}

#[tokio::test]
async fn bounded_text_send_refuses_past_its_limit() {
    // A peer that never reads: the pipe takes 64 bytes, then the socket's buffer fills.
    let (_peer, ours) = tokio::io::duplex(64);
    let ws = hunchensocket_core::WebSocket::from_raw(
        ours,
        bytes::Bytes::new(),
        Version::Rfc6455,
        hunchensocket_core::codec::Role::Server,
        &Default::default(),
    );
    let sender = ws.sender();
    let chunk = "x".repeat(100);
    let mut queued = 0;
    while sender.send_text_parts_within(&["4", &chunk], 1000).unwrap() {
        queued += 1;
        assert!(queued < 100, "the limit never applied");
    }
    assert!(
        sender.buffered() <= 1000,
        "{} bytes buffered",
        sender.buffered()
    );
    assert!(
        sender.buffered() + 101 > 1000,
        "refused although there was room"
    );
    // Without a limit the same text is still taken.
    assert!(
        sender
            .send_text_parts_within(&["4", &chunk], usize::MAX)
            .unwrap()
    );
}

#[tokio::test]
async fn close_codes_that_may_not_be_sent_are_refused() {
    // 1005 and 1006 only report a close without a code; 1004, 1015 and codes outside
    // 1000-1003, 1007-1011 and 3000-4999 are reserved. None may go on the wire: asking for one
    // is an error, and nothing is sent; the socket stays open.
    let (mut peer, ours) = tokio::io::duplex(4096);
    let ws = hunchensocket_core::WebSocket::from_raw(
        ours,
        bytes::Bytes::new(),
        Version::Rfc6455,
        hunchensocket_core::codec::Role::Server,
        &Default::default(),
    );
    let sender = ws.sender();
    for code in [0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, u16::MAX] {
        let code = CloseCode(code);
        assert!(
            matches!(
                sender.close(code, "no").await,
                Err(Error::InvalidCloseCode(c)) if c == code
            ),
            "{code}"
        );
        let frame = Message::Close(Some(CloseFrame::new(code, "no")));
        assert!(
            matches!(sender.send(frame).await, Err(Error::InvalidCloseCode(c)) if c == code),
            "{code}"
        );
        assert!(matches!(
            sender.downgrade().close(code, "no"),
            Err(Error::InvalidCloseCode(c)) if c == code
        ));
    }
    assert!(!sender.is_closed());
    // What reaches the peer: the next message, then a valid close.
    sender.send("still open").await.unwrap();
    assert_eq!(read_exactly(&mut peer, 12).await, b"\x81\x0astill open");
    sender.close(CloseCode(4000), "bye").await.unwrap();
    assert_eq!(read_exactly(&mut peer, 7).await, b"\x88\x05\x0f\xa0bye");
    // The codec refuses them too.
    let mut codec = hunchensocket_core::codec::Codec::rfc6455(
        hunchensocket_core::codec::Role::Client,
        &Default::default(),
    );
    let mut dst = bytes::BytesMut::new();
    let frame = Message::Close(Some(CloseFrame::new(CloseCode::NO_STATUS, "")));
    assert!(matches!(
        codec.encode(&frame, &mut dst),
        Err(Error::InvalidCloseCode(CloseCode::NO_STATUS))
    ));
    assert!(dst.is_empty());
}

#[tokio::test]
async fn abort_drops_the_connection_without_a_close_frame() {
    let (mut peer, ours) = tokio::io::duplex(4096);
    let ws = hunchensocket_core::WebSocket::from_raw(
        ours,
        bytes::Bytes::new(),
        Version::Rfc6455,
        hunchensocket_core::codec::Role::Server,
        &Default::default(),
    );
    let (mut reader, sender) = ws.split();
    sender.send("before").await.unwrap();
    assert_eq!(read_exactly(&mut peer, 8).await, b"\x81\x06before");
    sender.abort();
    // The reader ends, later sends are refused, and the peer reads EOF: no close frame.
    let ended = tokio::time::timeout(WAIT, reader.recv())
        .await
        .expect("reader ends");
    assert!(ended.is_none(), "{ended:?}");
    assert!(sender.is_closed());
    assert!(sender.send("after").await.is_err());
    assert!(
        sender.close(CloseCode::NORMAL, "").await.is_ok(),
        "closing twice is not an error"
    );
    drop(reader);
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, peer.read_to_end(&mut rest))
        .await
        .expect("EOF")
        .unwrap();
    assert!(rest.is_empty(), "nothing after the abort: {rest:?}");
    tokio::time::timeout(WAIT, sender.closed())
        .await
        .expect("writer stopped");
}
