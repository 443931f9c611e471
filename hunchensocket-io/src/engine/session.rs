//! One Engine.IO session: its transport, its outbound queue and flow control, its heartbeat,
//! and its end.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use hunchensocket_core::{CloseCode, Sender};
use tokio::sync::Notify;

use super::Handler;
use super::packet::{Packet, Payload};

/// A session id: 20 URL-safe characters from 15 random bytes.
pub type Sid = Arc<str>;

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent a close packet, or its transport closed cleanly.
    TransportClose,
    /// The transport failed (read or write error, or a protocol error below Engine.IO).
    TransportError,
    /// No pong within the ping timeout.
    PingTimeout,
    /// A packet could not be parsed.
    ParseError,
    /// The server closed the session.
    ServerClose,
    /// The server is shutting down.
    ServerShutdown,
    /// The client stopped reading and its outbound queue overflowed.
    SlowConsumer,
    /// The client broke the transport rules (duplicate poll, oversized payload, ...).
    BadRequest,
}

impl CloseReason {
    /// Whether a polling client still gets what was queued, then the close packet, on its
    /// next polls (the server ended the session on purpose).
    pub(crate) fn delivered_on_next_poll(self) -> bool {
        matches!(self, CloseReason::ServerClose | CloseReason::ServerShutdown)
    }

    /// The reason as Socket.IO names it (`"transport close"`, `"ping timeout"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError | CloseReason::BadRequest => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ServerClose => "forced close",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::SlowConsumer => "slow consumer",
        }
    }
}

/// Why a packet was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session has ended.
    #[error("the session is closed")]
    Closed,
    /// The client is not reading: the outbound queue is full. A volatile packet is dropped;
    /// any other packet ends the session (reason [`CloseReason::SlowConsumer`]).
    #[error("the outbound queue is full")]
    Full,
}

/// What the application may know of the request that opened a session.
#[derive(Clone, Debug)]
pub struct HandshakeInfo {
    /// The opening request's headers.
    pub headers: http::HeaderMap,
    /// The opening request's URI (path and query).
    pub uri: http::Uri,
    /// The client's address, when the server knows it.
    pub peer: Option<SocketAddr>,
    /// When the session opened.
    pub issued: std::time::SystemTime,
}

impl HandshakeInfo {
    /// A query parameter of the opening request: the first value of `name`, keys and values
    /// percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(self.uri.query()?, name)
    }
}

