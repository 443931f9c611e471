//! The adapter of one namespace on one node: this node's rooms, the messages it sends the
//! other nodes, what it does with theirs, and the requests it waits on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use hunchensocket_io::adapter::{
    AckAnswer, Adapter, AdapterError, BoxFuture, BroadcastOptions, BroadcastPacket, Delivery,
    Local, LocalAdapter, Remote, Restored, Room, SessionState, SocketId, SocketInfo,
};
use serde_json::Value;
use tokio::sync::Notify;

mod streams;

use crate::bus::{Bus, Mode};

fn bus_mode(adapter: &NsAdapter) -> Mode {
    adapter.bus.mode
}
use crate::wire::{self, Body, Kind, Message, Opts};

/// How the namespace's messages are encoded, and on which channels.
pub(crate) enum Codec {
    Classic(wire::classic::Channels),
    Sharded(wire::sharded::Channels),
    Streams(wire::streams::Channels),
}

/// Answers awaited for one request.
struct Pending {
    /// Answers (nodes for most requests; for an ack broadcast, the node counts).
    expected: usize,
    replies: Vec<Body>,
    /// For an ack broadcast: clients the answering nodes asked.
    clients: u64,
    acks: Vec<AckAnswer>,
    notify: Arc<Notify>,
}

pub(crate) struct NsAdapter {
    nsp: String,
    uid: String,
    bus: Arc<Bus>,
    codec: Codec,
    rooms: LocalAdapter,
    local: Weak<dyn Local>,
    me: Weak<NsAdapter>,
    pending: Mutex<HashMap<String, Pending>>,
    ready: OnceLock<Result<(), AdapterError>>,
    ready_wake: Notify,
    /// Streams: restored sockets and the last entry their replay covered; the reader does not
    /// hand them entries up to it again.
    replayed: Mutex<HashMap<SocketId, String>>,
}

impl NsAdapter {
    pub(crate) fn new(bus: Arc<Bus>, nsp: &str, local: Weak<dyn Local>) -> Arc<NsAdapter> {
        let (uid, codec) = match bus.mode {
            Mode::Sharded => {
                let uid = random_hex(8);
                let ch = wire::sharded::Channels::new(&bus.config.key, nsp, &uid);
                (uid, Codec::Sharded(ch))
            }
            Mode::Streams => {
                let uid = random_hex(8);
                let ch = wire::streams::Channels::new(&bus.config.key, nsp, &uid);
                (uid, Codec::Streams(ch))
            }
            Mode::Classic => {
                let uid = random_alnum(6);
                let ch = wire::classic::Channels::new(&bus.config.key, nsp, &uid);
                (uid, Codec::Classic(ch))
            }
        };
        let adapter = Arc::new_cyclic(|me| NsAdapter {
            nsp: nsp.to_string(),
            uid,
            bus,
            codec,
            rooms: LocalAdapter::new(),
            local,
            me: me.clone(),
            pending: Mutex::new(HashMap::new()),
            ready: OnceLock::new(),
            ready_wake: Notify::new(),
            replayed: Mutex::new(HashMap::new()),
        });
        if bus_mode(&adapter) == Mode::Streams {
            adapter.bus.route_stream(nsp, &adapter);
        }
        let subscribing = adapter.clone();
        tokio::spawn(async move {
            let result = subscribing
                .bus
                .subscribe(&subscribing.channels(), &subscribing)
                .await;
            if let Err(e) = &result {
                tracing::warn!(nsp = %subscribing.nsp, "redis adapter: {e}");
            }
            let _ = subscribing.ready.set(result);
            subscribing.ready_wake.notify_waiters();
        });
        adapter
    }

    /// The channels this namespace listens to: (name, kind, is a pattern).
    fn channels(&self) -> Vec<(String, Kind, bool)> {
        match &self.codec {
            Codec::Classic(ch) => vec![
                (ch.pattern(), Kind::Broadcast, true),
                (ch.request.clone(), Kind::Request, false),
                (ch.response.clone(), Kind::Response, false),
                (ch.own_response.clone(), Kind::Response, false),
            ],
            Codec::Sharded(ch) => vec![
                (ch.main.clone(), Kind::Request, false),
                (ch.own_response.clone(), Kind::Response, false),
            ],
            Codec::Streams(ch) => vec![
                (ch.public.clone(), Kind::Request, false),
                (ch.private.clone(), Kind::Response, false),
            ],
        }
    }

