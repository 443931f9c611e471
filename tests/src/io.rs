//! Fixtures for the Engine.IO / Socket.IO protocol tests: the conformance server in-process, a
//! tiny HTTP/1.1 client for long-polling, and an Engine.IO WebSocket client.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hunchensocket_core::{Connector, MaybeTlsStream, Message, Version, WebSocket};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Running, WAIT};

/// The Engine.IO record separator between packets of one polling body.
pub const SEP: char = '\x1e';

/// Base64 as Engine.IO writes it (standard alphabet, padded).
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Starts the conformance server (bare Engine.IO echo at `/engine.io/`, Socket.IO at
/// `/socket.io/`; see `hunchensocket_examples::conformance`) on a loopback port.
pub async fn start() -> Running {
    start_with_echo().await.0
}

/// [`start`], with the bare Engine.IO echo to look inside (its waiting polls).
pub async fn start_with_echo() -> (Running, Echo) {
    let parts = hunchensocket_examples::conformance::parts(&Default::default());
    (Running::start(parts.server).await, parts.echo)
}

/// The conformance server's bare Engine.IO echo.
pub type Echo = hunchensocket_io::engine::Engine<hunchensocket_examples::conformance::Echo>;

/// Waits until `echo` has `n` long-polling GETs waiting (at most [`WAIT`]).
pub async fn until_waiting_polls(echo: &Echo, n: usize) {
    let deadline = Instant::now() + WAIT;
    while echo.waiting_polls() != n {
        assert!(Instant::now() < deadline, "no {n} waiting poll(s) in time");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client

/// One HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The (de-chunked) body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("json body ({e}): {:?}", self.text()))
    }

    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts an Engine.IO error: `400 {"code":code,...}`.
    pub fn assert_error(&self, code: u64) {
        assert_eq!(self.status, 400, "status of {self:?} / {:?}", self.text());
        let json = self.json();
        assert_eq!(json["code"], code, "{json}");
        assert!(json["message"].is_string(), "{json}");
    }
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await.unwrap_or(0);
    buf.extend_from_slice(&chunk[..n]);
    n
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn read_response(s: &mut TcpStream) -> HttpResponse {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        assert!(
            fill(s, &mut buf).await > 0,
            "closed before the response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf.split_off(head_end + 4);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let body = if status == 101 {
        rest
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&rest, b"\r\n") {
                    break i;
                }
                assert!(fill(s, &mut rest).await > 0, "closed inside a chunk size");
            };
            let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
            let size_text = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            rest.drain(..line_end + 2);
            while rest.len() < size + 2 {
                assert!(fill(s, &mut rest).await > 0, "closed inside a chunk");
            }
            body.extend_from_slice(&rest[..size]);
            rest.drain(..size + 2);
            if size == 0 {
                break body;
            }
        }
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().expect("content-length");
        while rest.len() < len {
            assert!(fill(s, &mut rest).await > 0, "closed inside the body");
        }
        rest.truncate(len);
        rest
    } else {
        while fill(s, &mut rest).await > 0 {}
        rest
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Sends one request on a fresh connection and reads the response (bounded by [`WAIT`]).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    tokio::time::timeout(WAIT, async {
        let mut s = crate::raw(addr).await;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if method != "GET" || !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        s.write_all(&bytes).await.expect("write request");
        read_response(&mut s).await
    })
    .await
    .unwrap_or_else(|_| panic!("no answer to {method} {path} in time"))
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path, &[], b"").await
}

/// `POST path` with a text body.
pub async fn post(addr: SocketAddr, path: &str, body: &str) -> HttpResponse {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "text/plain;charset=UTF-8")],
        body.as_bytes(),
    )
    .await
}

/// A WebSocket upgrade request made by hand, so a refusal's status can be read.
pub async fn raw_upgrade(addr: SocketAddr, path: &str) -> HttpResponse {
    request(
        addr,
        "GET",
        path,
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
        b"",
    )
    .await
}

/// Splits a polling body into its packets.
pub fn packets(body: &str) -> Vec<String> {
    body.split(SEP).map(str::to_string).collect()
}

