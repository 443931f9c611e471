//! hunchensocket-core end to end over loopback: every version, refusals, bad input, limits,
//! timeouts, closing, TLS and shutdown — each checked while a healthy client keeps being served.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use hunchensocket_core::{
    Accept, CloseCode, Config, Connector, Error, Handshake, Message, Server, Version,
};
use hunchensocket_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HIXIE76_REQUEST: &str = "GET /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\nSec-WebSocket-Protocol: sample\r\nUpgrade: WebSocket\r\n\
    Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nOrigin: http://example.com\r\n\r\n";

/// A connected RFC 6455 client of `server` that must keep echoing whatever else happens.
async fn healthy(
    server: &Running,
) -> hunchensocket_core::WebSocket<hunchensocket_core::MaybeTlsStream> {
    Connector::new()
        .connect(&server.url("/healthy"))
        .await
        .expect("healthy client connects")
        .0
}

async fn still_served(
    ws: &mut hunchensocket_core::WebSocket<hunchensocket_core::MaybeTlsStream>,
    n: usize,
) {
    let text = format!("still here {n}");
    ws.send(text.as_str()).await.expect("send");
    let got = tokio::time::timeout(WAIT, ws.recv())
        .await
        .expect("echo in time");
    assert_eq!(got.expect("open").expect("no error"), Message::text(text));
}

#[tokio::test]
async fn every_version_echoes() {
    let server = Running::start(echo_server(Config::default())).await;

    // RFC 6455 through our client: text and binary, and a large binary.
    let (mut ws, _) = Connector::new().connect(&server.url("/a")).await.unwrap();
    assert_eq!(ws.version(), Version::Rfc6455);
    ws.send("héllo").await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("héllo"));
    let big = Bytes::from(vec![7u8; 300_000]);
    ws.send(Message::Binary(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::Binary(big));
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    match ws.recv().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("expected the close echo, got {other:?}"),
    }
    assert!(ws.recv().await.is_none());

    // hixie-76 through our client: text; binary refused locally.
    let (mut ws, _) = Connector::new()
        .version(Version::Hixie76)
        .connect(&server.url("/b"))
        .await
        .unwrap();
    assert_eq!(ws.version(), Version::Hixie76);
    ws.send("über hixie").await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("über hixie")
    );
    assert!(matches!(
        ws.send(Message::binary(vec![1u8])).await,
        Err(Error::BinaryUnsupported)
    ));
    ws.send("").await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(""));

    // hixie-75 by hand: no keys, its own status text and headers.
    let mut s = raw(server.addr).await;
    s.write_all(b"GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nOrigin: http://example.com\r\n\r\n")
        .await
        .unwrap();
    let (head, rest) = read_head(&mut s).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Web Socket Protocol Handshake\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("websocket-location: ws://example.com/x?y=1\r\n"),
        "{head}"
    );
    assert!(
        lower.contains("websocket-origin: http://example.com\r\n"),
        "{head}"
    );
    assert!(rest.is_empty());
    s.write_all(b"\x00hi 75\xff").await.unwrap();
    let mut buf = [0u8; 7];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"\x00hi 75\xff");

    // hybi-08 by hand: same framing as RFC 6455.
    let mut s = raw(server.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Origin: http://h\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_head(&mut s).await;
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    s.write_all(&client_frame(true, 1, b"hybi")).await.unwrap();
    let mut buf = [0u8; 6];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"\x81\x04hybi");
    drop((ws, s));
    server.shutdown().await;
}

