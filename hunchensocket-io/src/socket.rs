//! A client's socket in one namespace: its handlers, emits and acks, rooms, data, and end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::ack::{self, AckError, AckPayload, AckSender, EmitError};
use crate::adapter::{BroadcastPacket, Room, SessionState, SocketInfo};
use crate::client::ClientData;
use crate::engine::{CloseReason, HandshakeInfo, Payload, Session};
use crate::handler::{
    AnyHandler, BoxFuture, DisconnectHandler, ErasedEventHandler, Event, EventError, EventHandler,
    Guarded, RawArgs, erase,
};
use crate::namespace::NamespaceInner;
use crate::operators::Operators;
use crate::packet::Packet;
use crate::pending::{self, Pending};

pub use crate::adapter::SocketId;

/// A packet encoded once for many sockets: the Socket.IO packet text and its binary
/// attachments.
#[derive(Clone, Debug)]
pub(crate) struct Encoded {
    /// The Socket.IO packet, as the Engine.IO message text.
    pub(crate) text: hunchensocket_core::Utf8Bytes,
    /// Binary attachments, sent after the text.
    pub(crate) attachments: Vec<Bytes>,
}

/// Why a socket left its namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client left the namespace (`socket.disconnect()` on the client).
    ClientNamespaceDisconnect,
    /// The server disconnected the socket.
    ServerNamespaceDisconnect,
    /// The connection closed (the client went away or closed it).
    TransportClose,
    /// The connection failed.
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent a packet that could not be parsed.
    ParseError,
    /// The server is shutting down.
    ServerShutdown,
    /// The server closed the whole connection.
    ForcedClose,
    /// The client stopped reading and its outbound queue overflowed.
    SlowConsumer,
}

impl DisconnectReason {
    /// The reason as Socket.IO names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShutdown => "server shutting down",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::SlowConsumer => "slow consumer",
        }
    }
}

impl DisconnectReason {
    /// Whether a socket that left for this reason may be recovered (the connection was lost
    /// or closed by the server; not a namespace disconnect or a bad packet).
    pub(crate) fn keeps_session(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportClose
                | DisconnectReason::TransportError
                | DisconnectReason::PingTimeout
                | DisconnectReason::ServerShutdown
                | DisconnectReason::ForcedClose
        )
    }
}

impl From<CloseReason> for DisconnectReason {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::ServerClose => DisconnectReason::ForcedClose,
            CloseReason::ServerShutdown => DisconnectReason::ServerShutdown,
            CloseReason::SlowConsumer => DisconnectReason::SlowConsumer,
            _ => DisconnectReason::TransportError,
        }
    }
}

/// A client's socket in one namespace. Cheap to clone; every clone is the same socket.
#[derive(Clone)]
pub struct Socket(pub(crate) Arc<SocketInner>);

pub(crate) struct SocketInner {
    pub(crate) id: SocketId,
    pub(crate) ns: Arc<NamespaceInner>,
    pub(crate) session: Arc<Session<ClientData>>,
    auth: Value,
    handlers: RwLock<HashMap<String, ErasedEventHandler>>,
    any: RwLock<Vec<AnyHandler>>,
    on_disconnect: Mutex<Vec<DisconnectHandler>>,
    on_error: RwLock<Option<ErrorHook>>,
    acks: Mutex<HashMap<u64, oneshot::Sender<AckPayload>>>,
    next_ack: AtomicU64,
    connected: AtomicBool,
    extensions: Mutex<http::Extensions>,
    /// The application's JSON data (`socket.data`), which other nodes see.
    data: Mutex<Value>,
    /// The private id that recovers this socket (with connection state recovery).
    pid: Option<String>,
    /// Whether this socket is one recovered after a drop.
    recovered: bool,
    /// Events received before the connection handler first yielded; `None` once it has.
    pending: Mutex<Option<Pending>>,
}

type ErrorHook = Arc<dyn Fn(Socket, EventError) + Send + Sync>;

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.0.id)
            .field("ns", &self.0.ns.path)
            .finish_non_exhaustive()
    }
}

