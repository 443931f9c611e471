//! The load generator's connection: raw TCP (tokio), one handshake, then pre-encoded masked
//! frames. Reading parses frames in place in a per-connection buffer, so the loops of the
//! workloads allocate nothing per message.
//!
//! It speaks RFC 6455 (client frames masked with a fixed key: fine for a load generator, and the
//! masking is done once, when a frame is pre-encoded), hixie-76 (`0x00 text 0xFF`), and
//! Socket.IO v5 over RFC 6455 (`0{…}` open, `40` connect, `42…` events, `43…` acks, Engine.IO
//! pings `2` answered `3`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The fixed masking key of every client frame.
const MASK: [u8; 4] = [0x5a, 0x1c, 0xe3, 0x07];

/// Opcodes.
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;

/// What a client speaks on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// RFC 6455 to any path (the raw echo servers).
    Rfc6455,
    /// hixie-76 (draft 76) to any path (our core echo only).
    Hixie76,
    /// Socket.IO v5 over RFC 6455: upgrade, `0{…}`, `40`, `40{…}`.
    SocketIo,
}

/// Encodes one masked client frame (RFC 6455), or a hixie-76 text frame.
pub fn encode(proto: Proto, opcode: u8, payload: &[u8]) -> Vec<u8> {
    if proto == Proto::Hixie76 {
        let mut out = Vec::with_capacity(payload.len() + 2);
        out.push(0x00);
        out.extend_from_slice(payload);
        out.push(0xff);
        return out;
    }
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// One open connection of the load generator.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    proto: Proto,
    pong: Vec<u8>,
    /// Bytes read so far (handshake included).
    pub bytes_in: u64,
}

/// A frame just read: its opcode and where its payload lies in the connection's buffer (valid
/// until the next read).
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub opcode: u8,
    start: usize,
    end: usize,
}