#[tokio::test]
async fn hixie76_draft_example_with_late_key3() {
    let server = Running::start(echo_server(
        Config::default().with_key3_timeout(Duration::from_secs(5)),
    ))
    .await;
    let mut s = raw(server.addr).await;
    s.write_all(HIXIE76_REQUEST.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.write_all(b"^n:ds[4U").await.unwrap();
    let (head, mut rest) = read_head(&mut s).await;
    assert!(
        head.starts_with("HTTP/1.1 101 WebSocket Protocol Handshake\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("sec-websocket-location: ws://example.com/demo\r\n"),
        "{head}"
    );
    assert!(
        lower.contains("sec-websocket-origin: http://example.com\r\n"),
        "{head}"
    );
    assert!(head.contains("Upgrade: WebSocket\r\n"), "{head}");
    while rest.len() < 16 {
        let mut chunk = [0u8; 64];
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        rest.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(&rest[..16], b"8jKS'y:G*Co,Wxa-");
    // Odd frames are skipped, invalid UTF-8 becomes U+FFFD, FF 00 closes.
    s.write_all(b"\x01skipped\xff\x80\x03abc\x00a\xfeb\xff")
        .await
        .unwrap();
    let mut buf = [0u8; 7];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &buf,
        "\x00a\u{FFFD}b"
            .as_bytes()
            .iter()
            .chain(b"\xff")
            .copied()
            .collect::<Vec<_>>()
            .as_slice()
    );
    s.write_all(b"\xff\x00").await.unwrap();
    assert_eq!(read_to_eof(&mut s).await, b"\xff\x00");
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_carry_their_status() {
    let server =
        echo_server(Config::default()).allow_origin(|origin| origin != Some("http://evil.example"));
    let server = Running::start(server).await;
    let cases: &[(&str, &str)] = &[
        (
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n",
            "426",
        ),
        (
            "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n",
            "400",
        ),
        (
            "Sec-WebSocket-Key1: 12345\r\nSec-WebSocket-Key2: 1 2\r\n",
            "400",
        ),
        (
            "Sec-WebSocket-Key1: 12 3\r\nSec-WebSocket-Key2: 1  3\r\n",
            "400",
        ),
        (
            "Sec-WebSocket-Key1: 1 99999999999\r\nSec-WebSocket-Key2: 1 2\r\n",
            "400",
        ),
        ("Sec-WebSocket-Key1: 1 2\r\n", "400"),
        (
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n",
            "403",
        ),
    ];
    let mut ok = healthy(&server).await;
    for (i, (headers, status)) in cases.iter().enumerate() {
        let mut s = raw(server.addr).await;
        let req = format!(
            "GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{headers}\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let (head, _) = read_head(&mut s).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "case {i}: {head}"
        );
        if *status == "426" {
            assert!(
                head.to_ascii_lowercase()
                    .contains("sec-websocket-version: 13, 8, 7"),
                "{head}"
            );
        }
        still_served(&mut ok, i).await;
    }
    // A plain request goes to the fallback (404 by default).
    let mut s = raw(server.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut s).await.0.starts_with("HTTP/1.1 404"));
    // Garbage instead of HTTP: the connection is dropped, the server lives on.
    let mut s = raw(server.addr).await;
    s.write_all(b"\x16\x03\x01garbage\r\n\r\n").await.unwrap();
    let _ = read_to_eof(&mut s).await;
    still_served(&mut ok, 99).await;
    drop((ok, s));
    server.shutdown().await;

    // No dispatcher accepts: 404.
    let picky = Server::new().dispatch(|hs: &Handshake<'_>| {
        (hs.path() == "/only").then(|| Accept::session(|_sender| |_msg: Message| async {}))
    });
    let picky = Running::start(picky).await;
    let mut s = raw(picky.addr).await;
    s.write_all(b"GET /nobody HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
    assert!(read_head(&mut s).await.0.starts_with("HTTP/1.1 404"));
    picky.shutdown().await;
}

#[tokio::test]
async fn bad_frames_get_their_close_codes() {
    let config = Config::default()
        .with_max_message_size(1024)
        .with_max_frame_size(1024);
    let server = Running::start(echo_server(config)).await;
    let mut ok = healthy(&server).await;
    let mut big_fragments = client_frame(false, 1, &[b'a'; 600]);
    big_fragments.extend(client_frame(true, 0, &[b'b'; 600]));
    let mut unmasked = vec![0x81, 0x02];
    unmasked.extend_from_slice(b"hi");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked", unmasked, 1002),
        (
            "invalid utf-8",
            client_frame(
                true,
                1,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            ),
            1007,
        ),
        (
            "close code 1005",
            client_frame(true, 8, &1005u16.to_be_bytes()),
            1002,
        ),
        (
            "close code 999",
            client_frame(true, 8, &999u16.to_be_bytes()),
            1002,
        ),
        (
            "close payload of one byte",
            client_frame(true, 8, b"\x03"),
            1002,
        ),
        (
            "frame over the limit",
            client_frame(true, 2, &[0u8; 2000]),
            1009,
        ),
        ("message over the limit", big_fragments, 1009),
        (
            "reserved bits",
            {
                let mut f = client_frame(true, 1, b"x");
                f[0] |= 0x40;
                f
            },
            1002,
        ),
        ("unknown opcode", client_frame(true, 3, b""), 1002),
        ("fragmented ping", client_frame(false, 9, b""), 1002),
        (
            "continuation without a start",
            client_frame(true, 0, b"x"),
            1002,
        ),
        (
            "ping over 125 bytes",
            client_frame(true, 9, &[0u8; 126]),
            1002,
        ),
    ];
    for (i, (name, bytes, code)) in cases.into_iter().enumerate() {
        let mut s = raw(server.addr).await;
        let rest = rfc_handshake(&mut s, "/bad").await;
        assert!(rest.is_empty());
        s.write_all(&bytes).await.unwrap();
        let got = read_to_eof(&mut s).await;
        assert_eq!(close_code_of(&got), Some(code), "{name}: got {got:?}");
        still_served(&mut ok, i).await;
    }
    drop(ok);
    server.shutdown().await;
}

#[tokio::test]
async fn hixie_frame_that_never_ends_is_cut_off() {
    let config = Config::default().with_max_message_size(4096);
    let server = Running::start(echo_server(config)).await;
    let mut ok = healthy(&server).await;
    let mut s = raw(server.addr).await;
    s.write_all(HIXIE76_REQUEST.as_bytes()).await.unwrap();
    s.write_all(b"^n:ds[4U").await.unwrap();
    let _ = read_head(&mut s).await;
    s.write_all(b"\x00").await.unwrap();
    let mut sent = 0;
    let chunk = [b'z'; 1024];
    // Keep writing a frame with no terminator until the server hangs up (bounded).
    while sent < 1 << 20 {
        if s.write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len();
        still_served(&mut ok, sent).await;
        let mut probe = [0u8; 64];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(5), s.read(&mut probe)).await
        {
            break;
        }
    }
    assert!(
        sent < 64 * 1024,
        "server kept reading an endless frame: {sent} bytes"
    );
    still_served(&mut ok, 0).await;
    drop((ok, s));
    server.shutdown().await;
}

