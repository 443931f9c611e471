//! Namespaces: a connection handler, connect middleware, the sockets connected, their rooms
//! (through the adapter), server-side events from other nodes, and what the adapter asks of
//! this node's sockets.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::ack::EmitError;
use crate::adapter::{
    AckAnswer, AckCallback, Adapter, AdapterFactory, BroadcastPacket, Local, MemoryRecovery,
    PartialError, Recovery, Remote, Room, ServerAck, SocketId, SocketInfo,
};
use crate::handler::{ConnectError, ConnectHandler, Middleware};
use crate::operators::{Operators, encode_broadcast};
use crate::server::IoConfig;
use crate::socket::{IntoRooms, Socket, read, send_encoded, write};

/// A handler of server-side events from other nodes: the arguments, and the answer.
type ServerHandler = Arc<dyn Fn(Vec<Value>, ServerAckSender) + Send + Sync>;

/// What a dynamic child namespace runs when it may have become unused: the server removes it.
pub(crate) type OnUnused = Box<dyn Fn(&NamespaceInner) + Send + Sync>;

pub(crate) struct NamespaceInner {
    pub(crate) path: String,
    pub(crate) handler: ConnectHandler,
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    sockets: RwLock<HashMap<SocketId, Socket>>,
    pub(crate) adapter: Arc<dyn Adapter>,
    server_handlers: RwLock<HashMap<String, ServerHandler>>,
    ack_timeout: Duration,
    /// Connection state recovery, when on for this namespace.
    pub(crate) recovery: Option<Recovery>,
    /// With recovery: kept broadcasts go out under the read side, a socket is restored under
    /// the write side, so that every packet is either among its missed ones or sent to it live.
    pub(crate) recovery_gate: Arc<RwLock<()>>,
    /// Sockets being admitted: counted from the server's lookup of the namespace for them
    /// ([`joining`](Self::joining)) until they are inserted or refused.
    joining: AtomicUsize,
    /// Set on dynamic children: called when the last socket leaves, or a join is refused.
    on_unused: OnceLock<OnUnused>,
}

impl std::fmt::Debug for NamespaceInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl NamespaceInner {
    pub(crate) fn new(
        path: String,
        handler: ConnectHandler,
        middlewares: Vec<Middleware>,
        adapter: &dyn AdapterFactory,
        config: &IoConfig,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<NamespaceInner>| {
            let local: Weak<dyn Local> = me.clone();
            let mut adapter = adapter.create(&path, local);
            let mut recovery = config.recovery.clone();
            if let Some(r) = &recovery {
                if adapter.recovers() {
                    // It keeps packets and sessions itself.
                } else if adapter.spans_nodes() {
                    // Packets of other nodes would be missing from a memory of this one.
                    tracing::warn!(
                        ns = %path,
                        "connection state recovery is off: the adapter reaches other nodes and keeps no packets"
                    );
                    recovery = None;
                } else {
                    adapter = Arc::new(MemoryRecovery::new(adapter, r.clone()));
                }
            }
            NamespaceInner {
                adapter,
                path,
                handler,
                middlewares: RwLock::new(middlewares),
                sockets: RwLock::new(HashMap::new()),
                server_handlers: RwLock::new(HashMap::new()),
                ack_timeout: config.ack_timeout,
                recovery,
                recovery_gate: Arc::default(),
                joining: AtomicUsize::new(0),
                on_unused: OnceLock::new(),
            }
        })
    }

    pub(crate) fn ack_timeout(&self) -> Duration {
        self.ack_timeout
    }

    pub(crate) fn socket(&self, sid: &SocketId) -> Option<Socket> {
        read(&self.sockets).get(sid).cloned()
    }

    /// Adds an admitted socket; it no longer counts as joining.
    pub(crate) fn insert(&self, socket: &Socket) {
        write(&self.sockets).insert(socket.id().clone(), socket.clone());
        self.join_ended();
        self.adapter
            .add_all(socket.id(), &[socket.id().to_string()]);
    }

    pub(crate) fn remove(&self, sid: &SocketId) {
        let empty = {
            let mut sockets = write(&self.sockets);
            sockets.remove(sid);
            sockets.is_empty()
        };
        self.adapter.del_all(sid);
        if empty {
            self.maybe_unused();
        }
    }

    /// A socket is about to join (the server found this namespace for it). The server calls
    /// this under its lock of the namespace table, so that it cannot remove the namespace
    /// meanwhile; the count ends at [`insert`](Self::insert) or with the refusal in
    /// [`admit`](Self::admit).
    pub(crate) fn joining(&self) {
        self.joining.fetch_add(1, Ordering::AcqRel);
    }

    fn join_ended(&self) {
        let _ = self
            .joining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Whether no socket is in the namespace or joining it.
    pub(crate) fn is_unused(&self) -> bool {
        self.joining.load(Ordering::Acquire) == 0 && read(&self.sockets).is_empty()
    }

    /// Makes this a child that `on_unused` removes once unused (dynamic namespaces).
    pub(crate) fn remove_when_unused(&self, on_unused: OnUnused) {
        let _ = self.on_unused.set(on_unused);
    }

    fn maybe_unused(&self) {
        if let Some(on_unused) = self.on_unused.get() {
            if self.is_unused() {
                on_unused(self);
            }
        }
    }

    pub(crate) fn all(&self) -> Vec<Socket> {
        read(&self.sockets).values().cloned().collect()
    }

    /// Runs the middlewares in order; the first refusal wins. A socket refused (or whose
    /// admission is dropped, by a panic say) no longer counts as joining; one admitted counts
    /// until it is inserted.
    pub(crate) async fn admit(&self, socket: &Socket) -> Result<(), ConnectError> {
        struct Refused<'a>(Option<&'a NamespaceInner>);
        impl Drop for Refused<'_> {
            fn drop(&mut self) {
                if let Some(ns) = self.0 {
                    ns.join_ended();
                    ns.maybe_unused();
                }
            }
        }
        let mut refused = Refused(Some(self));
        let middlewares: Vec<Middleware> = read(&self.middlewares).clone();
        for m in middlewares {
            m(socket.clone()).await?;
        }
        refused.0 = None;
        Ok(())
    }

    fn each(&self, sids: &[SocketId]) -> Vec<Socket> {
        let sockets = read(&self.sockets);
        sids.iter()
            .filter_map(|sid| sockets.get(sid).cloned())
            .collect()
    }
}

