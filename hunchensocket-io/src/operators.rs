//! Broadcast operators: `to`, `except`, `local`, `volatile`, `timeout`, then `emit`,
//! `emit_with_ack`, `sockets`, `fetch_sockets`, `join`, `leave`, `disconnect` on the sockets
//! they select, on this node and, through the adapter, on the others.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ack::{AckError, EmitError};
use crate::adapter::{
    AdapterError, BroadcastOptions, BroadcastPacket, Delivery, PartialError, Remote,
};
use crate::namespace::NamespaceInner;
use crate::remote::RemoteSocket;
use crate::socket::{Encoded, IntoRooms, Socket, SocketId, event_packet, send_encoded};

/// Selects sockets of a namespace and acts on them. Built by [`Socket::to`],
/// [`Namespace::to`](crate::Namespace::to), [`SocketIo::to`](crate::SocketIo::to) and friends.
#[derive(Clone, Debug)]
#[must_use = "operators do nothing until emit, sockets, join, leave or disconnect"]
pub struct Operators {
    ns: Arc<NamespaceInner>,
    opts: BroadcastOptions,
    only: Option<Socket>,
}

/// Encodes a broadcast packet once for all its local recipients.
pub(crate) fn encode_broadcast(packet: &BroadcastPacket) -> Encoded {
    let args = packet.data.clone();
    let p = if packet.attachments.is_empty() {
        crate::packet::Packet::event(packet.nsp.clone(), args, None)
    } else {
        crate::packet::Packet::binary_event(
            packet.nsp.clone(),
            args,
            None,
            packet.attachments.len(),
        )
    };
    Encoded {
        text: crate::packet::encode(&p).into(),
        attachments: packet.attachments.clone(),
    }
}

/// Logs an adapter failure of an operation that does not report it.
fn log_adapter(result: Result<(), AdapterError>) {
    if let Err(e) = result {
        tracing::warn!("adapter: {e}");
    }
}

impl Operators {
    pub(crate) fn new(ns: Arc<NamespaceInner>) -> Self {
        Operators {
            ns,
            opts: BroadcastOptions::default(),
            only: None,
        }
    }

    pub(crate) fn single(socket: Socket) -> Self {
        let mut ops = Operators::new(socket.0.ns.clone());
        ops.only = Some(socket);
        ops
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
        self.opts.timeout = Some(timeout);
        self
    }

    /// Whether the adapter is to reach other nodes.
    fn remote(&self) -> bool {
        self.only.is_none() && !self.opts.local
    }

    /// The sockets of this node that are selected.
    pub fn sockets(&self) -> Vec<Socket> {
        if let Some(socket) = &self.only {
            return vec![socket.clone()];
        }
        self.local_ids()
            .iter()
            .filter_map(|sid| self.ns.socket(sid))
            .collect()
    }

    fn local_ids(&self) -> Vec<SocketId> {
        match &self.only {
            Some(socket) => vec![socket.id().clone()],
            None => self.ns.adapter.sockets(&self.opts),
        }
    }

    /// The selected sockets of every node (Socket.IO's `fetchSockets`): this node's, and those
    /// the other nodes described within the adapter's timeout. When some node did not answer,
    /// the error carries the sockets that were found.
    pub async fn fetch_sockets(
        &self,
    ) -> Result<Vec<RemoteSocket>, PartialError<Vec<RemoteSocket>>> {
        let local = self.sockets();
        let mut found: Vec<RemoteSocket> = local
            .iter()
            .map(|s| RemoteSocket::new(self.ns.clone(), s.info()))
            .collect();
        let remote = if self.remote() {
            self.ns.adapter.fetch_sockets(&self.opts).await
        } else {
            Remote::default()
        };
        found.extend(
            remote
                .value
                .into_iter()
                .map(|info| RemoteSocket::new(self.ns.clone(), info)),
        );
        Remote {
            value: found,
            error: remote.error,
        }
        .into_result()
    }

