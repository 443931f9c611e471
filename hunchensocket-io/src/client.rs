//! One client connection as Socket.IO sees it: the namespaces it joined, binary packets being
//! reassembled, and the engine [`Handler`] that routes every packet.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;

use bytes::Bytes;
use serde_json::Value;

use crate::adapter::Restored;
use crate::engine::{CloseReason, Handler, HandshakeInfo, Payload, Session};
use crate::handler::Guarded;
use crate::packet::{Packet, PacketType};
use crate::reassembly::{self, Reassembler};
use crate::server::IoInner;
use crate::socket::{DisconnectReason, Socket, lock, send_packet, write};

/// Per-connection state, kept in the Engine.IO session.
#[derive(Debug, Default)]
pub struct ClientData {
    sockets: Mutex<HashMap<String, Socket>>,
    /// Binary packets being put back together.
    partial: Mutex<Reassembler>,
    /// Whether the client ever connected to a namespace (for the connect timeout).
    joined: AtomicBool,
    /// Ends the connect-timeout wait as soon as the client joins.
    joined_wake: tokio::sync::Notify,
    /// How many events, and bytes of them, may wait for a socket's admission.
    pub(crate) pending_limits: crate::pending::Limits,
}

impl ClientData {
    pub(crate) fn get(&self, nsp: &str) -> Option<Socket> {
        lock(&self.sockets).get(nsp).cloned()
    }

    pub(crate) fn remove(&self, nsp: &str) -> Option<Socket> {
        lock(&self.sockets).remove(nsp)
    }
}

/// The engine handler of a Socket.IO server.
pub(crate) struct SioHandler {
    pub(crate) io: Weak<IoInner>,
}

impl Handler for SioHandler {
    type Data = ClientData;

    fn data(&self, _info: &HandshakeInfo) -> ClientData {
        let pending_limits = match self.io.upgrade() {
            Some(io) => crate::pending::Limits {
                events: io.config.max_pending_events,
                bytes: io.config.max_pending_bytes,
            },
            None => Default::default(),
        };
        ClientData {
            pending_limits,
            ..ClientData::default()
        }
    }

    fn on_open(&self, session: &Arc<Session<ClientData>>) {
        let Some(io) = self.io.upgrade() else { return };
        let timeout = io.config.connect_timeout;
        let weak = Arc::downgrade(session);
        let joined = {
            let session = session.clone();
            async move {
                loop {
                    let data = session.data();
                    let notified = data.joined_wake.notified();
                    if data.joined.load(Ordering::Acquire) || session.is_closed() {
                        return;
                    }
                    notified.await;
                }
            }
        };
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(timeout) => {}
                () = joined => return,
            }
            if let Some(session) = weak.upgrade() {
                if !session.data().joined.load(Ordering::Acquire) {
                    session.close(CloseReason::ServerClose);
                }
            }
        });
    }

    fn on_message(&self, session: &Arc<Session<ClientData>>, payload: Payload) {
        let Some(io) = self.io.upgrade() else { return };
        let limits = reassembly::Limits {
            max_attachments: io.config.max_attachments,
            max_bytes: io.config.engine.max_payload,
        };
        let complete = lock(&session.data().partial).push(payload, limits);
        match complete {
            Ok(Some((packet, attachments))) => dispatch(&io, session, packet, attachments),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(sid = %session.id(), "invalid packet: {e}");
                session.close(CloseReason::ParseError);
            }
        }
    }

    fn on_close(&self, session: &Arc<Session<ClientData>>, reason: CloseReason) {
        // Ends the connect-timeout wait, which holds the session.
        session.data().joined_wake.notify_one();
        let sockets: Vec<Socket> = lock(&session.data().sockets)
            .drain()
            .map(|(_, s)| s)
            .collect();
        for socket in sockets {
            socket.closed(DisconnectReason::from(reason));
        }
    }
}