    fn server_channel(&self) -> &str {
        match &self.codec {
            Codec::Classic(ch) => &ch.request,
            Codec::Sharded(ch) => &ch.main,
            Codec::Streams(ch) => &ch.public,
        }
    }

    /// Sends `body` to the other nodes (a response to node `to`).
    fn send(&self, body: &Body, to: Option<&str>) -> Result<(), AdapterError> {
        let encoded = match &self.codec {
            Codec::Classic(ch) => wire::classic::encode(ch, &self.uid, body),
            Codec::Sharded(ch) => wire::sharded::encode(ch, &self.uid, &self.nsp, body, to),
            Codec::Streams(ch) => {
                if wire::streams::logged(body) {
                    return match wire::streams::entry(&self.uid, &self.nsp, body) {
                        Some(fields) => self.bus.xadd(fields),
                        None => Ok(()),
                    };
                }
                let channel = match to {
                    Some(to) => ch.response_to(to),
                    None => ch.public.clone(),
                };
                wire::streams::payload(&self.uid, &self.nsp, body).map(|bytes| (channel, bytes))
            }
        };
        match encoded {
            Some((channel, bytes)) => self.bus.publish(channel, bytes),
            None => Ok(()),
        }
    }

    fn local(&self) -> Option<Arc<dyn Local>> {
        self.local.upgrade()
    }

    /// A message arrived on one of this namespace's channels.
    pub(crate) fn on_raw(&self, kind: Kind, _route: &[u8], payload: &[u8]) {
        let decoded = match &self.codec {
            Codec::Classic(_) => wire::classic::decode(&self.nsp, kind, payload),
            Codec::Sharded(_) => wire::sharded::decode(payload),
            Codec::Streams(_) => wire::streams::from_payload(payload),
        };
        match decoded {
            Ok(msg) => self.on_message(msg),
            Err(e) => {
                self.bus.count_dropped();
                tracing::warn!(
                    nsp = %self.nsp,
                    bytes = payload.len(),
                    "redis adapter: invalid message dropped: {e}"
                );
            }
        }
    }

    fn on_message(&self, msg: Message) {
        if msg.uid.as_deref() == Some(self.uid.as_str()) || msg.nsp != self.nsp {
            return;
        }
        if msg.body.reply_to().is_some() {
            return self.on_reply(msg.body);
        }
        let Some(local) = self.local() else { return };
        let from = msg.uid;
        match msg.body {
            Body::Broadcast {
                packet,
                opts,
                request_id: None,
            } => {
                let o = opts.to_options();
                local.emit(&self.rooms.sockets(&o), &packet, o.volatile);
            }
            Body::Broadcast {
                packet,
                opts,
                request_id: Some(id),
            } => {
                let timeout = opts
                    .flags
                    .get("timeout")
                    .and_then(Value::as_u64)
                    .map_or(self.bus.config.requests_timeout, Duration::from_millis);
                let sids = self.rooms.sockets(&opts.to_options());
                let me = self.me.clone();
                let (to, ack_id) = (from.clone(), id.clone());
                let on_ack = Arc::new(move |answer: AckAnswer| {
                    if let Some(me) = me.upgrade() {
                        let reply = Body::Ack {
                            request_id: ack_id.clone(),
                            answer,
                        };
                        log(me.send(&reply, to.as_deref()));
                    }
                });
                let count = local.emit_with_ack(&sids, &packet, timeout, on_ack);
                let reply = Body::ClientCount {
                    request_id: id,
                    count: count as u64,
                };
                log(self.send(&reply, from.as_deref()));
            }
            Body::Join { opts, rooms } => {
                for sid in self.rooms.sockets(&opts.to_options()) {
                    self.add_all(&sid, &rooms);
                }
            }
            Body::Leave { opts, rooms } => {
                for sid in self.rooms.sockets(&opts.to_options()) {
                    for room in &rooms {
                        self.del(&sid, room);
                    }
                }
            }
            Body::Disconnect { opts, close } => {
                local.disconnect(&self.rooms.sockets(&opts.to_options()), close);
            }
            Body::Fetch { request_id, opts } => {
                let sockets = local.describe(&self.rooms.sockets(&opts.to_options()));
                let reply = Body::FetchReply {
                    request_id,
                    sockets,
                };
                log(self.send(&reply, from.as_deref()));
            }
            Body::AllRooms { request_id } => {
                let reply = Body::RoomsReply {
                    request_id,
                    rooms: self.rooms.rooms(),
                };
                log(self.send(&reply, from.as_deref()));
            }
            Body::Sockets { request_id, rooms } => {
                let sids = self.rooms.sockets(&BroadcastOptions::to(rooms));
                let reply = Body::SocketsReply {
                    request_id,
                    sids: sids.iter().map(|s| s.to_string()).collect(),
                };
                log(self.send(&reply, from.as_deref()));
            }
            Body::ServerEmit { data, request_id } => {
                let ack = request_id.map(|id| {
                    let me = self.me.clone();
                    Box::new(move |value: Value| {
                        if let Some(me) = me.upgrade() {
                            let reply = Body::ServerEmitReply {
                                request_id: id,
                                value,
                            };
                            log(me.send(&reply, from.as_deref()));
                        }
                    }) as Box<dyn FnOnce(Value) + Send>
                });
                local.server_event(data, ack);
            }
            _ => {}
        }
    }