/// The first value of parameter `name` in `query`, keys and values percent-decoded (as Node's
/// `querystring` reads them, and as `socket.handshake.query` shows them). The engine reads its
/// own parameters (`EIO`, `transport`, `sid`) with this too, so that it and the application
/// see the same request.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (!pair.is_empty() && percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Decodes a query value: `+` is a space, `%` and two hex digits a byte; any other `%` stays
/// as it is. Bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        // Digits only: `u8::from_str_radix` would also take a sign (`%+1`).
        char::from(b).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push((high << 4) | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The transport a session sends on.
pub(crate) enum Transport {
    /// Long-polling: packets wait in the queue for the next GET.
    Polling,
    /// A WebSocket; `binary` is false over hixie (binary goes as `b` + base64 text).
    WebSocket { sender: Sender, binary: bool },
}

pub(crate) struct State {
    pub(crate) transport: Transport,
    /// A WebSocket is probing to take over from polling.
    pub(crate) upgrading: bool,
    /// Outbound packets for polling (and those queued during an upgrade).
    pub(crate) queue: VecDeque<Packet>,
    pub(crate) queued_bytes: usize,
    /// A GET is waiting / a POST is being read.
    pub(crate) polling: bool,
    pub(crate) posting: bool,
    pub(crate) closed: Option<CloseReason>,
    /// Ended by [`Session::abort`]: a waiting poll gets an error, not a close packet.
    pub(crate) aborted: bool,
    pub(crate) pong: bool,
}

/// One Engine.IO session, with the application's per-session data `D`.
pub struct Session<D> {
    id: Sid,
    pub(crate) state: Mutex<State>,
    /// Wakes a waiting GET: packets were queued, an upgrade started, or the session closed.
    pub(crate) poll_wake: Notify,
    /// Wakes the heartbeat: a pong arrived, or the session closed.
    pub(crate) heartbeat_wake: Notify,
    info: HandshakeInfo,
    max_buffer: usize,
    pub(crate) engine: Weak<dyn SessionOwner<D>>,
    /// The runtime the session was made on, for work started from a thread without one.
    runtime: Option<tokio::runtime::Handle>,
    data: D,
}

/// What a session needs of its engine: to leave it and to tell the application.
pub(crate) trait SessionOwner<D>: Send + Sync {
    fn closed(&self, session: &Arc<Session<D>>, reason: CloseReason);
}

impl<D> std::fmt::Debug for Session<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A new random session id.
pub(crate) fn new_sid() -> Sid {
    use base64::Engine as _;
    let mut bytes = [0u8; 15];
    // The OS random source failing is not something a server can recover from.
    getrandom::fill(&mut bytes).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(bytes)
        .into()
}

impl<D: Send + Sync + 'static> Session<D> {
    pub(crate) fn new(
        id: Sid,
        transport: Transport,
        info: HandshakeInfo,
        max_buffer: usize,
        engine: Weak<dyn SessionOwner<D>>,
        data: D,
    ) -> Self {
        Session {
            id,
            state: Mutex::new(State {
                transport,
                upgrading: false,
                queue: VecDeque::new(),
                queued_bytes: 0,
                polling: false,
                posting: false,
                closed: None,
                aborted: false,
                pong: false,
            }),
            poll_wake: Notify::new(),
            heartbeat_wake: Notify::new(),
            info,
            max_buffer,
            engine,
            runtime: tokio::runtime::Handle::try_current().ok(),
            data,
        }
    }

    /// Runs `task` on the current runtime or, called from a thread without one (a plain
    /// `std::thread`), on the runtime the session was made on; never panics for want of one.
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(task)),
            Err(_) => match &self.runtime {
                Some(runtime) => drop(runtime.spawn(task)),
                None => tracing::warn!(sid = %self.id, "no tokio runtime to run a task on"),
            },
        }
    }

    /// The session id.
    pub fn id(&self) -> &Sid {
        &self.id
    }

    /// The application's data for this session.
    pub fn data(&self) -> &D {
        &self.data
    }

    /// The request that opened the session.
    pub fn handshake(&self) -> &HandshakeInfo {
        &self.info
    }

    /// The current transport's name: `"polling"` or `"websocket"`.
    pub fn transport_name(&self) -> &'static str {
        match self.lock().transport {
            Transport::Polling => "polling",
            Transport::WebSocket { .. } => "websocket",
        }
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes waiting to be sent to the client: the WebSocket's unwritten bytes, or the
    /// messages queued for the next poll. The flow-control policy keeps it at most
    /// `max_buffer` (see [`EngineConfig::max_buffer`](super::EngineConfig::max_buffer)).
    pub fn buffered(&self) -> usize {
        let st = self.lock();
        match &st.transport {
            Transport::WebSocket { sender, .. } if !st.upgrading => sender.buffered(),
            _ => st.queued_bytes,
        }
    }

    /// Sends a message. `volatile` messages are dropped, not queued, when the client is not
    /// keeping up; a full queue ends the session for any other message.
    pub fn send(self: &Arc<Self>, payload: Payload, volatile: bool) -> Result<(), SendError> {
        self.send_packet(Packet::Message(payload), volatile)
    }

    /// Sends several messages as one: all of them, or none when the client is not keeping up
    /// (what a message that depends on the ones after it needs, such as a Socket.IO packet and
    /// its binary attachments). Otherwise as [`send`](Self::send).
    pub fn send_all(
        self: &Arc<Self>,
        payloads: impl IntoIterator<Item = Payload>,
        volatile: bool,
    ) -> Result<(), SendError> {
        let packets: Vec<Packet> = payloads.into_iter().map(Packet::Message).collect();
        let size: usize = packets.iter().map(packet_size).sum();
        // Room is checked and every message queued under one lock of the session, which every
        // other send takes too.
        let mut st = self.lock();
        if st.closed.is_some() {
            return Err(SendError::Closed);
        }
        if let Transport::WebSocket { sender, binary } = &st.transport {
            if !st.upgrading {
                if sender.buffered().saturating_add(size) > self.max_buffer {
                    drop(st);
                    return self.over_limit(volatile);
                }
                let sent = packets.iter().try_for_each(|p| send_ws(sender, p, *binary));
                drop(st);
                if sent.is_err() {
                    self.close(CloseReason::TransportError);
                    return Err(SendError::Closed);
                }
                return Ok(());
            }
        }
        if st.queued_bytes.saturating_add(size) > self.max_buffer {
            drop(st);
            return self.over_limit(volatile);
        }
        st.queued_bytes += size;
        st.queue.extend(packets);
        drop(st);
        self.poll_wake.notify_one();
        Ok(())
    }

    pub(crate) fn send_packet(
        self: &Arc<Self>,
        packet: Packet,
        volatile: bool,
    ) -> Result<(), SendError> {
        let mut st = self.lock();
        if st.closed.is_some() {
            return Err(SendError::Closed);
        }
        let size = packet_size(&packet);
        if let Transport::WebSocket { sender, binary } = &st.transport {
            if !st.upgrading {
                // Room is checked and the packet queued under one lock of the sender for text
                // (the hot path); other packets check first.
                let queued = match &packet {
                    Packet::Message(Payload::Text(text)) => {
                        sender.send_text_parts_within(&["4", text.as_str()], self.max_buffer)
                    }
                    _ if sender.buffered() + size > self.max_buffer => Ok(false),
                    _ => send_ws(sender, &packet, *binary).map(|()| true),
                };
                drop(st);
                return match queued {
                    Ok(true) => Ok(()),
                    Ok(false) => self.over_limit(volatile),
                    Err(_) => {
                        self.close(CloseReason::TransportError);
                        Err(SendError::Closed)
                    }
                };
            }
        }
        if st.queued_bytes + size > self.max_buffer {
            drop(st);
            return self.over_limit(volatile);
        }
        st.queued_bytes += size;
        st.queue.push_back(packet);
        drop(st);
        self.poll_wake.notify_one();
        Ok(())
    }

    /// The flow-control policy: a volatile packet is dropped; any other ends the session.
    fn over_limit(self: &Arc<Self>, volatile: bool) -> Result<(), SendError> {
        if !volatile {
            self.close(CloseReason::SlowConsumer);
        }
        Err(SendError::Full)
    }

    /// Ends the session: the client is told (a close packet to a waiting or next poll, a close
    /// frame on a WebSocket) and the application's close handler runs once. Callable from any
    /// thread, with or without a tokio runtime.
    pub fn close(self: &Arc<Self>, reason: CloseReason) {
        let mut st = self.lock();
        if st.closed.is_some() {
            return;
        }
        st.closed = Some(reason);
        if let Transport::WebSocket { sender, .. } = &st.transport {
            let code = if reason == CloseReason::ServerShutdown {
                CloseCode::GOING_AWAY
            } else {
                CloseCode::NORMAL
            };
            let sender = sender.downgrade();
            self.spawn(async move {
                let _ = sender.close(code, "");
            });
        }
        drop(st);
        self.poll_wake.notify_one();
        self.heartbeat_wake.notify_one();
        if let Some(engine) = self.engine.upgrade() {
            engine.closed(self, reason);
        }
    }

    /// Ends the session as a network failure would: the client is told nothing (no close
    /// packet, no close frame), what is queued for it is dropped, a WebSocket's connection is
    /// dropped ([`Sender::abort`](hunchensocket_core::Sender::abort)), and a waiting or later
    /// poll is answered with an error. The application's close handler runs once, with
    /// [`CloseReason::TransportError`]. Callable from any thread, with or without a runtime.
    pub fn abort(self: &Arc<Self>) {
        let mut st = self.lock();
        if st.closed.is_some() {
            return;
        }
        st.closed = Some(CloseReason::TransportError);
        st.aborted = true;
        st.queue.clear();
        st.queued_bytes = 0;
        if let Transport::WebSocket { sender, .. } = &st.transport {
            sender.abort();
        }
        drop(st);
        self.poll_wake.notify_one();
        self.heartbeat_wake.notify_one();
        if let Some(engine) = self.engine.upgrade() {
            engine.closed(self, CloseReason::TransportError);
        }
    }

    /// Handles one packet from the client, whatever the transport.
    pub(crate) fn on_packet<H: Handler<Data = D>>(self: &Arc<Self>, handler: &H, packet: Packet) {
        match packet {
            Packet::Message(payload) => handler.on_message(self, payload),
            Packet::Pong(_) => {
                self.lock().pong = true;
                self.heartbeat_wake.notify_one();
            }
            Packet::Ping(data) => {
                let _ = self.send_packet(Packet::Pong(data), true);
            }
            Packet::Close => self.close(CloseReason::TransportClose),
            Packet::Noop => {}
            // Only the server sends open; upgrade is only valid on a probing WebSocket.
            Packet::Open(_) | Packet::Upgrade => self.close(CloseReason::ParseError),
        }
    }

    /// Takes every queued packet for a GET response.
    pub(crate) fn drain(&self) -> Vec<Packet> {
        let mut st = self.lock();
        st.queued_bytes = 0;
        st.queue.drain(..).collect()
    }
}