/// Sends one Socket.IO packet, then its attachments, on a session.
pub(crate) fn send_packet(
    session: &Arc<Session<ClientData>>,
    packet: &Packet,
    attachments: Vec<Bytes>,
    volatile: bool,
) -> Result<(), EmitError> {
    let text = Payload::Text(crate::packet::encode(packet).into());
    if attachments.is_empty() {
        return Ok(session.send(text, volatile)?);
    }
    // All or nothing: a header without its attachments would put the client out of step.
    let attachments = attachments.into_iter().map(Payload::Binary);
    Ok(session.send_all(std::iter::once(text).chain(attachments), volatile)?)
}

/// Sends a packet encoded once for many sockets.
pub(crate) fn send_encoded(
    session: &Arc<Session<ClientData>>,
    packet: &Encoded,
    volatile: bool,
) -> Result<(), EmitError> {
    let text = Payload::Text(packet.text.clone());
    if packet.attachments.is_empty() {
        return Ok(session.send(text, volatile)?);
    }
    let attachments = packet.attachments.iter().cloned().map(Payload::Binary);
    Ok(session.send_all(std::iter::once(text).chain(attachments), volatile)?)
}

/// The event packet for `event` with `data` (see [`crate::args::to_args`]) and an optional ack id.
pub(crate) fn event_packet<T: Serialize + ?Sized>(
    nsp: &str,
    event: &str,
    data: &T,
    id: Option<u64>,
) -> Result<(Packet, Vec<Bytes>), serde_json::Error> {
    let (mut args, attachments) = crate::args::to_args(data)?;
    args.insert(0, Value::String(event.to_string()));
    let packet = if attachments.is_empty() {
        Packet::event(nsp, args, id)
    } else {
        Packet::binary_event(nsp, args, id, attachments.len())
    };
    Ok((packet, attachments))
}

impl Socket {
    pub(crate) fn new(
        ns: Arc<NamespaceInner>,
        session: Arc<Session<ClientData>>,
        auth: Value,
        restored: Option<&SessionState>,
    ) -> Socket {
        let recovering = ns.recovery.is_some();
        let (id, pid) = match restored {
            Some(state) => (state.sid.clone(), Some(state.pid.clone())),
            None => (
                crate::engine::new_id(),
                recovering.then(|| crate::engine::new_id().to_string()),
            ),
        };
        Socket(Arc::new(SocketInner {
            id,
            ns,
            session,
            auth,
            handlers: RwLock::new(HashMap::new()),
            any: RwLock::new(Vec::new()),
            on_disconnect: Mutex::new(Vec::new()),
            on_error: RwLock::new(None),
            acks: Mutex::new(HashMap::new()),
            next_ack: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            extensions: Mutex::new(http::Extensions::new()),
            data: Mutex::new(match restored {
                Some(state) => state.data.clone(),
                None => Value::Object(Default::default()),
            }),
            pid,
            recovered: restored.is_some(),
            pending: Mutex::new(Some(Pending::default())),
        }))
    }

    /// The socket id (the client's `socket.id`).
    pub fn id(&self) -> &SocketId {
        &self.0.id
    }

    /// The namespace path (`/`, `/admin`, ...).
    pub fn ns(&self) -> &str {
        &self.0.ns.path
    }

    /// Whether this socket was recovered after its client dropped: same id, rooms and data,
    /// and the events it missed were sent (connection state recovery).
    pub fn recovered(&self) -> bool {
        self.0.recovered
    }

    /// The private id a client sends back to recover this socket (with recovery on).
    pub(crate) fn pid(&self) -> Option<&str> {
        self.0.pid.as_deref()
    }

    /// The namespace the socket is in: to emit to all of it, fetch its sockets on every node,
    /// or send server-side events.
    pub fn namespace(&self) -> crate::Namespace {
        crate::Namespace(self.0.ns.clone())
    }

    /// The request that opened the connection: headers, query, peer address.
    pub fn handshake(&self) -> &HandshakeInfo {
        self.0.session.handshake()
    }

    /// The auth payload the client sent with its CONNECT (`{}` when none).
    pub fn auth(&self) -> &Value {
        &self.0.auth
    }