/// Parses an open packet (`0{...}`), checking that its keys are exactly the five of Engine.IO v4.
pub fn open_packet(packet: &str) -> Value {
    let json = packet
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an open packet: {packet:?}"));
    let v: Value = serde_json::from_str(json).expect("open packet json");
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ],
        "{v}"
    );
    assert!(v["sid"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    assert_eq!(v["pingInterval"], 300, "{v}");
    assert_eq!(v["pingTimeout"], 200, "{v}");
    assert_eq!(v["maxPayload"], 1_000_000, "{v}");
    v
}

// ---------------------------------------------------------------------------------------------
// An Engine.IO long-polling client

/// An Engine.IO session over long-polling.
pub struct Polling {
    /// The server.
    pub addr: SocketAddr,
    /// `/engine.io/` or `/socket.io/`.
    pub base: String,
    /// The session id.
    pub sid: String,
    /// The open packet.
    pub open: Value,
    queue: VecDeque<String>,
}

impl Polling {
    /// Performs the handshake (`GET base?EIO=4&transport=polling`).
    pub async fn open(addr: SocketAddr, base: &str) -> Polling {
        let res = get(addr, &format!("{base}?EIO=4&transport=polling")).await;
        assert_eq!(res.status, 200, "{:?}", res.text());
        let body = res.text();
        let first = packets(&body);
        assert_eq!(first.len(), 1, "{body:?}");
        let open = open_packet(&first[0]);
        Polling {
            addr,
            base: base.to_string(),
            sid: open["sid"].as_str().unwrap_or_default().to_string(),
            open,
            queue: VecDeque::new(),
        }
    }

    /// The session's polling URL path.
    pub fn path(&self) -> String {
        format!("{}?EIO=4&transport=polling&sid={}", self.base, self.sid)
    }

    /// The session's WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!(
            "ws://{}{}?EIO=4&transport=websocket&sid={}",
            self.addr, self.base, self.sid
        )
    }

    /// One raw GET with this sid.
    pub async fn get(&self) -> HttpResponse {
        get(self.addr, &self.path()).await
    }

    /// One raw POST with this sid.
    pub async fn post(&self, body: &str) -> HttpResponse {
        post(self.addr, &self.path(), body).await
    }

    /// POSTs packets joined by the separator; asserts `200 ok`.
    pub async fn send(&self, packets: &[&str]) {
        let res = self.post(&packets.join("\x1e")).await;
        assert_eq!(res.status, 200, "{:?}", res.text());
        assert_eq!(res.text(), "ok");
    }

    /// The next packet that is not a ping (answering pings with pongs).
    pub async fn next(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            while let Some(p) = self.queue.pop_front() {
                if p == "2" {
                    self.send(&["3"]).await;
                } else {
                    return p;
                }
            }
            assert!(Instant::now() < deadline, "no packet in time");
            let res = self.get().await;
            assert_eq!(res.status, 200, "{:?}", res.text());
            self.queue.extend(packets(&res.text()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An Engine.IO WebSocket client

/// One data frame received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
}

impl Frame {
    /// The text, panicking on binary.
    pub fn text(self) -> String {
        match self {
            Frame::Text(t) => t,
            Frame::Binary(b) => panic!("expected text, got binary {b:?}"),
        }
    }
}

/// An Engine.IO session over a WebSocket (RFC 6455 or hixie-76).
pub struct Ws {
    /// The socket.
    pub ws: WebSocket<MaybeTlsStream>,
    hixie: bool,
}

impl Ws {
    /// Connects without reading anything.
    pub async fn connect(url: &str, version: Version) -> Ws {
        let (ws, _) = tokio::time::timeout(WAIT, Connector::new().version(version).connect(url))
            .await
            .expect("connect in time")
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        Ws {
            ws,
            hixie: version == Version::Hixie76,
        }
    }

    /// Connects a fresh session to `base` over RFC 6455 and reads its open packet.
    pub async fn open(addr: SocketAddr, base: &str) -> (Ws, Value) {
        Ws::open_with(addr, base, Version::Rfc6455).await
    }

    /// Connects a fresh session to `base` with `version` and reads its open packet.
    pub async fn open_with(addr: SocketAddr, base: &str, version: Version) -> (Ws, Value) {
        let url = format!("ws://{addr}{base}?EIO=4&transport=websocket");
        let mut ws = Ws::connect(&url, version).await;
        let open = open_packet(&ws.recv().await.expect("open packet").text());
        (ws, open)
    }

    /// Sends a text frame.
    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_string()))
            .await
            .expect("send");
    }

    /// Sends a binary packet: a binary frame, or text `b<base64>` over hixie-76.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        let msg = if self.hixie {
            Message::text(format!("b{}", b64(bytes)))
        } else {
            Message::binary(bytes.to_vec())
        };
        self.ws.send(msg).await.expect("send binary");
    }

    /// The next data frame, or `None` once closed (bounded by `limit`; panics past it).
    pub async fn recv_within(&mut self, limit: Duration) -> Option<Frame> {
        self.try_recv_within(limit)
            .await
            .unwrap_or_else(|| panic!("neither a frame nor the close within {limit:?}"))
    }

    /// The next data frame (`Some(None)` once closed), or `None` if nothing came within `limit`.
    pub async fn try_recv_within(&mut self, limit: Duration) -> Option<Option<Frame>> {
        tokio::time::timeout(limit, async {
            loop {
                match self.ws.recv().await {
                    Some(Ok(Message::Text(t))) => return Some(Frame::Text(t.as_str().to_string())),
                    Some(Ok(Message::Binary(b))) => return Some(Frame::Binary(b.to_vec())),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                }
            }
        })
        .await
        .ok()
    }

    /// The next data frame, or `None` once closed.
    pub async fn recv(&mut self) -> Option<Frame> {
        self.recv_within(WAIT).await
    }

    /// The next frame that is not an Engine.IO ping (answering pings with pongs); panics if closed.
    pub async fn next(&mut self) -> Frame {
        loop {
            match self.recv().await {
                Some(Frame::Text(t)) if t == "2" => self.send("3").await,
                Some(f) => return f,
                None => panic!("closed while waiting for a packet"),
            }
        }
    }

    /// The next non-ping text packet.
    pub async fn next_text(&mut self) -> String {
        self.next().await.text()
    }

    /// Waits until the server closes the connection (answering pings if `pong`); returns the
    /// data frames seen meanwhile other than pings. Panics after `limit`.
    pub async fn closed_within(&mut self, limit: Duration, pong: bool) -> Vec<Frame> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = self.try_recv_within(left).await else {
                panic!("still open after {limit:?}; saw {seen:?}");
            };
            match frame {
                None => return seen,
                Some(Frame::Text(t)) if t == "2" => {
                    if pong {
                        let _ = self.ws.send(Message::text("3")).await;
                    }
                }
                Some(f) => seen.push(f),
            }
        }
    }
}

/// Opens a Socket.IO connection over RFC 6455 (Engine.IO open packet read).
pub async fn sio(addr: SocketAddr) -> Ws {
    Ws::open(addr, "/socket.io/").await.0
}

/// Sends `connect` (e.g. `40`, `40/custom,{...}`) and checks the `40[nsp,]{"sid":...}` answer;
/// returns the socket id.
pub async fn sio_join(ws: &mut Ws, connect: &str) -> String {
    ws.send(connect).await;
    let nsp = connect
        .strip_prefix("40")
        .and_then(|rest| rest.split_once(',').filter(|_| rest.starts_with('/')))
        .map(|(nsp, _)| format!("{nsp},"))
        .unwrap_or_default();
    let answer = ws.next_text().await;
    let json = answer
        .strip_prefix(&format!("40{nsp}"))
        .unwrap_or_else(|| panic!("expected 40{nsp}{{...}}, got {answer:?}"));
    let v: Value = serde_json::from_str(json).expect("connect answer json");
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["sid"], "{v}");
    v["sid"].as_str().expect("sid").to_string()
}
