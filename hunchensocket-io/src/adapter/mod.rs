//! The adapter API: who a broadcast reaches, on this node and on the others.
//!
//! A leaf of the crate: it deals in socket ids, rooms, options and packets, and knows nothing
//! of [`Socket`](crate::Socket) or the server, so an adapter crate (Redis, say) depends on this
//! module alone.
//!
//! Each namespace has one [`Adapter`] behind `Arc<dyn Adapter>`, made by the server's
//! [`AdapterFactory`]. The adapter keeps the rooms of this node's sockets and, when it spans
//! several server processes, carries broadcasts and cluster requests to the others. What it
//! needs done to this node's sockets (deliver a packet from another node, describe sockets,
//! disconnect them, run a server-side event handler) it asks of the namespace through
//! [`Local`]. The in-memory [`LocalAdapter`] keeps rooms and has no other node.
//!
//! Operations that wait for other nodes return a [`Remote`]: what answered within the timeout,
//! and an error saying what did not.

mod local;
mod recovery;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

pub use local::LocalAdapter;
pub use recovery::{MemoryRecovery, Recovery};

/// A room name.
pub type Room = String;

/// A socket id (distinct from the Engine.IO session id).
pub type SocketId = Arc<str>;

/// A boxed future, as the adapter's asynchronous operations return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Who a broadcast or a cluster operation is for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket of the namespace when empty.
    pub rooms: Vec<Room>,
    /// Minus the sockets in any of these rooms (a socket id excludes that socket: every socket
    /// is in the room named by its own id).
    pub except: Vec<Room>,
    /// This node only, even with an adapter that spans several.
    pub local: bool,
    /// May be dropped for clients that are not keeping up.
    pub volatile: bool,
    /// How long acks (or answers from other nodes) are awaited, when that was chosen.
    pub timeout: Option<Duration>,
}

impl BroadcastOptions {
    /// Options for the sockets in `rooms`.
    pub fn to(rooms: impl IntoIterator<Item = Room>) -> Self {
        BroadcastOptions {
            rooms: rooms.into_iter().collect(),
            ..Default::default()
        }
    }
}

/// An event packet for many sockets: `data` is `[event, ...args]`, binary arguments stand as
/// `{"_placeholder":true,"num":N}` for `attachments[N]`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BroadcastPacket {
    /// The namespace.
    pub nsp: String,
    /// The event name, then its arguments.
    pub data: Vec<Value>,
    /// The binary arguments the placeholders refer to.
    pub attachments: Vec<Bytes>,
}

impl BroadcastPacket {
    /// A packet of `data` (event name first) in namespace `nsp`.
    pub fn new(nsp: impl Into<String>, data: Vec<Value>, attachments: Vec<Bytes>) -> Self {
        BroadcastPacket {
            nsp: nsp.into(),
            data,
            attachments,
        }
    }
}

/// A socket as other nodes see it (Socket.IO's `RemoteSocket` data).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct SocketInfo {
    /// The socket id.
    pub id: SocketId,
    /// The handshake as Socket.IO describes it: `headers`, `time`, `address`, `xdomain`,
    /// `secure`, `issued`, `url`, `query`, `auth`.
    pub handshake: Value,
    /// Its rooms, its own id among them.
    pub rooms: Vec<Room>,
    /// The application's data on it (`socket.data`).
    pub data: Value,
}

impl SocketInfo {
    /// A description of socket `id`.
    pub fn new(id: SocketId, handshake: Value, rooms: Vec<Room>, data: Value) -> Self {
        SocketInfo {
            id,
            handshake,
            rooms,
            data,
        }
    }
}

/// Why an adapter operation failed, in whole or in part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// Not every node answered in time.
    #[error("timed out: {answered} of {expected} answers came")]
    Timeout {
        /// Answers that came.
        answered: usize,
        /// Answers that were expected.
        expected: usize,
    },
    /// The shared engine (Redis, say) could not be reached.
    #[error("adapter backend unavailable: {0}")]
    Unavailable(String),
    /// A message could not be encoded for the other nodes.
    #[error("cannot encode for other nodes: {0}")]
    Encode(String),
}

