//! Namespaces: a connection handler, connect middleware, the sockets connected, their rooms.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::ack::EmitError;
use crate::adapter::Adapter;
use crate::handler::{ConnectError, ConnectHandler, Middleware};
use crate::operators::Operators;
use crate::socket::{IntoRooms, Socket, SocketId, read, write};

pub(crate) struct NamespaceInner {
    pub(crate) path: String,
    pub(crate) handler: ConnectHandler,
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    sockets: RwLock<HashMap<SocketId, Socket>>,
    pub(crate) adapter: Arc<dyn Adapter>,
    ack_timeout: Duration,
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
        adapter: Arc<dyn Adapter>,
        ack_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(NamespaceInner {
            path,
            handler,
            middlewares: RwLock::new(middlewares),
            sockets: RwLock::new(HashMap::new()),
            adapter,
            ack_timeout,
        })
    }

    pub(crate) fn ack_timeout(&self) -> Duration {
        self.ack_timeout
    }

    pub(crate) fn socket(&self, sid: &SocketId) -> Option<Socket> {
        read(&self.sockets).get(sid).cloned()
    }

    pub(crate) fn insert(&self, socket: &Socket) {
        write(&self.sockets).insert(socket.id().clone(), socket.clone());
        self.adapter
            .add_all(socket.id(), &[socket.id().to_string()]);
    }

    pub(crate) fn remove(&self, sid: &SocketId) {
        write(&self.sockets).remove(sid);
        self.adapter.del_all(sid);
    }

    pub(crate) fn all(&self) -> Vec<Socket> {
        read(&self.sockets).values().cloned().collect()
    }

    /// Runs the middlewares in order; the first refusal wins.
    pub(crate) async fn admit(&self, socket: &Socket) -> Result<(), ConnectError> {
        let middlewares: Vec<Middleware> = read(&self.middlewares).clone();
        for m in middlewares {
            m(socket.clone()).await?;
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

    /// Every socket of the namespace.
    pub fn broadcast(&self) -> Operators {
        Operators::new(self.0.clone())
    }

    /// The sockets in `rooms`.
    pub fn to(&self, rooms: impl IntoRooms) -> Operators {
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

    /// The connected sockets (Socket.IO's `fetchSockets`).
    pub fn sockets(&self) -> Vec<Socket> {
        self.0.all()
    }

    /// A connected socket by id.
    pub fn socket(&self, id: &str) -> Option<Socket> {
        self.0.socket(&SocketId::from(id))
    }

    /// The rooms with at least one socket.
    pub fn rooms(&self) -> Vec<String> {
        self.0.adapter.rooms()
    }

    /// Sends an event to the other server instances through the adapter; returns how many
    /// were reached (0 with the in-memory adapter).
    pub fn server_side_emit(
        &self,
        event: &str,
        args: &[serde_json::Value],
    ) -> Result<usize, crate::adapter::AdapterError> {
        self.0.adapter.server_side_emit(&self.0.path, event, args)
    }
}