/// The hixie-76 example handshake of draft 76 (keys, body, and the answer a server must give).
const HIXIE_KEY1: &str = "4 @1  46546xW%0l 1 5";
const HIXIE_KEY2: &str = "12998 5 Y3 1  .P00";
const HIXIE_BODY: &[u8; 8] = b"^n:ds[4U";
const HIXIE_ANSWER: &[u8; 16] = b"8jKS'y:G*Co,Wxa-";

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Connects from loopback source address `127.0.0.(1 + source % 16)` (spreads ephemeral ports
/// over several source IPs when there are many sessions).
pub async fn tcp_connect(addr: SocketAddr, source: usize) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    let ip = Ipv4Addr::new(127, 0, 0, 1 + (source % 16) as u8);
    socket.bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Conn {
    /// Connects and completes the handshake of `proto` (for Socket.IO: through `40{…}`).
    pub async fn open(addr: SocketAddr, proto: Proto, source: usize) -> io::Result<Conn> {
        let stream = tcp_connect(addr, source).await?;
        let mut conn = Conn {
            stream,
            buf: vec![0; 4096],
            start: 0,
            end: 0,
            proto,
            pong: encode(proto, TEXT, b"3"),
            bytes_in: 0,
        };
        match proto {
            Proto::Rfc6455 => {
                conn.upgrade_rfc6455("/bench").await?;
            }
            Proto::Hixie76 => conn.upgrade_hixie76().await?,
            Proto::SocketIo => {
                conn.upgrade_rfc6455("/socket.io/?EIO=4&transport=websocket")
                    .await?;
                let f = conn.read_frame().await?;
                if !conn.payload(f).starts_with(b"0{") {
                    return Err(bad("no Engine.IO open packet"));
                }
                let connect = encode(Proto::SocketIo, TEXT, b"40");
                conn.send(&connect).await?;
                loop {
                    let f = conn.read_frame().await?;
                    if conn.payload(f).starts_with(b"40") {
                        break;
                    }
                }
            }
        }
        Ok(conn)
    }

    async fn upgrade_rfc6455(&mut self, path: &str) -> io::Result<()> {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: YmVuY2gtbG9hZC1rZXkhIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        self.stream.write_all(req.as_bytes()).await?;
        let head = self.read_head().await?;
        if !head.starts_with("HTTP/1.1 101") {
            return Err(bad(format!(
                "upgrade refused: {}",
                head.lines().next().unwrap_or("")
            )));
        }
        Ok(())
    }

    async fn upgrade_hixie76(&mut self) -> io::Result<()> {
        let mut req = format!(
            "GET /bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\
             Origin: http://127.0.0.1\r\nSec-WebSocket-Key1: {HIXIE_KEY1}\r\n\
             Sec-WebSocket-Key2: {HIXIE_KEY2}\r\n\r\n"
        )
        .into_bytes();
        req.extend_from_slice(HIXIE_BODY);
        self.stream.write_all(&req).await?;
        let head = self.read_head().await?;
        if !head.starts_with("HTTP/1.1 101") {
            return Err(bad(format!(
                "hixie-76 upgrade refused: {}",
                head.lines().next().unwrap_or("")
            )));
        }
        self.fill(16).await?;
        if &self.buf[self.start..self.start + 16] != HIXIE_ANSWER {
            return Err(bad("wrong hixie-76 challenge answer"));
        }
        self.start += 16;
        Ok(())
    }

    /// Reads an HTTP response head (through the blank line); bytes after it stay buffered.
    async fn read_head(&mut self) -> io::Result<String> {
        loop {
            let data = &self.buf[self.start..self.end];
            if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..i]).into_owned();
                self.start += i + 4;
                return Ok(head);
            }
            if self.end - self.start > 16 << 10 {
                return Err(bad("response head too long"));
            }
            self.read_more(1).await?;
        }
    }

    /// Makes sure `n` bytes are buffered.
    async fn fill(&mut self, n: usize) -> io::Result<()> {
        while self.end - self.start < n {
            self.read_more(n - (self.end - self.start)).await?;
        }
        Ok(())
    }

    /// One read from the socket into the buffer, making room for at least `want` more bytes.
    async fn read_more(&mut self, want: usize) -> io::Result<()> {
        if self.buf.len() - self.end < want.max(512) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() - self.end < want {
                self.buf.resize(self.end + want, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed",
            ));
        }
        self.end += n;
        self.bytes_in += n as u64;
        Ok(())
    }

    /// Writes bytes (pre-encoded frames).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The payload of a frame just read.
    pub fn payload(&self, f: Frame) -> &[u8] {
        &self.buf[f.start..f.end]
    }

    /// Reads the next frame. Cancel-safe: nothing is consumed until a whole frame is buffered.
    pub async fn read_frame(&mut self) -> io::Result<Frame> {
        loop {
            if let Some(f) = self.parse()? {
                return Ok(f);
            }
            self.read_more(1).await?;
        }
    }

    /// Reads the next data frame; answers Engine.IO pings (`2` → `3`) and skips control frames.
    /// A close frame is an error.
    pub async fn read_data(&mut self) -> io::Result<Frame> {
        loop {
            let f = self.read_frame().await?;
            match f.opcode {
                TEXT if self.proto == Proto::SocketIo && self.payload(f) == b"2" => {
                    let Conn { stream, pong, .. } = self;
                    stream.write_all(pong).await?;
                }
                TEXT | BINARY => return Ok(f),
                CLOSE => return Err(bad("server sent close")),
                _ => {}
            }
        }
    }

    fn parse(&mut self) -> io::Result<Option<Frame>> {
        let data = &mut self.buf[self.start..self.end];
        if self.proto == Proto::Hixie76 {
            if data.len() < 2 {
                return Ok(None);
            }
            if data[0] == 0xff && data[1] == 0x00 {
                self.start += 2;
                return Ok(Some(Frame {
                    opcode: CLOSE,
                    start: 0,
                    end: 0,
                }));
            }
            if data[0] != 0x00 {
                return Err(bad("unexpected hixie-76 frame type"));
            }
            let Some(i) = data[1..].iter().position(|&b| b == 0xff) else {
                return Ok(None);
            };
            let f = Frame {
                opcode: TEXT,
                start: self.start + 1,
                end: self.start + 1 + i,
            };
            self.start += i + 2;
            return Ok(Some(f));
        }
        if data.len() < 2 {
            return Ok(None);
        }
        let opcode = data[0] & 0x0f;
        let masked = data[1] & 0x80 != 0;
        let (len, mut hdr) = match data[1] & 0x7f {
            126 if data.len() >= 4 => (u16::from_be_bytes([data[2], data[3]]) as usize, 4),
            127 if data.len() >= 10 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[2..10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            126 | 127 => return Ok(None),
            n => (n as usize, 2),
        };
        let key_at = hdr;
        if masked {
            hdr += 4;
        }
        if data.len() < hdr + len {
            if hdr + len > self.buf.len() {
                // A frame larger than the buffer: grow it once (never in the steady state).
                self.buf.resize(hdr + len + 4096, 0);
            }
            return Ok(None);
        }
        if masked {
            let key = [
                data[key_at],
                data[key_at + 1],
                data[key_at + 2],
                data[key_at + 3],
            ];
            for (i, b) in data[hdr..hdr + len].iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        let f = Frame {
            opcode,
            start: self.start + hdr,
            end: self.start + hdr + len,
        };
        self.start += hdr + len;
        Ok(Some(f))
    }
}

/// The ack id of a Socket.IO ack packet `43ID[…]`, if it is one.
pub fn ack_id(payload: &[u8]) -> Option<usize> {
    let rest = payload.strip_prefix(b"43")?;
    let mut id = 0usize;
    let mut digits = 0;
    for &b in rest {
        if !b.is_ascii_digit() {
            break;
        }
        id = id * 10 + (b - b'0') as usize;
        digits += 1;
    }
    (digits > 0).then_some(id)
}

/// The number `N` of a `42["tick",N]` packet, if it is one.
pub fn tick_number(payload: &[u8]) -> Option<usize> {
    let rest = payload.strip_prefix(b"42[\"tick\",")?;
    let mut n = 0usize;
    let mut digits = 0;
    for &b in rest {
        if !b.is_ascii_digit() {
            break;
        }
        n = n * 10 + (b - b'0') as usize;
        digits += 1;
    }
    (digits > 0).then_some(n)
}

/// The 36-byte JSON object every echo event carries.
pub const EVENT_JSON: &str = r#"{"id":1,"text":"abcdefghijklmnopqr"}"#;

/// A Socket.IO `echo` event with ack id `id`, masked.
pub fn echo_event(id: usize) -> Vec<u8> {
    let text = format!("42{id}[\"echo\",{EVENT_JSON}]");
    encode(Proto::SocketIo, TEXT, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_36_bytes() {
        assert_eq!(EVENT_JSON.len(), 36);
    }

    #[test]
    fn parses_acks_and_ticks() {
        assert_eq!(ack_id(b"4312[{}]"), Some(12));
        assert_eq!(ack_id(b"42[\"x\"]"), None);
        assert_eq!(tick_number(b"42[\"tick\",77]"), Some(77));
    }

    #[test]
    fn masks_frames() {
        let f = encode(Proto::Rfc6455, TEXT, b"ab");
        assert_eq!(f[0], 0x81);
        assert_eq!(f[1], 0x82);
        assert_eq!(f[6] ^ MASK[0], b'a');
    }
}
