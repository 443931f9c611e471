//! Connection state recovery in memory: the packets broadcast lately and the sessions of
//! sockets that dropped, kept so that a client which reconnects within the allowed time gets its
//! id, rooms and data back and every packet it missed, in order (Socket.IO 4.6's
//! `connectionStateRecovery`, as its in-memory `SessionAwareAdapter` does it).
//!
//! [`MemoryRecovery`] wraps the adapter of a namespace that lives in one process. Everything is
//! bounded ([`Recovery`]): past a bound the oldest packets or sessions are forgotten, and a
//! client whose missed packets are no longer all here, or are too many, is not recovered at all
//! (it gets a new id; never a partial replay).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    AckAnswer, Adapter, AdapterError, BoxFuture, BroadcastOptions, BroadcastPacket, Delivery,
    Remote, Restored, Room, SessionState, SocketId, SocketInfo,
};

/// Settings of connection state recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// How long after a drop a client may come back and be recovered. Default 2 minutes.
    pub max_disconnection_duration: Duration,
    /// Whether connect middleware is skipped for a recovered socket. Default true.
    pub skip_middlewares: bool,
    /// Broadcast packets kept, at most (the oldest go first). Default 10 000.
    pub max_packets: usize,
    /// Bytes of kept packets (their JSON and attachments), at most. Default 16 MiB.
    pub max_bytes: usize,
    /// Dropped sessions kept, at most (the oldest go first). Default 100 000.
    pub max_sessions: usize,
    /// Bytes of one kept session (its rooms and data as JSON), at most: a larger one is not
    /// kept. Default 64 KiB.
    pub max_session_bytes: usize,
    /// Packets one client may have missed and still be recovered. Default 1 000.
    pub max_missed: usize,
}

impl Recovery {
    /// Recovery within `max_disconnection_duration`, middleware skipped or not, the other
    /// bounds at their defaults.
    pub fn new(max_disconnection_duration: Duration, skip_middlewares: bool) -> Self {
        Recovery {
            max_disconnection_duration,
            skip_middlewares,
            ..Recovery::default()
        }
    }
}

impl Recovery {
    /// Sets [`Recovery::max_packets`].
    pub fn with_max_packets(mut self, packets: usize) -> Self {
        self.max_packets = packets;
        self
    }

    /// Sets [`Recovery::max_bytes`].
    pub fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets [`Recovery::max_sessions`].
    pub fn with_max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions;
        self
    }

    /// Sets [`Recovery::max_session_bytes`].
    pub fn with_max_session_bytes(mut self, bytes: usize) -> Self {
        self.max_session_bytes = bytes;
        self
    }

    /// Sets [`Recovery::max_missed`].
    pub fn with_max_missed(mut self, packets: usize) -> Self {
        self.max_missed = packets;
        self
    }
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_packets: 10_000,
            max_bytes: 16 << 20,
            max_sessions: 100_000,
            max_session_bytes: 64 << 10,
            max_missed: 1000,
        }
    }
}

struct Kept {
    offset: u64,
    at: Instant,
    rooms: Vec<Room>,
    except: Vec<Room>,
    packet: BroadcastPacket,
    bytes: usize,
}

#[derive(Default)]
struct Store {
    packets: VecDeque<Kept>,
    bytes: usize,
    sessions: HashMap<String, (SessionState, Instant)>,
    /// Sessions by age, to forget the oldest first (entries of restored sessions linger until
    /// they reach the front).
    order: VecDeque<(String, Instant)>,
}

/// An adapter whose namespace recovers dropped clients from memory: it keeps the broadcasts
/// and the sessions, and hands every other call to the adapter it wraps.
pub struct MemoryRecovery {
    inner: std::sync::Arc<dyn Adapter>,
    config: Recovery,
    next: AtomicU64,
    store: Mutex<Store>,
}

