//! Rooms and who a broadcast reaches: the [`Adapter`] trait, and the in-memory [`LocalAdapter`].
//!
//! Each namespace has one adapter behind `Arc<dyn Adapter>`, so no public type carries an
//! adapter parameter. The in-memory adapter knows the sockets of this process only; an adapter
//! for several server instances (Redis, say) also overrides the `remote_*` hooks, which the
//! broadcast operators call with every broadcast, and `server_side_emit`.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use bytes::Bytes;
use serde_json::Value;

use crate::socket::SocketId;

/// A room name.
pub type Room = String;

/// Who a broadcast is for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket of the namespace when empty.
    pub rooms: Vec<Room>,
    /// Minus the sockets in any of these rooms.
    pub except: Vec<Room>,
    /// Minus this socket (the sender of a `socket.broadcast()` / `socket.to(..)`).
    pub except_socket: Option<SocketId>,
    /// This process only, even with an adapter that spans several.
    pub local: bool,
    /// May be dropped for clients that are not keeping up.
    pub volatile: bool,
}

/// A packet to broadcast, encoded once for all recipients: the Socket.IO packet text and its
/// binary attachments.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The Socket.IO packet, as the Engine.IO message text.
    pub text: hunchensocket_core::Utf8Bytes,
    /// Binary attachments, sent after the text.
    pub attachments: Vec<Bytes>,
}

/// Errors of adapters that talk to other server instances.
#[derive(Debug, thiserror::Error)]
#[error("adapter: {0}")]
pub struct AdapterError(pub String);

/// Keeps the rooms of one namespace and says who a broadcast reaches.
///
/// Every socket is in a room named by its own id (as in Socket.IO), so a room-less broadcast
/// reaches every socket the adapter knows.
pub trait Adapter: Send + Sync + 'static {
    /// Adds a socket to rooms.
    fn add_all(&self, sid: &SocketId, rooms: &[Room]);
    /// Removes a socket from a room.
    fn del(&self, sid: &SocketId, room: &str);
    /// Removes a socket from every room (it is leaving the namespace).
    fn del_all(&self, sid: &SocketId);
    /// The rooms a socket is in.
    fn socket_rooms(&self, sid: &SocketId) -> Vec<Room>;
    /// Every room with at least one local socket.
    fn rooms(&self) -> Vec<Room>;
    /// The local sockets a broadcast with `opts` reaches.
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId>;

    /// Delivers a broadcast to the other server instances (nothing to do in-memory).
    fn remote_broadcast(
        &self,
        _nsp: &str,
        _packet: &Encoded,
        _opts: &BroadcastOptions,
    ) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Sends an event to the other server instances (not to clients); returns how many
    /// instances were reached.
    fn server_side_emit(
        &self,
        _nsp: &str,
        _event: &str,
        _args: &[Value],
    ) -> Result<usize, AdapterError> {
        Ok(0)
    }
}

/// The in-memory adapter: rooms of this process.
#[derive(Debug, Default)]
pub struct LocalAdapter {
    state: RwLock<Rooms>,
}

#[derive(Debug, Default)]
struct Rooms {
    rooms: HashMap<Room, HashSet<SocketId>>,
    sids: HashMap<SocketId, HashSet<Room>>,
}

impl LocalAdapter {
    /// An empty adapter.
    pub fn new() -> Self {
        LocalAdapter::default()
    }
}

impl Adapter for LocalAdapter {
    fn add_all(&self, sid: &SocketId, rooms: &[Room]) {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        // Every socket is known, rooms or not; its own room is implied, not stored (that
        // saves a few allocations per socket).
        st.sids.entry(sid.clone()).or_default();
        for room in rooms.iter().filter(|r| r.as_str() != &**sid) {
            st.rooms
                .entry(room.clone())
                .or_default()
                .insert(sid.clone());
            if let Some(own) = st.sids.get_mut(sid) {
                own.insert(room.clone());
            }
        }
    }

    fn del(&self, sid: &SocketId, room: &str) {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(members) = st.rooms.get_mut(room) {
            members.remove(sid);
            if members.is_empty() {
                st.rooms.remove(room);
            }
        }
        if let Some(rooms) = st.sids.get_mut(sid) {
            rooms.remove(room);
        }
    }

    fn del_all(&self, sid: &SocketId) {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let Some(rooms) = st.sids.remove(sid) else {
            return;
        };
        for room in rooms {
            if let Some(members) = st.rooms.get_mut(&room) {
                members.remove(sid);
                if members.is_empty() {
                    st.rooms.remove(&room);
                }
            }
        }
    }