    /// The transport in use: `"polling"` or `"websocket"`.
    pub fn transport_name(&self) -> &'static str {
        self.0.session.transport_name()
    }

    /// Bytes waiting to be sent to this client's connection (at most the server's
    /// `max_buffer`: past it, emits are dropped or end the connection as a slow consumer).
    pub fn buffered(&self) -> usize {
        self.0.session.buffered()
    }

    /// Whether the socket is still in its namespace.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// Sets a handler for `event`, replacing any earlier one. See [`EventHandler`] for the
    /// shapes a handler may have. Register handlers before the connection handler's first
    /// `.await`: events may arrive as soon as it yields.
    pub fn on<H, M>(&self, event: impl Into<String>, handler: H)
    where
        H: EventHandler<M>,
        M: 'static,
    {
        write(&self.0.handlers).insert(event.into(), erase(handler));
    }

    /// Adds a handler for every event, called with its name and raw arguments, besides the
    /// event's own handler.
    pub fn on_any<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, String, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        write(&self.0.any).push(Arc::new(move |s, name, args| {
            Box::pin(handler(s, name, args)) as BoxFuture
        }));
    }

    /// Adds a handler that runs once when the socket leaves the namespace.
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: FnOnce(Socket, DisconnectReason) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        lock(&self.0.on_disconnect)
            .push(Box::new(move |s, r| Box::pin(handler(s, r)) as BoxFuture));
    }

    /// Sets the hook called when an event's arguments do not fit its handler's types.
    pub fn on_error(&self, hook: impl Fn(Socket, EventError) + Send + Sync + 'static) {
        *write(&self.0.on_error) = Some(Arc::new(hook));
    }

    /// Emits `event` to this client. `data`: a tuple gives several arguments, `()` none;
    /// `bytes::Bytes` anywhere inside go as binary attachments.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_inner(event, data, false)
    }

    pub(crate) fn emit_inner<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        volatile: bool,
    ) -> Result<(), EmitError> {
        if !volatile && self.0.ns.recovery.is_some() {
            // Kept for recovery, with its offset, as every broadcast is.
            return Operators::single(self.clone()).emit(event, data);
        }
        let (packet, attachments) = event_packet(self.ns(), event, data, None)?;
        send_packet(&self.0.session, &packet, attachments, volatile)
    }

    /// Emits `event` and waits for the client's acknowledgement, at most the server's ack
    /// timeout (see [`Socket::timeout`] for another).
    pub async fn emit_with_ack<T, R>(&self, event: &str, data: &T) -> Result<R, AckError>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let timeout = self.0.ns.ack_timeout();
        self.emit_with_ack_timeout(event, data, timeout).await
    }

    pub(crate) fn emit_with_ack_timeout<T, R>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<R, AckError>> + Send + 'static
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let raw = self.emit_with_ack_raw(event, data, timeout);
        async move {
            let RawArgs { args, attachments } = raw.await?;
            Ok(crate::args::from_args(args, &attachments)?)
        }
    }

    /// Emits `event` and waits at most `timeout` for the acknowledgement's arguments as they
    /// arrive, binary included.
    pub fn emit_with_ack_raw<T>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<RawArgs, AckError>> + Send + 'static
    where
        T: Serialize + ?Sized,
    {
        let id = self.0.next_ack.fetch_add(1, Ordering::Relaxed);
        let packet = event_packet(self.ns(), event, data, Some(id)).map_err(EmitError::from);
        self.send_with_ack(id, packet, timeout)
    }

    /// Emits a packet made elsewhere (another node's broadcast) asking for an ack.
    pub(crate) fn emit_packet_with_ack(
        &self,
        packet: &BroadcastPacket,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<RawArgs, AckError>> + Send + 'static {
        let id = self.0.next_ack.fetch_add(1, Ordering::Relaxed);
        let args = packet.data.clone();
        let p = if packet.attachments.is_empty() {
            Packet::event(self.ns(), args, Some(id))
        } else {
            Packet::binary_event(self.ns(), args, Some(id), packet.attachments.len())
        };
        self.send_with_ack(id, Ok((p, packet.attachments.clone())), timeout)
    }

    fn send_with_ack(
        &self,
        id: u64,
        packet: Result<(Packet, Vec<Bytes>), EmitError>,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<RawArgs, AckError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        lock(&self.0.acks).insert(id, tx);
        let sent = packet.and_then(|(packet, attachments)| {
            send_packet(&self.0.session, &packet, attachments, false)
        });
        let this = self.clone();
        async move {
            if let Err(e) = sent {
                lock(&this.0.acks).remove(&id);
                return Err(AckError::Emit(e));
            }
            let result = ack::wait(rx, timeout).await;
            lock(&this.0.acks).remove(&id);
            result.map(|(args, attachments)| RawArgs { args, attachments })
        }
    }

    /// Operators for this socket alone: `socket.timeout(d).emit_with_ack(..)`.
    pub fn timeout(&self, timeout: Duration) -> Operators {
        Operators::single(self.clone()).timeout(timeout)
    }

    /// Operators for this socket alone whose emits may be dropped if the client lags.
    pub fn volatile(&self) -> Operators {
        Operators::single(self.clone()).volatile()
    }

    /// Everyone in `rooms` but this socket.
    pub fn to(&self, rooms: impl IntoRooms) -> Operators {
        self.broadcast().to(rooms)
    }

    /// Everyone in the namespace but this socket, minus those in `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> Operators {
        self.broadcast().except(rooms)
    }

    /// Everyone in the namespace but this socket.
    pub fn broadcast(&self) -> Operators {
        Operators::new(self.0.ns.clone()).except(self.0.id.to_string())
    }

    /// Joins rooms.
    pub fn join(&self, rooms: impl IntoRooms) {
        self.0.ns.adapter.add_all(&self.0.id, &rooms.into_rooms());
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        self.0.ns.adapter.del(&self.0.id, room);
    }

    /// Leaves every room but its own.
    pub fn leave_all(&self) {
        for room in self.rooms() {
            if *room != *self.0.id {
                self.leave(&room);
            }
        }
    }

    /// The rooms the socket is in (its own id among them).
    pub fn rooms(&self) -> Vec<Room> {
        self.0.ns.adapter.socket_rooms(&self.0.id)
    }

    /// Stores a value of type `T` on the socket (replacing the previous one of that type).
    pub fn set<T: Clone + Send + Sync + 'static>(&self, value: T) {
        lock(&self.0.extensions).insert(value);
    }

    /// Replaces the socket's JSON data (Socket.IO's `socket.data`), which other nodes see in
    /// `fetch_sockets`.
    pub fn set_data(&self, data: Value) {
        *lock(&self.0.data) = data;
    }

    /// The socket's JSON data (`{}` until [`set_data`](Self::set_data)).
    pub fn data(&self) -> Value {
        lock(&self.0.data).clone()
    }

    /// What other nodes see of this socket: id, handshake, rooms, data.
    pub fn info(&self) -> SocketInfo {
        SocketInfo::new(
            self.0.id.clone(),
            crate::handshake::describe(self.handshake(), self.auth()),
            self.rooms(),
            self.data(),
        )
    }

    /// The value of type `T` stored with [`set`](Self::set).
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.0.extensions).get::<T>().cloned()
    }

    /// Removes the client from this namespace: it gets a DISCONNECT packet; the Engine.IO
    /// connection stays open for its other namespaces.
    pub fn disconnect(&self) {
        if !self.connected() {
            return;
        }
        let _ = send_packet(
            &self.0.session,
            &Packet::disconnect(self.ns()),
            Vec::new(),
            false,
        );
        self.0.session.data().remove(self.ns());
        self.closed(DisconnectReason::ServerNamespaceDisconnect);
    }

    /// Removes the client from this namespace as [`disconnect`](Self::disconnect) does; with
    /// `close`, its whole connection is closed right after the DISCONNECT packet (Socket.IO's
    /// `socket.disconnect(true)`), so the client sees "io server disconnect" and does not
    /// reconnect.
    pub fn disconnect_with(&self, close: bool) {
        self.disconnect();
        if close {
            self.close_connection();
        }
    }

    /// Closes the client's whole connection (every namespace).
    pub fn close_connection(&self) {
        self.0.session.close(CloseReason::ServerClose);
    }

    /// Cuts the client's whole connection off at once, as a network failure would: no
    /// DISCONNECT, no close packet, no close frame ([`Session::abort`]). The client sees
    /// "transport close" or "transport error" and reconnects; every socket of the connection
    /// ends with [`DisconnectReason::TransportError`], so with connection state recovery the
    /// client comes back as itself and gets what it missed.
    pub fn cut_connection(&self) {
        self.0.session.abort();
    }

    pub(crate) fn set_connected(&self) {
        self.0.connected.store(true, Ordering::Release);
    }

    /// The connection handler has registered its handlers: dispatch what waited for that.
    pub(crate) fn ready(&self) {
        let waiting = lock(&self.0.pending).take().unwrap_or_default();
        for (name, args, attachments, ack) in waiting {
            self.dispatch(name, args, attachments, ack);
        }
    }

    /// Runs the handlers of an event from the client.
    pub(crate) fn dispatch(
        &self,
        name: String,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
        ack: Option<u64>,
    ) {
        let event = (name, args, attachments, ack);
        let Some((name, args, attachments, ack)) =
            pending::hold(&self.0.pending, &self.0.session, event)
        else {
            return;
        };
        let any: Vec<AnyHandler> = read(&self.0.any).clone();
        for handler in any {
            run(self, || handler(self.clone(), name.clone(), args.clone()));
        }
        let handler = read(&self.0.handlers).get(&name).cloned();
        let ack = AckSender::new(self.0.session.clone(), self.ns().to_string(), ack);
        match handler {
            Some(handler) => {
                let event = Event {
                    name,
                    args,
                    attachments,
                    ack,
                };
                run(self, || handler(self.clone(), event));
            }
            None => tracing::trace!(event = %name, ns = %self.ns(), "event without a handler"),
        }
    }

    /// The client answered one of our acks.
    pub(crate) fn resolve_ack(&self, id: u64, args: Vec<Value>, attachments: Vec<Bytes>) {
        if let Some(tx) = lock(&self.0.acks).remove(&id) {
            let _ = tx.send((args, attachments));
        }
    }

    /// An event whose arguments did not fit: error ack and hook, never a silent drop.
    pub(crate) fn args_error(&self, error: EventError, ack: AckSender) {
        if ack.is_requested() {
            let _ = ack.send(&serde_json::json!({ "error": error.to_string() }));
        }
        let hook = read(&self.0.on_error).clone();
        match hook {
            Some(hook) => hook(self.clone(), error),
            None => tracing::warn!(socket = %self.0.id, "{error}"),
        }
    }

    /// The socket has left its namespace: forget it, fail its pending acks, run its
    /// disconnect handlers. Runs once.
    pub(crate) fn closed(&self, reason: DisconnectReason) {
        if !self.0.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Some(pid) = &self.0.pid {
            if reason.keeps_session() {
                let state =
                    SessionState::new(self.0.id.clone(), pid.clone(), self.rooms(), self.data());
                self.0.ns.adapter.persist_session(state);
            }
        }
        self.0.ns.remove(&self.0.id);
        lock(&self.0.acks).clear();
        let handlers: Vec<DisconnectHandler> = std::mem::take(&mut *lock(&self.0.on_disconnect));
        for handler in handlers {
            self.0.session.spawn(handler(self.clone(), reason));
        }
        write(&self.0.handlers).clear();
        write(&self.0.any).clear();
    }
}