impl std::fmt::Debug for MemoryRecovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRecovery")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MemoryRecovery {
    /// Recovery in memory around `inner`.
    pub fn new(inner: std::sync::Arc<dyn Adapter>, config: Recovery) -> Self {
        MemoryRecovery {
            inner,
            config,
            next: AtomicU64::new(1),
            store: Mutex::new(Store::default()),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets what is too old or over the bounds.
    fn purge(&self, st: &mut Store, now: Instant) {
        let max_age = self.config.max_disconnection_duration;
        while let Some(front) = st.packets.front() {
            let old = now.duration_since(front.at) > max_age;
            if old || st.packets.len() > self.config.max_packets || st.bytes > self.config.max_bytes
            {
                st.bytes -= front.bytes;
                st.packets.pop_front();
            } else {
                break;
            }
        }
        while let Some((pid, at)) = st.order.front().cloned() {
            let old = now.duration_since(at) > max_age;
            if old || st.sessions.len() > self.config.max_sessions {
                st.order.pop_front();
                if st.sessions.get(&pid).is_some_and(|(_, t)| *t == at) {
                    st.sessions.remove(&pid);
                }
            } else if st.order.len() > 2 * self.config.max_sessions.max(1) {
                // Entries of restored sessions: drop them from the front.
                st.order.pop_front();
            } else {
                break;
            }
        }
    }
}

fn size_of(packet: &BroadcastPacket) -> usize {
    serde_json::to_vec(&packet.data).map_or(0, |v| v.len())
        + packet.attachments.iter().map(|a| a.len()).sum::<usize>()
}

impl Adapter for MemoryRecovery {
    fn add_all(&self, sid: &SocketId, rooms: &[Room]) {
        self.inner.add_all(sid, rooms);
    }
    fn del(&self, sid: &SocketId, room: &str) {
        self.inner.del(sid, room);
    }
    fn del_all(&self, sid: &SocketId) {
        self.inner.del_all(sid);
    }
    fn socket_rooms(&self, sid: &SocketId) -> Vec<Room> {
        self.inner.socket_rooms(sid)
    }
    fn rooms(&self) -> Vec<Room> {
        self.inner.rooms()
    }
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.inner.sockets(opts)
    }
    fn ready(&self) -> BoxFuture<Result<(), AdapterError>> {
        self.inner.ready()
    }
    fn broadcast(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
    ) -> Result<(), AdapterError> {
        self.inner.broadcast(packet, opts)
    }
    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<Remote<Vec<AckAnswer>>> {
        self.inner.broadcast_with_ack(packet, opts, timeout)
    }
    fn fetch_sockets(&self, opts: &BroadcastOptions) -> BoxFuture<Remote<Vec<SocketInfo>>> {
        self.inner.fetch_sockets(opts)
    }
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        self.inner.add_sockets(opts, rooms)
    }
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        self.inner.del_sockets(opts, rooms)
    }
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        self.inner.disconnect_sockets(opts, close)
    }
    fn all_rooms(&self) -> BoxFuture<Remote<Vec<Room>>> {
        self.inner.all_rooms()
    }
    fn server_side_emit(&self, data: &[Value]) -> Result<(), AdapterError> {
        self.inner.server_side_emit(data)
    }
    fn server_side_emit_with_ack(
        &self,
        data: &[Value],
        timeout: Duration,
    ) -> BoxFuture<Remote<Vec<Value>>> {
        self.inner.server_side_emit_with_ack(data, timeout)
    }
    fn server_count(&self) -> BoxFuture<usize> {
        self.inner.server_count()
    }
    fn close(&self) {
        self.inner.close();
    }
    fn spans_nodes(&self) -> bool {
        self.inner.spans_nodes()
    }

    fn recovers(&self) -> bool {
        true
    }

    fn record(&self, packet: &mut BroadcastPacket, opts: &BroadcastOptions) -> Delivery {
        let offset = self.next.fetch_add(1, Ordering::Relaxed);
        packet.data.push(Value::String(format!("{offset:x}")));
        let now = Instant::now();
        let bytes = size_of(packet);
        let mut st = self.store();
        st.bytes += bytes;
        st.packets.push_back(Kept {
            offset,
            at: now,
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            packet: packet.clone(),
            bytes,
        });
        self.purge(&mut st, now);
        Delivery::Now
    }

    fn persist_session(&self, state: SessionState) {
        let size = serde_json::to_vec(&state.rooms).map_or(0, |v| v.len())
            + serde_json::to_vec(&state.data).map_or(0, |v| v.len());
        if size > self.config.max_session_bytes {
            tracing::debug!(sid = %state.sid, size, "session too large to keep for recovery");
            return;
        }
        let now = Instant::now();
        let mut st = self.store();
        st.order.push_back((state.pid.clone(), now));
        st.sessions.insert(state.pid.clone(), (state, now));
        self.purge(&mut st, now);
    }

    fn restore_session(&self, pid: &str, offset: &str) -> BoxFuture<Option<Restored>> {
        let restored = self.restore_now(pid, offset);
        Box::pin(std::future::ready(restored))
    }
}

