//! Broadcast operators: `to`, `except`, `local`, `volatile`, `timeout`, then `emit`,
//! `emit_with_ack`, `sockets`, `join`, `leave`, `disconnect` on the sockets they select.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ack::{AckError, EmitError};
use crate::adapter::{BroadcastOptions, Encoded};
use crate::namespace::NamespaceInner;
use crate::socket::{IntoRooms, Socket, SocketId, event_packet, send_encoded};

/// Selects sockets of a namespace and acts on them. Built by [`Socket::to`],
/// [`Namespace::to`](crate::Namespace::to), [`SocketIo::to`](crate::SocketIo::to) and friends.
#[derive(Clone, Debug)]
#[must_use = "operators do nothing until emit, sockets, join, leave or disconnect"]
pub struct Operators {
    ns: Arc<NamespaceInner>,
    opts: BroadcastOptions,
    only: Option<Socket>,
    timeout: Option<Duration>,
}

impl Operators {
    pub(crate) fn new(ns: Arc<NamespaceInner>) -> Self {
        Operators {
            ns,
            opts: BroadcastOptions::default(),
            only: None,
            timeout: None,
        }
    }

    pub(crate) fn single(socket: Socket) -> Self {
        let mut ops = Operators::new(socket.0.ns.clone());
        ops.only = Some(socket);
        ops
    }

    pub(crate) fn except_socket(mut self, sid: SocketId) -> Self {
        self.opts.except_socket = Some(sid);
        self
    }

    /// Only sockets in these rooms (added to any rooms already chosen).
    pub fn to(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.rooms.extend(rooms.into_rooms());
        self
    }

    /// Same as [`to`](Self::to).
    pub fn within(self, rooms: impl IntoRooms) -> Self {
        self.to(rooms)
    }

    /// Not the sockets in these rooms.
    pub fn except(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    /// Only sockets of this server instance (matters with a multi-instance adapter).
    pub fn local(mut self) -> Self {
        self.opts.local = true;
        self
    }

    /// Emits may be dropped for clients that are not keeping up, instead of queued.
    pub fn volatile(mut self) -> Self {
        self.opts.volatile = true;
        self
    }

    /// How long [`emit_with_ack`](Self::emit_with_ack) waits for each answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The local sockets selected (Socket.IO's `fetchSockets`).
    pub fn sockets(&self) -> Vec<Socket> {
        if let Some(socket) = &self.only {
            return vec![socket.clone()];
        }
        self.ns
            .adapter
            .sockets(&self.opts)
            .iter()
            .filter_map(|sid| self.ns.socket(sid))
            .collect()
    }

    /// Emits `event` to every selected socket. The packet is encoded once and shared. A
    /// broadcast goes on past clients that are closed or lagging; for a single socket
    /// (`socket.volatile().emit(..)`) their error is returned.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        let (packet, attachments) = event_packet(&self.ns.path, event, data, None)?;
        let encoded = Encoded {
            text: crate::packet::encode(&packet).into(),
            attachments,
        };
        let volatile = self.opts.volatile;
        if let Some(socket) = &self.only {
            // One socket: its caller learns whether the emit was dropped.
            return send_encoded(&socket.0.session, &encoded, volatile);
        }
        for socket in self.sockets() {
            // One lagging or closed client does not stop the broadcast.
            let _ = send_encoded(&socket.0.session, &encoded, volatile);
        }
        if !self.opts.local {
            self.ns
                .adapter
                .remote_broadcast(&self.ns.path, &encoded, &self.opts)
                .map_err(|e| tracing::warn!("{e}"))
                .ok();
        }
        Ok(())
    }

    /// Emits `event` to every selected socket and waits for every answer (each at most the
    /// timeout). Gives one result per socket, in the order of [`sockets`](Self::sockets).
    pub async fn emit_with_ack<T, R>(&self, event: &str, data: &T) -> Vec<Result<R, AckError>>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let timeout = self.timeout.unwrap_or_else(|| self.ns.ack_timeout());
        let waits: Vec<_> = self
            .sockets()
            .iter()
            .map(|s| s.emit_with_ack_timeout::<T, R>(event, data, timeout))
            .collect();
        join_all(waits).await
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack) for a single socket: its one answer.
    pub async fn emit_with_ack_one<T, R>(&self, event: &str, data: &T) -> Result<R, AckError>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let mut results = self.emit_with_ack::<T, R>(event, data).await;
        if results.is_empty() {
            Err(AckError::Disconnected)
        } else {
            results.swap_remove(0)
        }
    }

    /// Makes every selected socket join `rooms` (Socket.IO's `socketsJoin`).
    pub fn join(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for socket in self.sockets() {
            socket.join(rooms.clone());
        }
    }

    /// Makes every selected socket leave `room` (Socket.IO's `socketsLeave`).
    pub fn leave(&self, room: &str) {
        for socket in self.sockets() {
            socket.leave(room);
        }
    }

    /// Disconnects every selected socket from the namespace (`disconnectSockets`).
    pub fn disconnect(&self) {
        for socket in self.sockets() {
            socket.disconnect();
        }
    }
}
