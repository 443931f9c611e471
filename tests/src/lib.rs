//! Fixtures shared by the end-to-end tests: in-process servers and raw-socket helpers.

pub mod io;

use std::net::SocketAddr;
use std::time::Duration;

use hunchensocket_core::{Accept, Config, Handshake, Message, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Upper bound of any single wait in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server running on a loopback port until dropped (then shut down gracefully).
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Starts `server` on `127.0.0.1:0`.
    pub async fn start(server: Server) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_shutdown(listener, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `ws://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Shuts the server down and waits until it has drained.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, task).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An echo server like `examples/echo`, with `config`.
pub fn echo_server(config: Config) -> Server {
    Server::new().config(config).dispatch(|_: &Handshake<'_>| {
        Some(Accept::session(|sender| {
            move |msg: Message| {
                let sender = sender.clone();
                async move {
                    if msg.is_data() {
                        let _ = sender.send(msg).await;
                    }
                }
            }
        }))
    })
}

/// Connects a raw TCP stream.
pub async fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Reads until the end of an HTTP response head; returns the head and any bytes after it.
pub async fn read_head(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return (String::from_utf8_lossy(&buf).into_owned(), rest);
        }
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("head in time")
            .expect("read");
        assert!(
            n > 0,
            "connection closed before the response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until EOF (bounded by [`WAIT`]); returns everything read.
pub async fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("peer closed in time");
    out
}

/// An RFC 6455 opening handshake over `s` (fixed key); panics unless answered `101`.
pub async fn rfc_handshake(s: &mut TcpStream, path: &str) -> Vec<u8> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let (head, rest) = read_head(s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    rest
}

/// A masked client frame (mask key fixed; fine for tests).
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// The close code of the first server frame in `bytes`, if it is a close frame with a code.
pub fn close_code_of(bytes: &[u8]) -> Option<u16> {
    if bytes.len() >= 4 && bytes[0] == 0x88 && bytes[1] >= 2 {
        Some(u16::from_be_bytes([bytes[2], bytes[3]]))
    } else {
        None
    }
}