/// What other nodes answered: every answer that came, and an error when not all did.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct Remote<T> {
    /// The answers that came.
    pub value: T,
    /// Why some answers are missing, if any are.
    pub error: Option<AdapterError>,
}

impl<T> Remote<T> {
    /// Every answer came.
    pub fn complete(value: T) -> Self {
        Remote { value, error: None }
    }

    /// `Ok` when every answer came, else the error with the answers that did.
    pub fn into_result(self) -> Result<T, PartialError<T>> {
        match self.error {
            None => Ok(self.value),
            Some(error) => Err(PartialError {
                error,
                partial: self.value,
            }),
        }
    }
}

impl<T: Default> Default for Remote<T> {
    fn default() -> Self {
        Remote::complete(T::default())
    }
}

/// A cluster operation that did not fully succeed: why, and what answered.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct PartialError<T> {
    /// What went wrong.
    pub error: AdapterError,
    /// The answers that came all the same.
    pub partial: T,
}

/// What a socket that dropped leaves behind for connection state recovery.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SessionState {
    /// Its id, given back to it.
    pub sid: SocketId,
    /// Its private id (`pid`), which the client sends back to be recovered.
    pub pid: String,
    /// Its rooms, its own id among them.
    pub rooms: Vec<Room>,
    /// The application's data on it.
    pub data: Value,
}

impl SessionState {
    /// Whether a packet sent to `rooms` (all sockets when empty) minus `except` was for this
    /// socket: the test that picks its missed packets.
    pub fn wants(&self, rooms: &[Room], except: &[Room]) -> bool {
        let in_room = |room: &Room| **room == *self.sid || self.rooms.contains(room);
        (rooms.is_empty() || rooms.iter().any(in_room)) && !except.iter().any(in_room)
    }

    /// The state of socket `sid`.
    pub fn new(sid: SocketId, pid: String, rooms: Vec<Room>, data: Value) -> Self {
        SessionState {
            sid,
            pid,
            rooms,
            data,
        }
    }
}

/// A session given back: its state, and the packets its client missed, in order (each with
/// its offset as the last element of its data).
#[non_exhaustive]
pub struct Restored {
    /// The socket's state when it dropped.
    pub state: SessionState,
    /// The packets sent to it since the client's offset.
    pub missed: Vec<BroadcastPacket>,
    /// Held until the socket is back in its rooms and its missed packets are sent, then
    /// dropped: an adapter that delivers live packets from a log of its own keeps them waiting
    /// meanwhile with it.
    pub hold: Option<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restored")
            .field("state", &self.state)
            .field("missed", &self.missed)
            .finish_non_exhaustive()
    }
}

impl Restored {
    /// A session given back with the packets its client missed.
    pub fn new(state: SessionState, missed: Vec<BroadcastPacket>) -> Self {
        Restored {
            state,
            missed,
            hold: None,
        }
    }

    /// With `hold` kept until the socket is back (see [`Restored::hold`]).
    pub fn holding(mut self, hold: Box<dyn std::any::Any + Send>) -> Self {
        self.hold = Some(hold);
        self
    }
}

/// Who delivers a kept event to this node's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The server, at once (the offset is already on the packet).
    Now,
    /// The adapter, once its log has given the packet its offset (the server only hands the
    /// packet to [`Adapter::broadcast`]).
    ByAdapter,
}

/// One client's answer to a broadcast that wanted acks: its first argument, each binary part
/// standing as a placeholder (`{"_placeholder":true,"num":N}`) for `attachments[N]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AckAnswer {
    /// The answer, binary parts as placeholders.
    pub value: Value,
    /// The binary parts the placeholders refer to.
    pub attachments: Vec<Bytes>,
}

impl AckAnswer {
    /// An answer with no binary part.
    pub fn new(value: Value) -> Self {
        AckAnswer {
            value,
            attachments: Vec::new(),
        }
    }
}

/// Calls back with each ack answer.
pub type AckCallback = Arc<dyn Fn(AckAnswer) + Send + Sync>;