impl Local for NamespaceInner {
    fn emit(&self, sids: &[SocketId], packet: &BroadcastPacket, volatile: bool) {
        let encoded = encode_broadcast(packet);
        for socket in self.each(sids) {
            // One lagging or closed client does not stop the broadcast.
            let _ = send_encoded(&socket.0.session, &encoded, volatile);
        }
    }

    fn emit_with_ack(
        &self,
        sids: &[SocketId],
        packet: &BroadcastPacket,
        timeout: Duration,
        on_ack: AckCallback,
    ) -> usize {
        let mut asked = 0;
        for socket in self.each(sids) {
            let answer = socket.emit_packet_with_ack(packet, timeout);
            let on_ack = on_ack.clone();
            asked += 1;
            tokio::spawn(async move {
                if let Ok(raw) = answer.await {
                    // The placeholders of the first argument index the whole list of
                    // attachments, which goes along unchanged.
                    on_ack(AckAnswer {
                        value: raw.args.into_iter().next().unwrap_or(Value::Null),
                        attachments: raw.attachments,
                    });
                }
            });
        }
        asked
    }

    fn describe(&self, sids: &[SocketId]) -> Vec<SocketInfo> {
        self.each(sids).iter().map(Socket::info).collect()
    }

    fn disconnect(&self, sids: &[SocketId], close: bool) {
        for socket in self.each(sids) {
            socket.disconnect_with(close);
        }
    }

    fn keeps_sessions(&self) -> bool {
        self.recovery.is_some()
    }

    fn server_event(&self, mut data: Vec<Value>, ack: Option<ServerAck>) {
        let name = match data.first() {
            Some(Value::String(_)) => match data.remove(0) {
                Value::String(name) => name,
                _ => return,
            },
            _ => return,
        };
        let handler = read(&self.server_handlers).get(&name).cloned();
        match handler {
            Some(handler) => handler(data, ServerAckSender(ack)),
            None => {
                tracing::trace!(event = %name, ns = %self.path, "server event without a handler")
            }
        }
    }
}

/// Answers a server-side event from another node (see [`Namespace::on_server_event`]).
/// Dropping it without answering sends nothing.
pub struct ServerAckSender(Option<ServerAck>);

impl std::fmt::Debug for ServerAckSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAckSender")
            .field("requested", &self.0.is_some())
            .finish()
    }
}

impl ServerAckSender {
    /// Whether the sending node waits for an answer.
    pub fn is_requested(&self) -> bool {
        self.0.is_some()
    }

    /// Answers with `data`: one value, as Socket.IO carries one answer per node. Binary data
    /// is not carried in server-side answers: it arrives as placeholders.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        let (args, _attachments) = crate::args::to_args(data)?;
        if let Some(ack) = self.0 {
            ack(args.into_iter().next().unwrap_or(Value::Null));
        }
        Ok(())
    }
}

/// A namespace: register middleware on it, and emit to its sockets.
#[derive(Clone, Debug)]
pub struct Namespace(pub(crate) Arc<NamespaceInner>);