/// A packet as one WebSocket message: binary messages as binary frames, or as `b` + base64
/// text where the WebSocket cannot carry binary (hixie).
pub(crate) fn ws_message(packet: &Packet, binary: bool) -> hunchensocket_core::Message {
    if binary {
        packet.to_ws()
    } else {
        let mut text = String::new();
        packet.encode_text(&mut text);
        hunchensocket_core::Message::text(text)
    }
}

/// Sends a packet on a WebSocket: a text message as its type digit and its text in one frame,
/// without joining them first; anything else through [`ws_message`].
pub(crate) fn send_ws(
    sender: &Sender,
    packet: &Packet,
    binary: bool,
) -> hunchensocket_core::Result<()> {
    match packet {
        Packet::Message(Payload::Text(text)) => sender.send_text_parts(&["4", text.as_str()]),
        Packet::Message(Payload::Binary(data)) if binary => {
            sender.send_now(hunchensocket_core::Message::Binary(data.clone()))
        }
        _ => sender.send_now(ws_message(packet, binary)),
    }
}

/// Bytes a packet takes in the outbound queue (what flow control counts).
fn packet_size(packet: &Packet) -> usize {
    match packet {
        Packet::Message(Payload::Text(t)) => t.len() + 1,
        Packet::Message(Payload::Binary(b)) => b.len() + 1,
        Packet::Open(t) | Packet::Ping(t) | Packet::Pong(t) => t.len() + 1,
        _ => 1,
    }
}

