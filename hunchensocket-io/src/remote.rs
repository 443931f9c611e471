//! Sockets found on any node by [`Operators::fetch_sockets`](crate::Operators::fetch_sockets):
//! what they are, and operations that reach them through the adapter wherever they live.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::ack::EmitError;
use crate::adapter::{Room, SocketId, SocketInfo};
use crate::namespace::NamespaceInner;
use crate::operators::Operators;
use crate::socket::IntoRooms;

/// A socket of this node or of another one, as `fetch_sockets` found it (Socket.IO's
/// `RemoteSocket`). Its operations go through the adapter, so they reach it on any node.
#[derive(Clone, Debug)]
pub struct RemoteSocket {
    ns: Arc<NamespaceInner>,
    info: SocketInfo,
}

impl RemoteSocket {
    pub(crate) fn new(ns: Arc<NamespaceInner>, info: SocketInfo) -> Self {
        RemoteSocket { ns, info }
    }

    /// The socket id.
    pub fn id(&self) -> &SocketId {
        &self.info.id
    }

    /// The handshake as Socket.IO describes it (`headers`, `address`, `query`, `auth`, ...).
    pub fn handshake(&self) -> &Value {
        &self.info.handshake
    }

    /// The rooms it was in when it was found, its own id among them.
    pub fn rooms(&self) -> &[Room] {
        &self.info.rooms
    }

    /// The application's data on it when it was found (`socket.data`).
    pub fn data(&self) -> &Value {
        &self.info.data
    }

    /// Everything found about it.
    pub fn info(&self) -> &SocketInfo {
        &self.info
    }

    fn ops(&self) -> Operators {
        Operators::new(self.ns.clone()).to(self.info.id.to_string())
    }

    /// Emits `event` to it.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.ops().emit(event, data)
    }

    /// Makes it join `rooms`.
    pub fn join(&self, rooms: impl IntoRooms) {
        self.ops().join(rooms);
    }

    /// Makes it leave `rooms`.
    pub fn leave(&self, rooms: impl IntoRooms) {
        self.ops().leave(rooms);
    }

    /// Disconnects it from the namespace; with `close`, its whole connection is closed.
    pub fn disconnect(&self, close: bool) {
        self.ops().disconnect_with(close);
    }
}