#[tokio::test]
async fn slow_clients_time_out_without_hurting_others() {
    let config = Config::default()
        .with_handshake_timeout(Duration::from_millis(600))
        .with_key3_timeout(Duration::from_millis(600));
    let server = Running::start(echo_server(config)).await;
    let mut ok = healthy(&server).await;

    // Headers one byte at a time, slower than the handshake timeout allows.
    let mut slow = raw(server.addr).await;
    let started = tokio::time::Instant::now();
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    let mut cut_off = false;
    for (i, byte) in request.iter().enumerate() {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        still_served(&mut ok, i).await;
        let mut probe = [0u8; 256];
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "a slowloris client was allowed to keep sending headers"
    );
    assert!(started.elapsed() < WAIT);

    // A hixie-76 client that never sends key3.
    let mut s = raw(server.addr).await;
    s.write_all(HIXIE76_REQUEST.as_bytes()).await.unwrap();
    let got = read_to_eof(&mut s).await;
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(!String::from_utf8_lossy(&got).contains("8jKS'y:G*Co,Wxa-"));
    still_served(&mut ok, 1000).await;
    drop((ok, slow, s));
    server.shutdown().await;
}

#[tokio::test]
async fn pings_and_interleaved_control_frames() {
    let server = Running::start(echo_server(Config::default())).await;
    let mut s = raw(server.addr).await;
    rfc_handshake(&mut s, "/").await;
    let mut bytes = client_frame(false, 1, b"Hel");
    bytes.extend(client_frame(true, 9, b"are you there"));
    bytes.extend(client_frame(true, 0, b"lo"));
    s.write_all(&bytes).await.unwrap();
    let mut buf = vec![0u8; 2 + 13 + 2 + 5];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..15], b"\x8a\x0dare you there");
    assert_eq!(&buf[15..], b"\x81\x05Hello");
    // The client closes: the server echoes the code and closes the TCP connection first.
    s.write_all(&client_frame(true, 8, &[0x03, 0xe8, b'o', b'k']))
        .await
        .unwrap();
    let got = read_to_eof(&mut s).await;
    assert_eq!(close_code_of(&got), Some(1000));
    server.shutdown().await;
}

