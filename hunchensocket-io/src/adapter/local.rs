//! The in-memory adapter: the rooms of this node's sockets, and no other node.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use super::{Adapter, BroadcastOptions, Room, SocketId};

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

    /// Whether `room` has a member (a socket id is the room of that socket).
    pub fn has_room(&self, room: &str) -> bool {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        st.rooms.contains_key(room) || st.sids.contains_key(room)
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
        let excluded = |sid: &SocketId| opts.except.iter().any(|room| in_room(sid, room));
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
            except: vec!["s1".into()],
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