fn dispatch(
    io: &Arc<IoInner>,
    session: &Arc<Session<ClientData>>,
    p: Packet,
    attachments: Vec<Bytes>,
) {
    match p.kind {
        PacketType::Connect => connect(io, session, p.nsp, p.data),
        PacketType::Disconnect => {
            if let Some(socket) = session.data().remove(&p.nsp) {
                socket.closed(DisconnectReason::ClientNamespaceDisconnect);
            }
        }
        PacketType::Event | PacketType::BinaryEvent => {
            let Some(socket) = session.data().get(&p.nsp) else {
                return;
            };
            let Some(Value::Array(mut args)) = p.data else {
                return;
            };
            let name = match args.remove(0) {
                Value::String(name) => name,
                // socket.io-parser takes a number for a name; a Node EventEmitter keys it as
                // its text.
                Value::Number(n) => n.to_string(),
                _ => return,
            };
            socket.dispatch(name, args, attachments, p.id);
        }
        PacketType::Ack | PacketType::BinaryAck => {
            let (Some(socket), Some(id)) = (session.data().get(&p.nsp), p.id) else {
                return;
            };
            let args = match p.data {
                Some(Value::Array(args)) => args,
                _ => Vec::new(),
            };
            socket.resolve_ack(id, args, attachments);
        }
        // Only servers send CONNECT_ERROR.
        PacketType::ConnectError => session.close(CloseReason::ParseError),
    }
}

/// A handler of `socket` (its middleware, connection handler, event or catch-all handler)
/// panicked: logged, and the socket ended. Connected, it is disconnected (the client gets a
/// DISCONNECT; disconnect handlers run with [`DisconnectReason::ServerNamespaceDisconnect`]);
/// still being admitted, it is refused (a CONNECT_ERROR); already gone, nothing more.
pub(crate) fn handler_panicked(socket: &Socket, panic: &(dyn std::any::Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)");
    tracing::error!(socket = %socket.id(), ns = %socket.ns(), "a handler panicked: {message}");
    if socket.connected() {
        socket.disconnect();
        return;
    }
    let session = &socket.0.session;
    if session
        .data()
        .get(socket.ns())
        .is_some_and(|s| s.id() == socket.id())
    {
        forget(session, socket.ns(), socket);
        let refusal = Packet::connect_error(socket.ns(), "server error", None);
        let _ = send_packet(session, &refusal, Vec::new(), false);
    }
}

/// Removes a socket that was never admitted (if it is still the one registered for `nsp`).
fn forget(session: &Session<ClientData>, nsp: &str, socket: &Socket) {
    let mut sockets = lock(&session.data().sockets);
    if sockets.get(nsp).is_some_and(|s| s.id() == socket.id()) {
        sockets.remove(nsp);
    }
}

/// Why `socket`, being admitted to `nsp`, is no longer wanted, if it is not: its connection
/// has closed, or the client has left the namespace (and maybe joined it again since).
fn gone(session: &Session<ClientData>, nsp: &str, socket: &Socket) -> Option<DisconnectReason> {
    // The sockets first: a close marks the session closed before it takes them away.
    let wanted = session
        .data()
        .get(nsp)
        .is_some_and(|s| s.id() == socket.id());
    match session.lock().closed {
        Some(reason) => Some(reason.into()),
        None if !wanted => Some(DisconnectReason::ClientNamespaceDisconnect),
        None => None,
    }
}

/// A client joins a namespace: find (or create) it, run its middleware, admit the socket,
/// answer, and start the connection handler.
fn connect(
    io: &Arc<IoInner>,
    session: &Arc<Session<ClientData>>,
    nsp: String,
    auth: Option<Value>,
) {
    if session.data().get(&nsp).is_some() {
        return;
    }
    // From here the socket counts as joining `ns` until `admit` ends.
    let Some(ns) = io.namespace(&nsp) else {
        let refusal = Packet::connect_error(nsp, "Invalid namespace", None);
        let _ = send_packet(session, &refusal, Vec::new(), false);
        return;
    };
    session.data().joined.store(true, Ordering::Release);
    session.data().joined_wake.notify_one();
    let auth = auth.unwrap_or_else(|| serde_json::json!({}));
    // A client coming back after a drop sends the private id and the last offset it saw.
    let wants_recovery = match (&ns.recovery, auth.get("pid"), auth.get("offset")) {
        (Some(_), Some(Value::String(pid)), Some(Value::String(offset))) => {
            Some((pid.clone(), offset.clone()))
        }
        _ => None,
    };
    let Some((pid, offset)) = wants_recovery else {
        let socket = Socket::new(ns.clone(), session.clone(), auth, None);
        return admit(ns, session, nsp, socket, false);
    };
    // Restored, back in its rooms, and sent what it missed, with no broadcast in between: one
    // that was kept before is among the missed packets, one after reaches the socket live.
    let gate = ns.recovery_gate.clone();
    let closed_gate = write(&gate);
    let mut restoring = ns.adapter.restore_session(&pid, &offset);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match restoring.as_mut().poll(&mut cx) {
        // In memory, at once.
        Poll::Ready(restored) => {
            let socket = restore(&ns, session, auth, restored.as_ref());
            drop(closed_gate);
            let restored = restored.map(|r| r.state);
            let skip =
                restored.is_some() && ns.recovery.as_ref().is_some_and(|r| r.skip_middlewares);
            admit(ns, session, nsp, socket, skip);
        }
        Poll::Pending => {
            // From a store elsewhere: packets the client sends meanwhile find no socket.
            drop(closed_gate);
            let session = session.clone();
            tokio::spawn(async move {
                let restored = restoring.await;
                if session.is_closed() || session.data().get(&nsp).is_some() {
                    return;
                }
                let socket = {
                    let _gate = write(&ns.recovery_gate);
                    restore(&ns, &session, auth, restored.as_ref())
                };
                // Its hold goes now: live packets flow to it again.
                let restored = restored.map(|r| r.state);
                let skip =
                    restored.is_some() && ns.recovery.as_ref().is_some_and(|r| r.skip_middlewares);
                admit(ns, &session, nsp, socket, skip);
            });
        }
    }
}