impl MemoryRecovery {
    fn restore_now(&self, pid: &str, offset: &str) -> Option<Restored> {
        let offset = u64::from_str_radix(offset, 16).ok()?;
        let now = Instant::now();
        let mut st = self.store();
        self.purge(&mut st, now);
        let (state, _) = st.sessions.remove(pid)?;
        // The offset must still be kept, or packets after it may have been forgotten.
        let at = st
            .packets
            .binary_search_by_key(&offset, |k| k.offset)
            .ok()?;
        let mut missed = Vec::new();
        for kept in st.packets.iter().skip(at + 1) {
            if state.wants(&kept.rooms, &kept.except) {
                if missed.len() == self.config.max_missed {
                    return None;
                }
                missed.push(kept.packet.clone());
            }
        }
        Some(Restored::new(state, missed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::LocalAdapter;
    use serde_json::json;
    use std::sync::Arc;

    fn store(config: Recovery) -> MemoryRecovery {
        MemoryRecovery::new(Arc::new(LocalAdapter::new()), config)
    }

    fn emit(r: &MemoryRecovery, n: u64, rooms: &[&str], except: &[&str]) -> String {
        let mut p = BroadcastPacket::new("/", vec![json!("e"), json!(n)], Vec::new());
        let mut opts = BroadcastOptions::to(rooms.iter().map(|r| r.to_string()));
        opts.except = except.iter().map(|r| r.to_string()).collect();
        r.record(&mut p, &opts);
        p.data.last().and_then(Value::as_str).unwrap().to_string()
    }

    fn session(sid: &str, rooms: &[&str]) -> SessionState {
        SessionState {
            sid: sid.into(),
            pid: format!("pid-{sid}"),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            data: json!({"k": 1}),
        }
    }

    fn numbers(r: &Restored) -> Vec<u64> {
        r.missed
            .iter()
            .map(|p| p.data[1].as_u64().unwrap())
            .collect()
    }

    #[test]
    fn missed_packets_in_order_for_the_rooms_of_the_session() {
        let r = store(Recovery::default());
        let last_seen = emit(&r, 0, &[], &[]);
        r.persist_session(session("s1", &["s1", "red"]));
        emit(&r, 1, &[], &[]);
        emit(&r, 2, &["blue"], &[]);
        emit(&r, 3, &["red"], &[]);
        emit(&r, 4, &["s1"], &[]);
        emit(&r, 5, &[], &["red"]);
        emit(&r, 6, &["red"], &["s1"]);
        let got = r.restore_now("pid-s1", &last_seen).expect("recovered");
        assert_eq!(numbers(&got), [1, 3, 4]);
        assert_eq!(got.state.data, json!({"k": 1}));
        assert!(
            r.restore_now("pid-s1", &last_seen).is_none(),
            "restored once"
        );
    }

    #[test]
    fn no_partial_replay() {
        let r = store(Recovery {
            max_packets: 3,
            max_missed: 2,
            ..Recovery::default()
        });
        let first = emit(&r, 0, &[], &[]);
        r.persist_session(session("s1", &["s1"]));
        emit(&r, 1, &[], &[]);
        emit(&r, 2, &[], &[]);
        emit(&r, 3, &[], &[]);
        assert!(
            r.restore_now("pid-s1", &first).is_none(),
            "its offset was forgotten"
        );
        let r = store(Recovery {
            max_missed: 2,
            ..Recovery::default()
        });
        let first = emit(&r, 0, &[], &[]);
        r.persist_session(session("s1", &["s1"]));
        for n in 1..=3 {
            emit(&r, n, &[], &[]);
        }
        assert!(r.restore_now("pid-s1", &first).is_none(), "too many missed");
    }

    #[test]
    fn bounds_and_expiry() {
        let r = store(Recovery {
            max_sessions: 2,
            max_session_bytes: 100,
            max_disconnection_duration: Duration::from_millis(0),
            ..Recovery::default()
        });
        let off = emit(&r, 0, &[], &[]);
        r.persist_session(session("s1", &["s1"]));
        std::thread::sleep(Duration::from_millis(5));
        assert!(r.restore_now("pid-s1", &off).is_none(), "expired");
        let r = store(Recovery {
            max_sessions: 2,
            max_session_bytes: 100,
            ..Recovery::default()
        });
        let off = emit(&r, 0, &[], &[]);
        let mut big = session("big", &["big"]);
        big.data = json!("x".repeat(200));
        r.persist_session(big);
        assert!(
            r.restore_now("pid-big", &off).is_none(),
            "too large to keep"
        );
        for s in ["a", "b", "c"] {
            r.persist_session(session(s, &[s]));
        }
        assert!(
            r.restore_now("pid-a", &off).is_none(),
            "the oldest went first"
        );
        assert!(r.restore_now("pid-c", &off).is_some());
        let r = store(Recovery {
            max_bytes: 200,
            ..Recovery::default()
        });
        for n in 0..100 {
            emit(&r, n, &[], &[]);
        }
        assert!(r.store().bytes <= 200);
        assert!(r.restore_now("pid-x", "zz").is_none(), "bad offset");
    }
}