/// The heartbeat of one session: a ping every interval; no pong within the timeout ends it.
pub(crate) async fn heartbeat<D: Send + Sync + 'static>(
    session: Weak<Session<D>>,
    interval: Duration,
    timeout: Duration,
) {
    loop {
        let Some(s) = session.upgrade() else { return };
        // Sleep the interval unless the session closes first.
        let closed = async {
            loop {
                let notified = s.heartbeat_wake.notified();
                if s.is_closed() {
                    return;
                }
                notified.await;
            }
        };
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = closed => return,
        }
        {
            let mut st = s.lock();
            if st.closed.is_some() {
                return;
            }
            st.pong = false;
        }
        if s.send_packet(Packet::Ping(Default::default()), false)
            .is_err()
        {
            return;
        }
        let ponged = async {
            loop {
                let notified = s.heartbeat_wake.notified();
                {
                    let st = s.lock();
                    if st.pong || st.closed.is_some() {
                        return;
                    }
                }
                notified.await;
            }
        };
        if tokio::time::timeout(timeout, ponged).await.is_err() {
            s.close(CloseReason::PingTimeout);
            return;
        }
        if s.is_closed() {
            return;
        }
        drop(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        let info = HandshakeInfo {
            headers: http::HeaderMap::new(),
            uri: "/socket.io/?EIO=4&transport=polling&name=a%20b+c&flag"
                .parse()
                .unwrap(),
            peer: None,
            issued: std::time::SystemTime::now(),
        };
        assert_eq!(info.query("EIO").as_deref(), Some("4"));
        assert_eq!(info.query("name").as_deref(), Some("a b c"));
        assert_eq!(info.query("flag").as_deref(), Some(""));
        assert_eq!(info.query("nope"), None);
    }

    /// Found by the io_handshake fuzz target: keys were compared undecoded, so `a+b=1` had no
    /// `a b` (which `socket.handshake.query` showed), and `E%49O=4` no `EIO`.
    #[test]
    fn query_keys_are_decoded_and_the_first_value_wins() {
        let q = |name| query_param("a+b=1&E%49O=4&EIO=3&x&&=y", name);
        assert_eq!(q("a b").as_deref(), Some("1"));
        assert_eq!(q("a+b"), None);
        assert_eq!(q("EIO").as_deref(), Some("4"));
        assert_eq!(q("x").as_deref(), Some(""));
        assert_eq!(q("").as_deref(), Some("y"));
    }

    #[test]
    fn percent_decoding_takes_two_hex_digits_only() {
        assert_eq!(percent_decode("a%20b%2Bc%2b+d"), "a b+c+ d");
        assert_eq!(percent_decode("%e2%82%AC"), "€");
        // Not two hex digits: the `%` stays as it is (a sign is not a digit).
        for kept in ["%+1", "%-1", "% 1", "%1", "%", "%zz", "%1g", "100%"] {
            assert_eq!(
                percent_decode(kept),
                kept.replace('+', " "),
                "{kept:?} is not an escape"
            );
        }
        assert_eq!(percent_decode("%+10"), "% 10");
        // A multi-byte character after the `%` is not split.
        assert_eq!(percent_decode("%é1"), "%é1");
        assert_eq!(percent_decode("%1é"), "%1é");
        // Bytes that are not UTF-8 become U+FFFD.
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn sids_are_unique_and_url_safe() {
        let a = new_sid();
        let b = new_sid();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