/// Answers one server-side event from another node with one value (called at most once).
pub type ServerAck = Box<dyn FnOnce(Value) + Send>;

/// What an adapter asks of the namespace it serves on this node. Implemented by the server.
pub trait Local: Send + Sync + 'static {
    /// Delivers `packet` to these local sockets.
    fn emit(&self, sids: &[SocketId], packet: &BroadcastPacket, volatile: bool);
    /// Delivers `packet` to these local sockets, each asked for an ack; every answer that
    /// comes within `timeout` is passed to `on_ack`. Returns how many sockets were asked.
    fn emit_with_ack(
        &self,
        sids: &[SocketId],
        packet: &BroadcastPacket,
        timeout: Duration,
        on_ack: AckCallback,
    ) -> usize;
    /// Describes these local sockets (those still connected).
    fn describe(&self, sids: &[SocketId]) -> Vec<SocketInfo>;
    /// Disconnects these local sockets from the namespace, or closes their whole connection
    /// when `close`.
    fn disconnect(&self, sids: &[SocketId], close: bool);
    /// Runs the handler of a server-side event another node sent (`data` is `[event,
    /// ...args]`); `ack` is there when the sender waits for an answer.
    fn server_event(&self, data: Vec<Value>, ack: Option<ServerAck>);
    /// Whether the namespace recovers dropped clients (then events it gets carry offsets).
    fn keeps_sessions(&self) -> bool {
        false
    }
}

/// Keeps the rooms of one namespace on this node, and reaches the other nodes if there are any.
///
/// The room methods are about this node's sockets. Every socket is in a room named by its own
/// id, so a room-less broadcast reaches every socket the adapter knows. The methods below them
/// are about the other nodes and do nothing in-memory; the server calls them besides doing the
/// local part itself.
pub trait Adapter: Send + Sync + 'static {
    /// Adds a local socket to rooms.
    fn add_all(&self, sid: &SocketId, rooms: &[Room]);
    /// Removes a local socket from a room.
    fn del(&self, sid: &SocketId, room: &str);
    /// Removes a local socket from every room (it is leaving the namespace).
    fn del_all(&self, sid: &SocketId);
    /// The rooms a local socket is in.
    fn socket_rooms(&self, sid: &SocketId) -> Vec<Room>;
    /// Every room with at least one local socket.
    fn rooms(&self) -> Vec<Room>;
    /// The local sockets that `opts` selects.
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId>;

    /// Completes when the adapter can reach the other nodes (subscriptions made).
    fn ready(&self) -> BoxFuture<Result<(), AdapterError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Carries a broadcast to the other nodes.
    fn broadcast(
        &self,
        _packet: &BroadcastPacket,
        _opts: &BroadcastOptions,
    ) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Carries a broadcast that wants acks to the other nodes; gives the acks of their clients
    /// that came within `timeout`.
    fn broadcast_with_ack(
        &self,
        _packet: &BroadcastPacket,
        _opts: &BroadcastOptions,
        _timeout: Duration,
    ) -> BoxFuture<Remote<Vec<AckAnswer>>> {
        Box::pin(std::future::ready(Remote::default()))
    }

    /// The sockets of the other nodes that `opts` selects.
    fn fetch_sockets(&self, _opts: &BroadcastOptions) -> BoxFuture<Remote<Vec<SocketInfo>>> {
        Box::pin(std::future::ready(Remote::default()))
    }

    /// Makes the sockets of the other nodes that `opts` selects join `rooms`.
    fn add_sockets(&self, _opts: &BroadcastOptions, _rooms: &[Room]) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Makes the sockets of the other nodes that `opts` selects leave `rooms`.
    fn del_sockets(&self, _opts: &BroadcastOptions, _rooms: &[Room]) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Disconnects the sockets of the other nodes that `opts` selects (their whole connection
    /// when `close`).
    fn disconnect_sockets(
        &self,
        _opts: &BroadcastOptions,
        _close: bool,
    ) -> Result<(), AdapterError> {
        Ok(())
    }

    /// The rooms of the other nodes.
    fn all_rooms(&self) -> BoxFuture<Remote<Vec<Room>>> {
        Box::pin(std::future::ready(Remote::default()))
    }

    /// Sends a server-side event (`data` is `[event, ...args]`) to the other nodes.
    fn server_side_emit(&self, _data: &[Value]) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Sends a server-side event to the other nodes and gives their answers (one value from
    /// each) that came within `timeout`.
    fn server_side_emit_with_ack(
        &self,
        _data: &[Value],
        _timeout: Duration,
    ) -> BoxFuture<Remote<Vec<Value>>> {
        Box::pin(std::future::ready(Remote::default()))
    }

    /// How many server nodes share this namespace, this one included.
    fn server_count(&self) -> BoxFuture<usize> {
        Box::pin(std::future::ready(1))
    }

    /// The namespace is going away: stop listening to the other nodes.
    fn close(&self) {}

    /// Whether this adapter reaches other server processes (then recovery needs an adapter
    /// that keeps packets where every node sees them).
    fn spans_nodes(&self) -> bool {
        false
    }

    /// Whether this adapter keeps packets and sessions for connection state recovery
    /// ([`record`](Self::record), [`persist_session`](Self::persist_session),
    /// [`restore_session`](Self::restore_session)).
    fn recovers(&self) -> bool {
        false
    }

    /// With recovery: keeps an event about to be broadcast to `opts` and appends its offset to
    /// its data (the client sends back the last offset it saw), or says that it will deliver
    /// the packet to this node's sockets itself once it has an offset.
    fn record(&self, _packet: &mut BroadcastPacket, _opts: &BroadcastOptions) -> Delivery {
        Delivery::Now
    }

    /// With recovery: keeps the state of a socket that dropped.
    fn persist_session(&self, _state: SessionState) {}

    /// With recovery: the state of the socket with private id `pid` and the packets sent to
    /// it after `offset`, or `None` when it cannot be recovered whole.
    fn restore_session(&self, _pid: &str, _offset: &str) -> BoxFuture<Option<Restored>> {
        Box::pin(std::future::ready(None))
    }
}

/// Makes the adapter of each namespace.
pub trait AdapterFactory: Send + Sync + 'static {
    /// The adapter of namespace `nsp`; `local` reaches that namespace's sockets on this node.
    fn create(&self, nsp: &str, local: Weak<dyn Local>) -> Arc<dyn Adapter>;
}

