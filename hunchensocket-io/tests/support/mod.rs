//! Fixtures shared by this crate's integration tests: a server on a loopback port, and bare
//! Socket.IO clients over WebSocket and over long-polling that speak the protocol by hand (so a
//! test can send what no real client would).

#![allow(dead_code, unreachable_pub)] // each test file uses a different part of this module

use std::net::SocketAddr;
use std::time::Duration;

use hunchensocket_core::{Connector, MaybeTlsStream, Message, WebSocket};
use hunchensocket_io::SocketIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound of any single wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// Serves `io` on a loopback port.
pub async fn start(io: &SocketIo) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.clone().serve(listener));
    addr
}

/// Polls `cond` until it holds, for at most [`WAIT`]; panics with `what` otherwise.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not in time: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The next value on `rx`, within [`WAIT`].
pub async fn next<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a value in time")
        .expect("the sender is alive")
}

/// A Socket.IO client over an RFC 6455 WebSocket.
pub struct WsClient {
    pub ws: WebSocket<MaybeTlsStream>,
}

impl WsClient {
    /// Opens an Engine.IO session and reads its open packet.
    pub async fn open(addr: SocketAddr) -> WsClient {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio::time::timeout(WAIT, Connector::new().connect(&url))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut client = WsClient { ws };
        let open = client.next_text().await.expect("open packet");
        assert!(open.starts_with("0{"), "{open}");
        client
    }

    /// Opens a session and joins `/`; returns the CONNECT answer.
    pub async fn join(addr: SocketAddr) -> WsClient {
        let mut client = WsClient::open(addr).await;
        client.send("40").await;
        let answer = client.next_text().await.expect("CONNECT answer");
        assert!(answer.starts_with("40{\"sid\":"), "{answer}");
        client
    }

    /// Sends one Engine.IO text packet.
    pub async fn send(&mut self, text: &str) {
        self.ws.send(text.to_string()).await.expect("send");
    }

    /// Sends one binary message.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send binary");
    }

    /// The next text packet other than a ping (answered), or `None` once the connection ends.
    pub async fn next_text(&mut self) -> Option<String> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.recv())
                .await
                .expect("a packet or the end in time");
            match msg {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                    let _ = self.ws.send("3").await;
                }
                Some(Ok(Message::Text(t))) => return Some(t.to_string()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Waits until the server ends the connection; returns the text packets seen meanwhile.
    pub async fn closed(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(text) = self.next_text().await {
            seen.push(text);
        }
        seen
    }
}

/// One HTTP response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Sends one HTTP/1.1 request on a fresh connection; reads the response (the server always
/// sends a Content-Length for these).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    tokio::time::timeout(WAIT, async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("write request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read response");
        let text = String::from_utf8(raw).expect("utf-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        Response {
            status,
            body: body.to_string(),
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no answer to {method} {path} in time"))
}

/// A Socket.IO client over long-polling.
pub struct PollingClient {
    addr: SocketAddr,
    sid: String,
}

impl PollingClient {
    /// Opens an Engine.IO session over polling.
    pub async fn open(addr: SocketAddr) -> PollingClient {
        let res = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
        assert_eq!(res.status, 200, "{res:?}");
        let open: serde_json::Value =
            serde_json::from_str(res.body.strip_prefix('0').expect("open packet")).unwrap();
        PollingClient {
            addr,
            sid: open["sid"].as_str().expect("sid").to_string(),
        }
    }

    /// Opens a session and joins `/`.
    pub async fn join(addr: SocketAddr) -> PollingClient {
        let client = PollingClient::open(addr).await;
        client.post(&["40"]).await;
        let answer = client.get().await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(answer.body.starts_with("40{\"sid\":"), "{answer:?}");
        client
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The path and query of this session's polling requests.
    pub fn path(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    /// POSTs packets (text, or `b` + base64 for binary) in one body.
    pub async fn post(&self, packets: &[&str]) -> Response {
        http(self.addr, "POST", &self.path(), &packets.join("\x1e")).await
    }

    /// One GET (waits for packets).
    pub async fn get(&self) -> Response {
        http(self.addr, "GET", &self.path(), "").await
    }
}

/// `b` + base64: a binary packet in a polling body.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "b{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The headers of an RFC 6455 upgrade request, each ending in CRLF.
pub const UPGRADE_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Sends `request` (the raw bytes of a head and any body) on a fresh connection and reads the
/// response head byte by byte, so that nothing after it is consumed. Gives back the status
/// (`None` when the connection closed first), the head, and the connection.
pub async fn raw_request(addr: SocketAddr, request: &[u8]) -> (Option<u16>, String, TcpStream) {
    tokio::time::timeout(WAIT, async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write request");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            match s.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
        (status, head, s)
    })
    .await
    .expect("an answer in time")
}

/// Reads the rest of a response whose head was read: up to the end of the connection (the
/// server closes it) or `len` bytes, whichever comes first.
pub async fn read_body(s: &mut TcpStream, len: usize) -> String {
    let mut body = vec![0u8; len];
    let mut got = 0;
    tokio::time::timeout(WAIT, async {
        while got < len {
            match s.read(&mut body[got..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    })
    .await
    .expect("a body in time");
    String::from_utf8_lossy(&body[..got]).into_owned()
}

/// The Engine.IO error code of a `{"code":N,"message":"..."}` body.
pub fn error_code(body: &str) -> u64 {
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not an error body: {body:?}"));
    json["code"].as_u64().expect("a code")
}