    /// Emits `event` to every selected socket. The packet is encoded once and shared. A
    /// broadcast goes on past clients that are closed or lagging; for a single socket
    /// (`socket.volatile().emit(..)`) their error is returned. A broadcast that the adapter
    /// could not carry to the other nodes is logged, and still reaches this node's sockets.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        if self.ns.recovery.is_some() && !self.opts.volatile {
            return self.emit_kept(event, data);
        }
        let (mut packet, attachments) = event_packet(&self.ns.path, event, data, None)?;
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
        if self.remote() {
            let data = match packet.data.take() {
                Some(serde_json::Value::Array(data)) => data,
                _ => Vec::new(),
            };
            let packet = BroadcastPacket::new(self.ns.path.clone(), data, encoded.attachments);
            log_adapter(self.ns.adapter.broadcast(&packet, &self.opts));
        }
        Ok(())
    }

    /// [`emit`](Self::emit) with connection state recovery on: the adapter keeps the packet
    /// (a single socket's too) and gives it an offset, appended to its arguments, before it
    /// goes out.
    fn emit_kept<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        let (mut args, attachments) = crate::args::to_args(data)?;
        args.insert(0, serde_json::Value::String(event.to_string()));
        let mut packet = BroadcastPacket::new(self.ns.path.clone(), args, attachments);
        let opts = match &self.only {
            Some(socket) => BroadcastOptions::to([socket.id().to_string()]),
            None => self.opts.clone(),
        };
        let _gate = crate::socket::read(&self.ns.recovery_gate);
        if self.ns.adapter.record(&mut packet, &opts) == Delivery::ByAdapter {
            // Its log gives it an offset, then it reaches this node's sockets as the others'.
            return self
                .ns
                .adapter
                .broadcast(&packet, &opts)
                .map_err(|e| EmitError::Adapter(e.to_string()));
        }
        let encoded = encode_broadcast(&packet);
        if let Some(socket) = &self.only {
            return send_encoded(&socket.0.session, &encoded, false);
        }
        for socket in self.sockets() {
            let _ = send_encoded(&socket.0.session, &encoded, false);
        }
        if self.remote() {
            log_adapter(self.ns.adapter.broadcast(&packet, &opts));
        }
        Ok(())
    }

    /// Emits `event` to every selected socket, on every node, and waits for every answer (each
    /// at most the timeout). Gives one result per socket: this node's first, in the order of
    /// [`sockets`](Self::sockets), then the other nodes' answers as they came, then a
    /// [`AckError::Timeout`] for each socket of another node that did not answer.
    pub async fn emit_with_ack<T, R>(&self, event: &str, data: &T) -> Vec<Result<R, AckError>>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let timeout = self.opts.timeout.unwrap_or_else(|| self.ns.ack_timeout());
        let waits: Vec<_> = self
            .sockets()
            .iter()
            .map(|s| s.emit_with_ack_timeout::<T, R>(event, data, timeout))
            .collect();
        if !self.remote() {
            return join_all(waits).await;
        }
        let remote = match event_packet(&self.ns.path, event, data, None) {
            Ok((mut packet, attachments)) => {
                let data = match packet.data.take() {
                    Some(serde_json::Value::Array(data)) => data,
                    _ => Vec::new(),
                };
                let packet = BroadcastPacket::new(self.ns.path.clone(), data, attachments);
                let mut opts = self.opts.clone();
                opts.timeout = Some(timeout);
                self.ns.adapter.broadcast_with_ack(&packet, &opts, timeout)
            }
            Err(_) => Box::pin(std::future::ready(Remote::default())),
        };
        let (mut results, remote) = futures_util::future::join(join_all(waits), remote).await;
        for answer in remote.value {
            results.push(
                crate::args::from_args(vec![answer.value], &answer.attachments)
                    .map_err(AckError::from),
            );
        }
        if let Some(AdapterError::Timeout { answered, expected }) = remote.error {
            results.extend((answered..expected).map(|_| Err(AckError::Timeout)));
        }
        results
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

    /// Makes every selected socket join `rooms`, on every node (Socket.IO's `socketsJoin`).
    pub fn join(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for sid in self.local_ids() {
            self.ns.adapter.add_all(&sid, &rooms);
        }
        if self.remote() {
            log_adapter(self.ns.adapter.add_sockets(&self.opts, &rooms));
        }
    }

    /// Makes every selected socket leave `rooms`, on every node (Socket.IO's `socketsLeave`).
    pub fn leave(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for sid in self.local_ids() {
            for room in &rooms {
                self.ns.adapter.del(&sid, room);
            }
        }
        if self.remote() {
            log_adapter(self.ns.adapter.del_sockets(&self.opts, &rooms));
        }
    }

    /// Disconnects every selected socket from the namespace, on every node
    /// (`disconnectSockets(false)`).
    pub fn disconnect(&self) {
        self.disconnect_with(false);
    }

    /// Disconnects every selected socket, on every node; with `close`, their whole connection
    /// is closed (`disconnectSockets(true)`).
    pub fn disconnect_with(&self, close: bool) {
        for socket in self.sockets() {
            socket.disconnect_with(close);
        }
        if self.remote() {
            log_adapter(self.ns.adapter.disconnect_sockets(&self.opts, close));
        }
    }
}