impl<F> AdapterFactory for F
where
    F: Fn(&str, Weak<dyn Local>) -> Arc<dyn Adapter> + Send + Sync + 'static,
{
    fn create(&self, nsp: &str, local: Weak<dyn Local>) -> Arc<dyn Adapter> {
        self(nsp, local)
    }
}

/// The in-memory adapter's factory: rooms of this process, no other node.
#[derive(Clone, Copy, Debug, Default)]
pub struct InMemory;

impl AdapterFactory for InMemory {
    fn create(&self, _nsp: &str, _local: Weak<dyn Local>) -> Arc<dyn Adapter> {
        Arc::new(LocalAdapter::new())
    }
}

/// A time as JavaScript's `Date.prototype.toISOString` writes it, and so as `JSON.stringify`
/// writes a `Date`: `2026-11-29T09:00:00.000Z`. `secs` counts seconds since 1970-01-01 UTC
/// (negative before it) and `millis` the milliseconds past them. For adapters that decode a
/// JavaScript `Date` (MessagePack's timestamp, say) into JSON.
pub fn iso_date(secs: i64, millis: u32) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis.min(999)
    )
}

/// Year, month (1-12) and day (1-31) of a count of days since 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's days-to-civil algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod date_tests {
    use super::iso_date;

    #[test]
    fn dates_as_javascript_writes_them() {
        assert_eq!(iso_date(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_date(1_795_942_800, 250), "2026-11-29T09:00:00.250Z");
        // A leap day, the end of a century that is not a leap year, and before 1970.
        assert_eq!(iso_date(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_date(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
        assert_eq!(iso_date(-1, 0), "1969-12-31T23:59:59.000Z");
    }
}