#[tokio::test]
async fn many_senders_share_one_socket() {
    let server = Server::new().dispatch(|_: &Handshake<'_>| {
        Some(Accept::session(|sender| {
            move |msg: Message| {
                let sender = sender.clone();
                async move {
                    if msg == Message::text("go") {
                        let mut tasks = Vec::new();
                        for t in 0..8 {
                            let sender = sender.clone();
                            tasks.push(tokio::spawn(async move {
                                for i in 0..250 {
                                    sender.send(format!("{t}:{i}")).await.unwrap();
                                }
                            }));
                        }
                        for task in tasks {
                            task.await.unwrap();
                        }
                        sender.send("end").await.unwrap();
                    }
                }
            }
        }))
    });
    let server = Running::start(server).await;
    let (mut ws, _) = Connector::new().connect(&server.url("/")).await.unwrap();
    ws.send("go").await.unwrap();
    let mut last = [-1i64; 8];
    let mut count = 0;
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else {
            panic!("{msg:?}")
        };
        if text == "end" {
            break;
        }
        let (t, i) = text.split_once(':').unwrap();
        let (t, i): (usize, i64) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, last[t] + 1, "messages of one sender stay in order");
        last[t] = i;
        count += 1;
    }
    assert_eq!(count, 2000);
    // The socket is also a Sink.
    ws.send(Message::text("via sink")).await.unwrap();
    futures_util::SinkExt::close(&mut ws).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_every_socket() {
    let server = Running::start(echo_server(Config::default())).await;
    let (mut rfc, _) = Connector::new().connect(&server.url("/")).await.unwrap();
    let (mut hixie, _) = Connector::new()
        .version(Version::Hixie76)
        .connect(&server.url("/"))
        .await
        .unwrap();
    rfc.send("x").await.unwrap();
    rfc.recv().await.unwrap().unwrap();
    hixie.send("y").await.unwrap();
    hixie.recv().await.unwrap().unwrap();
    let addr = server.addr;
    let stopping = tokio::spawn(server.shutdown());
    match tokio::time::timeout(WAIT, rfc.recv()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::GOING_AWAY),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert!(matches!(
        tokio::time::timeout(WAIT, hixie.recv()).await.unwrap(),
        Some(Ok(Message::Close(None)))
    ));
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate() {
    let dir = std::env::temp_dir().join(format!("hs-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();

    let server = Running::start(
        echo_server(Config::default())
            .tls_pem(&cert_path, &key_path)
            .unwrap(),
    )
    .await;
    let tls = hunchensocket_core::tls::client_config_trusting(&cert_path).unwrap();
    let url = format!("wss://localhost:{}/secure", server.addr.port());
    let (mut ws, _) = Connector::new()
        .tls(tls.clone())
        .connect(&url)
        .await
        .unwrap();
    ws.send("secret").await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("secret"));
    ws.send(Message::binary(vec![0u8, 255])).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::binary(vec![0u8, 255])
    );
    drop(ws);
    // hixie-76 over TLS announces a wss:// location (checked by the client's handshake).
    let (mut ws, _) = Connector::new()
        .version(Version::Hixie76)
        .tls(tls)
        .connect(&url)
        .await
        .unwrap();
    ws.send("old but secure").await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("old but secure")
    );
    drop(ws);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