impl Namespace {
    /// The namespace path.
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// Adds connect middleware, run in the order added before a socket is admitted. It sees the
    /// socket (handshake, auth) before the connection handler does, may store data on it, and
    /// refuses the connection by returning a [`ConnectError`] (the client's `connect_error`).
    pub fn use_middleware<F, Fut>(&self, middleware: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        write(&self.0.middlewares).push(Arc::new(move |s| Box::pin(middleware(s))));
        self
    }

    /// Every socket of the namespace, on every node.
    pub fn broadcast(&self) -> Operators {
        Operators::new(self.0.clone())
    }

    /// The sockets in `rooms`.
    pub fn to(&self, rooms: impl IntoRooms) -> Operators {
        self.broadcast().to(rooms)
    }

    /// The sockets in `rooms` (same as [`to`](Self::to)).
    pub fn in_rooms(&self, rooms: impl IntoRooms) -> Operators {
        self.broadcast().to(rooms)
    }

    /// Every socket but those in `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> Operators {
        self.broadcast().except(rooms)
    }

    /// Every socket, emits may be dropped for lagging clients.
    pub fn volatile(&self) -> Operators {
        self.broadcast().volatile()
    }

    /// Every socket of this server instance.
    pub fn local(&self) -> Operators {
        self.broadcast().local()
    }

    /// Every socket, acks awaited for at most `timeout`.
    pub fn timeout(&self, timeout: Duration) -> Operators {
        self.broadcast().timeout(timeout)
    }

    /// Emits to every socket of the namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.broadcast().emit(event, data)
    }

    /// The sockets connected to this node.
    pub fn sockets(&self) -> Vec<Socket> {
        self.0.all()
    }

    /// A socket connected to this node, by id.
    pub fn socket(&self, id: &str) -> Option<Socket> {
        self.0.socket(&SocketId::from(id))
    }

    /// The rooms with at least one socket on this node.
    pub fn rooms(&self) -> Vec<String> {
        self.0.adapter.rooms()
    }

    /// The rooms with at least one socket on any node (Socket.IO's `adapter.allRooms()`).
    pub async fn all_rooms(&self) -> Result<Vec<Room>, PartialError<Vec<Room>>> {
        let remote = self.0.adapter.all_rooms().await;
        let mut rooms = self.0.adapter.rooms();
        rooms.extend(remote.value);
        rooms.sort();
        rooms.dedup();
        Remote {
            value: rooms,
            error: remote.error,
        }
        .into_result()
    }

    /// How many server nodes serve this namespace, this one included.
    pub async fn server_count(&self) -> usize {
        self.0.adapter.server_count().await
    }

    /// Sets the handler of server-side event `event` sent by other nodes (with
    /// [`server_side_emit`](Self::server_side_emit)), replacing any earlier one. It gets the
    /// event's arguments, and the sender to answer with when the emitter waits for answers.
    pub fn on_server_event(
        &self,
        event: impl Into<String>,
        handler: impl Fn(Vec<Value>, ServerAckSender) + Send + Sync + 'static,
    ) {
        write(&self.0.server_handlers).insert(event.into(), Arc::new(handler));
    }

    /// Sends an event to the other server nodes (not to clients); their handlers set with
    /// [`on_server_event`](Self::on_server_event) run. Nothing happens without other nodes.
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), ServerEmitError> {
        let data = server_event_data(event, data)?;
        Ok(self.0.adapter.server_side_emit(&data)?)
    }

    /// Sends an event to the other server nodes and waits at most `timeout` for their answers
    /// (one value from each). Gives the answers of every node, or an error with those that
    /// came when some node did not answer in time.
    pub async fn server_side_emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Vec<Value>, PartialError<Vec<Value>>> {
        let data = match server_event_data(event, data) {
            Ok(data) => data,
            Err(e) => {
                return Err(PartialError {
                    error: crate::adapter::AdapterError::Encode(e.to_string()),
                    partial: Vec::new(),
                });
            }
        };
        self.0
            .adapter
            .server_side_emit_with_ack(&data, timeout)
            .await
            .into_result()
    }
}

/// Why a server-side emit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerEmitError {
    /// The data could not be serialized.
    #[error("serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The adapter could not reach the other nodes.
    #[error("{0}")]
    Adapter(#[from] crate::adapter::AdapterError),
}

fn server_event_data<T: Serialize + ?Sized>(
    event: &str,
    data: &T,
) -> Result<Vec<Value>, serde_json::Error> {
    let (mut args, _attachments) = crate::args::to_args(data)?;
    args.insert(0, Value::String(event.to_string()));
    Ok(args)
}