/// Runs a handler's future for `socket`, made by `make`: polled once here, and only if it has to
/// wait, on a task of its own. Most handlers finish at once (an ack, an emit), and then no task
/// is spawned at all. A panic in it, now or later, ends `socket` instead of unwinding (see
/// [`Guarded`]).
pub(crate) fn run(socket: &Socket, make: impl FnOnce() -> BoxFuture) {
    let mut fut = Guarded::make(socket, make);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if std::pin::Pin::new(&mut fut).poll(&mut cx).is_pending() {
        // A spawned task is polled again at once, with its own waker.
        tokio::spawn(fut);
    }
}

/// Anything that names one or more rooms: `"room"`, `String`, `["a", "b"]`, `Vec<String>`.
pub trait IntoRooms {
    /// The room names.
    fn into_rooms(self) -> Vec<Room>;
}

impl IntoRooms for &str {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.to_string()]
    }
}

impl IntoRooms for String {
    fn into_rooms(self) -> Vec<Room> {
        vec![self]
    }
}

impl IntoRooms for &String {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.clone()]
    }
}

impl IntoRooms for SocketId {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.to_string()]
    }
}

impl IntoRooms for Vec<String> {
    fn into_rooms(self) -> Vec<Room> {
        self
    }
}

impl IntoRooms for Vec<&str> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().map(str::to_string).collect()
    }
}

impl<const N: usize> IntoRooms for [&str; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.iter().map(|s| s.to_string()).collect()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}