    fn socket_rooms(&self, sid: &SocketId) -> Vec<Room> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        let Some(rooms) = st.sids.get(sid) else {
            return Vec::new();
        };
        std::iter::once(sid.to_string())
            .chain(rooms.iter().cloned())
            .collect()
    }

    fn rooms(&self) -> Vec<Room> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        st.rooms
            .keys()
            .cloned()
            .chain(st.sids.keys().map(|sid| sid.to_string()))
            .collect()
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        let in_room = |sid: &SocketId, room: &str| {
            &**sid == room || st.rooms.get(room).is_some_and(|m| m.contains(sid))
        };
        let excluded = |sid: &SocketId| {
            opts.except_socket.as_ref() == Some(sid)
                || opts.except.iter().any(|room| in_room(sid, room))
        };
        if opts.rooms.is_empty() {
            return st
                .sids
                .keys()
                .filter(|sid| !excluded(sid))
                .cloned()
                .collect();
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for room in &opts.rooms {
            let own = st.sids.get_key_value(room.as_str()).map(|(sid, _)| sid);
            for sid in st.rooms.get(room).into_iter().flatten().chain(own) {
                if !excluded(sid) && seen.insert(sid.clone()) {
                    out.push(sid.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> SocketId {
        s.into()
    }

    #[test]
    fn rooms_and_broadcast_targets() {
        let a = LocalAdapter::new();
        a.add_all(&sid("s1"), &["s1".into(), "red".into()]);
        a.add_all(&sid("s2"), &["s2".into(), "red".into(), "blue".into()]);
        a.add_all(&sid("s3"), &["s3".into(), "blue".into()]);
        let mut all = a.sockets(&BroadcastOptions::default());
        all.sort();
        assert_eq!(all, vec![sid("s1"), sid("s2"), sid("s3")]);
        let opts = BroadcastOptions {
            rooms: vec!["red".into(), "blue".into()],
            ..Default::default()
        };
        assert_eq!(
            a.sockets(&opts).len(),
            3,
            "a socket in two rooms is reached once"
        );
        let opts = BroadcastOptions {
            rooms: vec!["red".into()],
            except_socket: Some(sid("s1")),
            ..Default::default()
        };
        assert_eq!(a.sockets(&opts), vec![sid("s2")]);
        let opts = BroadcastOptions {
            except: vec!["blue".into()],
            ..Default::default()
        };
        assert_eq!(a.sockets(&opts), vec![sid("s1")]);
        a.del(&sid("s2"), "red");
        let opts = BroadcastOptions {
            rooms: vec!["red".into()],
            ..Default::default()
        };
        assert_eq!(a.sockets(&opts), vec![sid("s1")]);
        a.del_all(&sid("s1"));
        assert!(a.sockets(&opts).is_empty());
        assert!(
            !a.rooms().contains(&"red".to_string()),
            "empty rooms disappear"
        );
        let mut rooms = a.socket_rooms(&sid("s2"));
        rooms.sort();
        assert_eq!(rooms, vec!["blue".to_string(), "s2".to_string()]);
    }

    #[test]
    fn every_socket_is_in_its_own_room() {
        let a = LocalAdapter::new();
        a.add_all(&sid("s1"), &[]);
        a.add_all(&sid("s2"), &["red".into()]);
        let to = |rooms: &[&str], except: &[&str]| {
            let opts = BroadcastOptions {
                rooms: rooms.iter().map(|r| r.to_string()).collect(),
                except: except.iter().map(|r| r.to_string()).collect(),
                ..Default::default()
            };
            let mut out = a.sockets(&opts);
            out.sort();
            out
        };
        assert_eq!(to(&["s1"], &[]), vec![sid("s1")]);
        assert_eq!(to(&["s1", "red"], &[]), vec![sid("s1"), sid("s2")]);
        assert_eq!(to(&[], &["s1"]), vec![sid("s2")]);
        assert_eq!(to(&["red"], &["s2"]), Vec::<SocketId>::new());
        assert_eq!(a.socket_rooms(&sid("s1")), vec!["s1".to_string()]);
        assert!(a.rooms().contains(&"s1".to_string()));
        a.del_all(&sid("s1"));
        assert!(
            to(&["s1"], &[]).is_empty(),
            "a socket that left is in no room"
        );
    }
}