    fn on_reply(&self, body: Body) {
        let Some(id) = body.reply_to().map(str::to_string) else {
            return;
        };
        let mut pending = lock(&self.pending);
        let Some(p) = pending.get_mut(&id) else {
            return;
        };
        match body {
            Body::ClientCount { count, .. } => {
                p.clients += count;
                p.replies.push(Body::Ignored);
            }
            Body::Ack { answer, .. } => p.acks.push(answer),
            other => p.replies.push(other),
        }
        p.notify.notify_one();
    }

    /// How many nodes listen on this namespace, or 1 (this one) when Redis does not say.
    async fn count(&self) -> usize {
        self.bus
            .numsub(self.server_channel())
            .await
            .unwrap_or(1)
            .max(1)
    }

    /// Sends a request made from a fresh id and gathers the other nodes' answers for at most
    /// `timeout`; finishes sooner when every node answered, or when fewer nodes remain.
    async fn request(
        self: Arc<Self>,
        make: impl FnOnce(String) -> Body,
        timeout: Duration,
        acks: bool,
    ) -> (Pending, Option<AdapterError>) {
        let expected = self.count().await - 1;
        let notify = Arc::new(Notify::new());
        let empty = |expected| Pending {
            expected,
            replies: Vec::new(),
            clients: 0,
            acks: Vec::new(),
            notify: notify.clone(),
        };
        if expected == 0 {
            return (empty(0), None);
        }
        let id = self.request_id();
        lock(&self.pending).insert(id.clone(), empty(expected));
        if let Err(e) = self.send(&make(id.clone()), None) {
            let p = lock(&self.pending)
                .remove(&id)
                .unwrap_or_else(|| empty(expected));
            return (p, Some(e));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut recount = tokio::time::interval(Duration::from_millis(500));
        recount.tick().await;
        loop {
            let done = {
                let pending = lock(&self.pending);
                pending.get(&id).is_none_or(|p| {
                    p.replies.len() >= p.expected && (!acks || p.acks.len() as u64 >= p.clients)
                })
            };
            if done {
                break;
            }
            tokio::select! {
                () = notify.notified() => {}
                _ = recount.tick() => {
                    // A node that died no longer counts (its subscriptions went with it).
                    let now = self.count().await - 1;
                    if let Some(p) = lock(&self.pending).get_mut(&id) {
                        p.expected = p.expected.min(now);
                    }
                }
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let p = lock(&self.pending)
            .remove(&id)
            .unwrap_or_else(|| empty(expected));
        let error = if p.replies.len() < p.expected {
            Some(AdapterError::Timeout {
                answered: p.replies.len(),
                expected: p.expected,
            })
        } else if acks && (p.acks.len() as u64) < p.clients {
            Some(AdapterError::Timeout {
                answered: p.acks.len(),
                expected: p.clients as usize,
            })
        } else {
            None
        };
        (p, error)
    }

    fn request_id(&self) -> String {
        if self.bus.mode != Mode::Classic {
            random_hex(8)
        } else {
            random_alnum(6)
        }
    }

    fn strong(&self) -> Option<Arc<NsAdapter>> {
        self.me.upgrade()
    }

    async fn fetch(self: Arc<Self>, opts: Opts) -> Remote<Vec<SocketInfo>> {
        let timeout = self.bus.config.requests_timeout;
        let (p, error) = self
            .request(
                |request_id| Body::Fetch { request_id, opts },
                timeout,
                false,
            )
            .await;
        let mut sockets = Vec::new();
        for reply in p.replies {
            if let Body::FetchReply { sockets: s, .. } = reply {
                sockets.extend(s);
            }
        }
        Remote {
            value: sockets,
            error,
        }
    }
}

fn log(result: Result<(), AdapterError>) {
    if let Err(e) = result {
        tracing::warn!("redis adapter: {e}");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing is not something a server can recover from.
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

/// `n` random bytes as hex (the cluster adapter's ids).
pub(crate) fn random_hex(n: usize) -> String {
    random_bytes::<32>()[..n]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `n` random letters and digits (the classic adapter's ids, as uid2 makes them).
pub(crate) fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random_bytes::<32>()[..n]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

impl Adapter for NsAdapter {
    fn add_all(&self, sid: &SocketId, rooms: &[Room]) {
        let new: Vec<Room> = match &self.codec {
            Codec::Sharded(_) => rooms
                .iter()
                .filter(|r| r.as_str() != &**sid && !self.rooms.has_room(r))
                .cloned()
                .collect(),
            Codec::Classic(_) | Codec::Streams(_) => Vec::new(),
        };
        self.rooms.add_all(sid, rooms);
        if let (Codec::Sharded(ch), false, Some(me)) = (&self.codec, new.is_empty(), self.strong())
        {
            // Node's cluster adapter publishes a broadcast to one public room on that room's
            // own channel: listen to it while the room has members here.
            let channels: Vec<_> = new
                .iter()
                .filter(|r| !wire::sharded::looks_like_socket_id(r))
                .map(|r| (ch.room(r), Kind::Request, false))
                .collect();
            if !channels.is_empty() {
                tokio::spawn(async move {
                    log(me.bus.subscribe(&channels, &me).await);
                });
            }
        }
    }

    fn del(&self, sid: &SocketId, room: &str) {
        self.rooms.del(sid, room);
        self.room_gone(room);
    }

    fn del_all(&self, sid: &SocketId) {
        let rooms = self.rooms.socket_rooms(sid);
        self.rooms.del_all(sid);
        for room in rooms {
            self.room_gone(&room);
        }
    }

    fn socket_rooms(&self, sid: &SocketId) -> Vec<Room> {
        self.rooms.socket_rooms(sid)
    }

    fn rooms(&self) -> Vec<Room> {
        self.rooms.rooms()
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.rooms.sockets(opts)
    }

    fn ready(&self) -> BoxFuture<Result<(), AdapterError>> {
        let Some(me) = self.strong() else {
            return Box::pin(std::future::ready(Ok(())));
        };
        Box::pin(async move {
            loop {
                let wake = me.ready_wake.notified();
                if let Some(result) = me.ready.get() {
                    return result.clone();
                }
                wake.await;
            }
        })
    }

    fn broadcast(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
    ) -> Result<(), AdapterError> {
        self.send(
            &Body::Broadcast {
                packet: packet.clone(),
                opts: Opts::from_options(opts),
                request_id: None,
            },
            None,
        )
    }

    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<Remote<Vec<AckAnswer>>> {
        let Some(me) = self.strong() else {
            return Box::pin(std::future::ready(Remote::default()));
        };
        let (packet, opts) = (packet.clone(), Opts::from_options(opts));
        Box::pin(async move {
            let (p, error) = me
                .request(
                    |request_id| Body::Broadcast {
                        packet,
                        opts,
                        request_id: Some(request_id),
                    },
                    timeout,
                    true,
                )
                .await;
            Remote {
                value: p.acks,
                error,
            }
        })
    }

    fn fetch_sockets(&self, opts: &BroadcastOptions) -> BoxFuture<Remote<Vec<SocketInfo>>> {
        let Some(me) = self.strong() else {
            return Box::pin(std::future::ready(Remote::default()));
        };
        Box::pin(me.fetch(Opts::from_options(opts)))
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        self.send(
            &Body::Join {
                opts: Opts::from_options(opts),
                rooms: rooms.to_vec(),
            },
            None,
        )
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        self.send(
            &Body::Leave {
                opts: Opts::from_options(opts),
                rooms: rooms.to_vec(),
            },
            None,
        )
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        self.send(
            &Body::Disconnect {
                opts: Opts::from_options(opts),
                close,
            },
            None,
        )
    }

    fn all_rooms(&self) -> BoxFuture<Remote<Vec<Room>>> {
        let Some(me) = self.strong() else {
            return Box::pin(std::future::ready(Remote::default()));
        };
        Box::pin(async move {
            if me.bus.mode != Mode::Classic {
                // The cluster adapter has no rooms request: every room has a socket, so the
                // rooms of every socket are every room.
                let found = me.fetch(Opts::default()).await;
                let mut rooms: Vec<Room> = found.value.into_iter().flat_map(|s| s.rooms).collect();
                rooms.sort();
                rooms.dedup();
                return Remote {
                    value: rooms,
                    error: found.error,
                };
            }
            let timeout = me.bus.config.requests_timeout;
            let (p, error) = me
                .request(|request_id| Body::AllRooms { request_id }, timeout, false)
                .await;
            let rooms = p
                .replies
                .into_iter()
                .flat_map(|r| match r {
                    Body::RoomsReply { rooms, .. } => rooms,
                    _ => Vec::new(),
                })
                .collect();
            Remote {
                value: rooms,
                error,
            }
        })
    }

    fn server_side_emit(&self, data: &[Value]) -> Result<(), AdapterError> {
        self.send(
            &Body::ServerEmit {
                data: data.to_vec(),
                request_id: None,
            },
            None,
        )
    }

    fn server_side_emit_with_ack(
        &self,
        data: &[Value],
        timeout: Duration,
    ) -> BoxFuture<Remote<Vec<Value>>> {
        let Some(me) = self.strong() else {
            return Box::pin(std::future::ready(Remote::default()));
        };
        let data = data.to_vec();
        Box::pin(async move {
            let (p, error) = me
                .request(
                    |request_id| Body::ServerEmit {
                        data,
                        request_id: Some(request_id),
                    },
                    timeout,
                    false,
                )
                .await;
            let answers = p
                .replies
                .into_iter()
                .filter_map(|r| match r {
                    Body::ServerEmitReply { value, .. } => Some(value),
                    _ => None,
                })
                .collect();
            Remote {
                value: answers,
                error,
            }
        })
    }

    fn spans_nodes(&self) -> bool {
        true
    }

    fn recovers(&self) -> bool {
        self.bus.mode == Mode::Streams
    }

    fn record(&self, _packet: &mut BroadcastPacket, _opts: &BroadcastOptions) -> Delivery {
        // The stream gives the offset: the packet reaches this node's sockets from there.
        Delivery::ByAdapter
    }

    fn persist_session(&self, state: SessionState) {
        if self.bus.mode != Mode::Streams {
            return;
        }
        let Some(me) = self.strong() else { return };
        let key = format!("{}{}", self.bus.config.session_key_prefix, state.pid);
        let value = wire::streams::session(&state);
        let ttl = self.bus.config.session_ttl.as_millis() as u64;
        tokio::spawn(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(value).arg("PX").arg(ttl.max(1));
            if let Err(e) = me.bus.query(&cmd).await {
                tracing::warn!("redis adapter: session not kept: {e}");
            }
        });
    }

    fn restore_session(&self, pid: &str, offset: &str) -> BoxFuture<Option<Restored>> {
        let Some(me) = self.strong() else {
            return Box::pin(std::future::ready(None));
        };
        if self.bus.mode != Mode::Streams || !wire::streams::is_offset(offset) {
            return Box::pin(std::future::ready(None));
        }
        let (pid, offset) = (pid.to_string(), offset.to_string());
        Box::pin(async move { me.restore(&pid, offset).await })
    }

    fn server_count(&self) -> BoxFuture<usize> {
        let Some(me) = self.strong() else {
            return Box::pin(std::future::ready(1));
        };
        Box::pin(async move { me.count().await })
    }

    fn close(&self) {
        let Some(me) = self.strong() else { return };
        let mut channels: Vec<(String, bool)> = self
            .channels()
            .into_iter()
            .map(|(c, _, pattern)| (c, pattern))
            .collect();
        if let Codec::Sharded(ch) = &self.codec {
            channels.extend(
                self.rooms
                    .rooms()
                    .iter()
                    .filter(|r| !wire::sharded::looks_like_socket_id(r))
                    .map(|r| (ch.room(r), false)),
            );
        }
        tokio::spawn(async move { me.bus.unsubscribe(&channels).await });
    }
}

impl NsAdapter {
    /// A room with no member left here: stop listening to its channel (sharded).
    fn room_gone(&self, room: &str) {
        if let (Codec::Sharded(ch), Some(me)) = (&self.codec, self.strong()) {
            if !self.rooms.has_room(room) && !wire::sharded::looks_like_socket_id(room) {
                let channel = vec![(ch.room(room), false)];
                tokio::spawn(async move { me.bus.unsubscribe(&channel).await });
            }
        }
    }
}
