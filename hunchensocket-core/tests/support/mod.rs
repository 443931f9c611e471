//! Fixtures shared by the hostile-input tests of this crate: an echo server on a loopback port,
//! raw TCP clients that send exactly the bytes a test chooses, a reader of server frames, and a
//! well-behaved bystander that must keep being served.

#![allow(dead_code, unreachable_pub)] // each test file uses a different part of this module

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use hunchensocket_core::codec::rfc6455::encode_frame;
use hunchensocket_core::{Accept, Config, Connector, Handshake, Message, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound of any single wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// The head of an RFC 6455 opening handshake, without its final blank line.
pub const UPGRADE_HEAD: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n";

/// Serves an echo endpoint with `config` on a loopback port: every data message comes back,
/// and the first subprotocol offered is chosen.
pub async fn echo_server(config: Config) -> SocketAddr {
    let server = Server::new().config(config).dispatch(|hs: &Handshake<'_>| {
        let accept = Accept::session(|sender| {
            move |msg: Message| {
                let sender = sender.clone();
                async move {
                    if msg.is_data() {
                        let _ = sender.send(msg).await;
                    }
                }
            }
        });
        Some(accept.first_protocol(hs))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener));
    addr
}

/// Reads a response head byte by byte (so that nothing after it is consumed); `None` when the
/// server closes the connection first.
pub async fn read_head(s: &mut TcpStream) -> Option<String> {
    tokio::time::timeout(WAIT, async {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            match s.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return None,
            }
        }
        Some(String::from_utf8_lossy(&head).into_owned())
    })
    .await
    .expect("a response head or the end in time")
}

/// The status code of a response head.
pub fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// Sends `head` plus the blank line that ends it; gives back the connection and the response
/// head (`None` when the connection was closed without one).
pub async fn request(addr: SocketAddr, head: &str) -> (TcpStream, Option<String>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{head}\r\n").as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    (s, head)
}

/// A raw client after a successful RFC 6455 opening handshake.
pub async fn upgraded(addr: SocketAddr) -> TcpStream {
    let (s, head) = request(addr, UPGRADE_HEAD).await;
    let head = head.expect("a handshake answer");
    assert_eq!(status(&head), 101, "{head}");
    s
}

/// A masked client frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    encode_frame(
        fin,
        opcode,
        payload,
        Some([0x12, 0x34, 0x56, 0x78]),
        &mut dst,
    );
    dst.to_vec()
}

/// Reads one (unmasked) server frame: its opcode and payload; `None` once the connection ends.
pub async fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    tokio::time::timeout(WAIT, async {
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.ok()?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut ext = [0u8; 2];
                s.read_exact(&mut ext).await.ok()?;
                u64::from(u16::from_be_bytes(ext))
            }
            127 => {
                let mut ext = [0u8; 8];
                s.read_exact(&mut ext).await.ok()?;
                u64::from_be_bytes(ext)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).ok()?];
        s.read_exact(&mut payload).await.ok()?;
        Some((head[0] & 0x0f, payload))
    })
    .await
    .expect("a frame or the end in time")
}

/// Reads frames until the server's close frame; gives its status code (`None` for a close
/// without one, or when the connection ended without a close frame). Checks that the server
/// then ends the connection.
pub async fn close_code(s: &mut TcpStream) -> Option<u16> {
    let code = loop {
        match read_frame(s).await {
            Some((0x8, payload)) if payload.len() >= 2 => {
                break Some(u16::from_be_bytes([payload[0], payload[1]]));
            }
            Some((0x8, _)) | None => break None,
            Some(_) => {}
        }
    };
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut rest))
        .await
        .expect("the server ends the connection after its close")
        .ok();
    code
}

/// A well-behaved client: connects, sends a text message and gets it back.
pub async fn bystander(addr: SocketAddr) {
    tokio::time::timeout(WAIT, async {
        let (mut ws, _) = Connector::new()
            .connect(&format!("ws://{addr}/"))
            .await
            .expect("the bystander connects");
        ws.send("still here").await.unwrap();
        assert_eq!(
            ws.recv().await.transpose().unwrap(),
            Some(Message::text("still here"))
        );
    })
    .await
    .expect("the bystander is served in time");
}