/// The socket of a client asking to be recovered (called under the recovery gate): the one it
/// had, back in its rooms, with the packets it missed sent before the CONNECT answer (the client
/// holds them until it is connected), or a new one when it cannot be recovered.
fn restore(
    ns: &Arc<crate::namespace::NamespaceInner>,
    session: &Arc<Session<ClientData>>,
    auth: Value,
    restored: Option<&Restored>,
) -> Socket {
    let socket = Socket::new(
        ns.clone(),
        session.clone(),
        auth,
        restored.map(|r| &r.state),
    );
    if let Some(restored) = restored {
        ns.insert(&socket);
        socket.join(restored.state.rooms.clone());
        for packet in &restored.missed {
            let encoded = crate::operators::encode_broadcast(packet);
            let _ = crate::socket::send_encoded(session, &encoded, false);
        }
    }
    socket
}

/// Admits `socket` into `ns`: middleware (unless skipped for a recovered socket), the answer,
/// and the connection handler.
fn admit(
    ns: Arc<crate::namespace::NamespaceInner>,
    session: &Arc<Session<ClientData>>,
    nsp: String,
    socket: Socket,
    skip_middlewares: bool,
) {
    // Known to the connection at once, so that events sent right behind the CONNECT (before the
    // middleware has answered) wait in the socket's queue instead of finding no socket.
    lock(&session.data().sockets).insert(nsp.clone(), socket.clone());
    let session = session.clone();
    let admitting = socket.clone();
    // Run inline: without middleware that waits, the client is admitted before its next packet
    // is read.
    let admission = Box::pin(async move {
        let admitted = if skip_middlewares {
            Ok(())
        } else {
            ns.admit(&socket).await
        };
        if let Err(refusal) = admitted {
            forget(&session, &nsp, &socket);
            ns.remove(socket.id());
            let packet = Packet::connect_error(nsp, &refusal.message, refusal.data);
            let _ = send_packet(&session, &packet, Vec::new(), false);
            return;
        }
        // In the namespace and connected first, checked after: a close or a DISCONNECT from now
        // on finds the socket connected and removes it the usual way; one that came earlier
        // (while the middleware ran, or while the socket was being added) is seen by the check,
        // which removes it the same way. Either way its disconnect handlers run once.
        ns.insert(&socket);
        socket.set_connected();
        if let Some(reason) = gone(&session, &nsp, &socket) {
            socket.closed(reason);
            return;
        }
        let mut answer = serde_json::json!({ "sid": socket.id().as_ref() });
        if let Some(pid) = socket.pid() {
            answer["pid"] = Value::String(pid.to_string());
        }
        let ack = Packet::connect(nsp, Some(answer));
        let _ = send_packet(&session, &ack, Vec::new(), false);
        // Poll the handler once, so that the handlers it registers before its first await are
        // in place before any event is dispatched; the rest runs on a task of its own.
        let mut handler = (ns.handler)(socket.clone());
        let finished = poll_fn(|cx| Poll::Ready(handler.as_mut().poll(cx).is_ready())).await;
        socket.ready();
        if !finished {
            tokio::spawn(Guarded::new(&socket, handler));
        }
    });
    crate::socket::run(&admitting, move || admission);
}
