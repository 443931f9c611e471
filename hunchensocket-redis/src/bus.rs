//! The Redis connections one server process shares between the adapters of its namespaces: a
//! publisher fed by a bounded queue, a subscriber whose messages are routed by channel, and a
//! watch on both that reports outages and drives reconnection.
//!
//! Memory stays bounded: at most [`Config::max_publish_queue`](crate::Config) messages wait to
//! be published (past that, publishing fails at once and local delivery goes on), and received
//! messages wait in a queue of at most [`Config::max_inbound_bytes`](crate::Config) bytes
//! (past that, and for any message over `max_message_size`, they are dropped with a log line).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use hunchensocket_io::adapter::AdapterError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value as RValue};
use tokio::sync::mpsc;

use crate::node::NsAdapter;
use crate::wire::Kind;
use crate::{Config, Error, Status};

/// A hook told of outages and recoveries.
pub(crate) type StatusHook = Arc<dyn Fn(Status) + Send + Sync>;

/// The connection commands go through.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    async fn query(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<RValue> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => cmd.query_async(c).await,
        }
    }
}

/// A message received, with what routes it: the channel, or the pattern it matched.
struct Inbound {
    route: Bytes,
    payload: Bytes,
}

/// Where messages of one channel (or pattern) go.
#[derive(Clone)]
struct Route {
    adapter: Weak<NsAdapter>,
    kind: Kind,
}

/// Which adapter the connections serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Classic,
    Sharded,
    Streams,
}

/// What the publisher sends.
pub(crate) enum Out {
    Publish(String, Vec<u8>),
    /// `XADD stream MAXLEN ~ max * field value ...`.
    Xadd(Vec<(&'static str, Vec<u8>)>),
}

pub(crate) struct Bus {
    pub(crate) config: Config,
    pub(crate) sharded: bool,
    pub(crate) mode: Mode,
    publish_tx: mpsc::Sender<Out>,
    /// Streams: the adapters by namespace, for the entries the reader gets.
    stream_routes: RwLock<HashMap<String, Weak<NsAdapter>>>,
    /// Streams: held by the reader while it hands out a batch of entries, and by a restore
    /// from its reading to the socket being back in its rooms.
    pub(crate) reader_turn: Arc<tokio::sync::Mutex<()>>,
    /// Commands: PUBSUB NUMSUB and the like.
    commands: Conn,
    /// The subscribing connection.
    sub: tokio::sync::Mutex<Conn>,
    routes: RwLock<HashMap<Bytes, Route>>,
    down: AtomicBool,
    hooks: Mutex<Vec<StatusHook>>,
    dropped: AtomicU64,
}

impl Bus {
    pub(crate) async fn connect(config: Config, mode: Mode) -> Result<Arc<Bus>, Error> {
        let sharded = mode == Mode::Sharded;
        let inbound_bytes = Arc::new(AtomicUsize::new(0));
        let (in_tx, in_rx) = mpsc::unbounded_channel::<Inbound>();
        let bus_slot: Arc<std::sync::OnceLock<Weak<Bus>>> = Arc::default();
        let sender = {
            let limit = config.max_inbound_bytes;
            let max_message = config.max_message_size;
            let inbound_bytes = inbound_bytes.clone();
            let bus_slot = bus_slot.clone();
            move |info: PushInfo| -> Result<(), redis::aio::SendError> {
                let bus = bus_slot.get().and_then(Weak::upgrade);
                match route_of(&info) {
                    Some((route, payload)) => {
                        let size = payload.len();
                        if size > max_message {
                            tracing::warn!(
                                size,
                                max = max_message,
                                "redis adapter: message over max_message_size dropped"
                            );
                            if let Some(bus) = &bus {
                                bus.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            return Ok(());
                        }
                        if inbound_bytes.fetch_add(size, Ordering::AcqRel) + size > limit {
                            inbound_bytes.fetch_sub(size, Ordering::AcqRel);
                            if let Some(bus) = &bus {
                                if bus.dropped.fetch_add(1, Ordering::Relaxed) % 1000 == 0 {
                                    tracing::warn!(
                                        limit,
                                        "redis adapter: inbound queue full, messages dropped"
                                    );
                                }
                            }
                            return Ok(());
                        }
                        let _ = in_tx.send(Inbound { route, payload });
                    }
                    None => {
                        if let Some(bus) = bus {
                            bus.on_push_kind(&info.kind);
                        }
                    }
                }
                Ok(())
            }
        };
        let url = resp3(&config.url);
        let (commands, sub) = if sharded {
            let sub = redis::cluster::ClusterClientBuilder::new(vec![url.clone()])
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(sender)
                .build()?
                .get_async_connection()
                .await?;
            let commands = redis::cluster::ClusterClientBuilder::new(vec![url])
                .use_protocol(redis::ProtocolVersion::RESP3)
                .build()?
                .get_async_connection()
                .await?;
            (Conn::Cluster(commands), Conn::Cluster(sub))
        } else {
            let client = redis::Client::open(url)?;
            let reconnect = || {
                ConnectionManagerConfig::new()
                    .set_max_delay(Duration::from_millis(1000))
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(5)))
            };
            let sub = client
                .get_connection_manager_with_config(
                    reconnect()
                        .set_push_sender(sender)
                        .set_automatic_resubscription(),
                )
                .await?;
            let commands = client
                .get_connection_manager_with_config(reconnect())
                .await?;
            (Conn::Single(commands), Conn::Single(sub))
        };
        let (publish_tx, publish_rx) = mpsc::channel(config.max_publish_queue.max(1));
        let reader = if mode == Mode::Streams {
            // Its own connection: XREAD BLOCK holds it.
            let client = redis::Client::open(resp3(&config.url))?;
            let cfg = ConnectionManagerConfig::new()
                .set_max_delay(Duration::from_millis(1000))
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(config.stream_block + Duration::from_secs(5)));
            Some(client.get_connection_manager_with_config(cfg).await?)
        } else {
            None
        };
        let bus = Arc::new(Bus {
            config,
            sharded,
            mode,
            stream_routes: RwLock::new(HashMap::new()),
            reader_turn: Arc::default(),
            publish_tx,
            commands: commands.clone(),
            sub: tokio::sync::Mutex::new(sub),
            routes: RwLock::new(HashMap::new()),
            down: AtomicBool::new(false),
            hooks: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
        });
        let _ = bus_slot.set(Arc::downgrade(&bus));
        tokio::spawn(publisher(Arc::downgrade(&bus), commands, publish_rx));
        tokio::spawn(dispatcher(Arc::downgrade(&bus), in_rx, inbound_bytes));
        tokio::spawn(watchdog(Arc::downgrade(&bus)));
        if let Some(reader) = reader {
            tokio::spawn(stream_reader(Arc::downgrade(&bus), reader));
        }
        Ok(bus)
    }

    /// Adds a hook told of outages and recoveries.
    pub(crate) fn on_status(&self, hook: StatusHook) {
        lock(&self.hooks).push(hook);
    }

    fn set_down(&self, down: bool, why: &str) {
        if self.down.swap(down, Ordering::AcqRel) == down {
            return;
        }
        let status = if down {
            tracing::warn!(
                "redis adapter: connection to Redis lost ({why}); local delivery goes on, reconnecting"
            );
            Status::Disconnected(why.to_string())
        } else {
            tracing::info!("redis adapter: connected to Redis again, subscriptions restored");
            Status::Reconnected
        };
        let hooks: Vec<_> = lock(&self.hooks).clone();
        for hook in hooks {
            hook(status.clone());
        }
    }

    fn on_push_kind(&self, kind: &PushKind) {
        match kind {
            PushKind::Disconnection => self.set_down(true, "connection closed"),
            PushKind::Subscribe | PushKind::PSubscribe | PushKind::SSubscribe => {
                self.set_down(false, "")
            }
            _ => {}
        }
    }

    /// Counts one message dropped (unreadable, say).
    pub(crate) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages from Redis dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether Redis is reachable, as far as this node knows.
    pub(crate) fn is_up(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    /// Queues a message to publish; fails at once when the queue is full.
    pub(crate) fn publish(&self, channel: String, bytes: Vec<u8>) -> Result<(), AdapterError> {
        self.send(Out::Publish(channel, bytes))
    }

    /// Queues a stream entry to add.
    pub(crate) fn xadd(&self, fields: Vec<(&'static str, Vec<u8>)>) -> Result<(), AdapterError> {
        self.send(Out::Xadd(fields))
    }

    fn send(&self, out: Out) -> Result<(), AdapterError> {
        self.publish_tx.try_send(out).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                AdapterError::Unavailable("publish queue full (Redis unreachable or slow)".into())
            }
            mpsc::error::TrySendError::Closed(_) => {
                AdapterError::Unavailable("adapter closed".into())
            }
        })
    }

    /// Runs a pipeline on the command connection (bounded by 5 s).
    pub(crate) async fn query_pipe(&self, pipe: &redis::Pipeline) -> Result<RValue, AdapterError> {
        let mut conn = self.commands.clone();
        let run = async {
            match &mut conn {
                Conn::Single(c) => pipe.query_async(c).await,
                Conn::Cluster(c) => pipe.query_async(c).await,
            }
        };
        match tokio::time::timeout(Duration::from_secs(5), run).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(AdapterError::Unavailable(e.to_string())),
            Err(_) => Err(AdapterError::Unavailable("Redis did not answer".into())),
        }
    }

    /// Hands stream entries of namespace `nsp` to `adapter`.
    pub(crate) fn route_stream(&self, nsp: &str, adapter: &Arc<NsAdapter>) {
        self.stream_routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(nsp.to_string(), Arc::downgrade(adapter));
    }

    /// Runs a command on the command connection (bounded by 5 s).
    pub(crate) async fn query(&self, cmd: &redis::Cmd) -> Result<RValue, AdapterError> {
        let mut conn = self.commands.clone();
        match tokio::time::timeout(Duration::from_secs(5), conn.query(cmd)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(AdapterError::Unavailable(e.to_string())),
            Err(_) => Err(AdapterError::Unavailable("Redis did not answer".into())),
        }
    }

    /// Routes messages of `channel` (a pattern when `pattern`) to `adapter`, and subscribes.
    pub(crate) async fn subscribe(
        &self,
        channels: &[(String, Kind, bool)],
        adapter: &Arc<NsAdapter>,
    ) -> Result<(), AdapterError> {
        {
            let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
            for (channel, kind, _) in channels {
                routes.insert(
                    Bytes::copy_from_slice(channel.as_bytes()),
                    Route {
                        adapter: Arc::downgrade(adapter),
                        kind: *kind,
                    },
                );
            }
        }
        let mut sub = self.sub.lock().await;
        for (channel, _, pattern) in channels {
            let result = match (&mut *sub, pattern) {
                (Conn::Single(c), true) => c.psubscribe(channel).await,
                (Conn::Single(c), false) => c.subscribe(channel).await,
                (Conn::Cluster(c), _) => c.ssubscribe(channel).await,
            };
            result.map_err(|e| AdapterError::Unavailable(format!("subscribe {channel}: {e}")))?;
        }
        Ok(())
    }

    /// Stops routing and listening to these channels.
    pub(crate) async fn unsubscribe(&self, channels: &[(String, bool)]) {
        {
            let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
            for (channel, _) in channels {
                routes.remove(channel.as_bytes());
            }
        }
        let mut sub = self.sub.lock().await;
        for (channel, pattern) in channels {
            let result = match (&mut *sub, pattern) {
                (Conn::Single(c), true) => c.punsubscribe(channel).await,
                (Conn::Single(c), false) => c.unsubscribe(channel).await,
                (Conn::Cluster(c), _) => c.sunsubscribe(channel).await,
            };
            if let Err(e) = result {
                tracing::debug!("redis adapter: unsubscribe {channel}: {e}");
            }
        }
    }

    /// How many subscribers `channel` has (NUMSUB, or SHARDNUMSUB in a cluster), or `None`
    /// when Redis does not answer.
    pub(crate) async fn numsub(&self, channel: &str) -> Option<usize> {
        // (the streams adapter counts subscribers of its public channel, over plain pub/sub)
        let sub = if self.sharded {
            "SHARDNUMSUB"
        } else {
            "NUMSUB"
        };
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg(sub).arg(channel);
        let mut conn = self.commands.clone();
        match tokio::time::timeout(Duration::from_secs(2), conn.query(&cmd)).await {
            Ok(Ok(value)) => count_of(&value),
            Ok(Err(e)) => {
                tracing::debug!("redis adapter: PUBSUB {sub}: {e}");
                None
            }
            Err(_) => None,
        }
    }
}

/// The count in a NUMSUB reply: `[channel, n]` (RESP2) or `{channel: n}` (RESP3).
fn count_of(value: &RValue) -> Option<usize> {
    let n = match value {
        RValue::Array(items) => items.get(1)?,
        RValue::Map(entries) => &entries.first()?.1,
        _ => return None,
    };
    match n {
        RValue::Int(n) => usize::try_from(*n).ok(),
        RValue::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

fn bulk(v: Option<&RValue>) -> Option<Bytes> {
    match v? {
        RValue::BulkString(b) => Some(Bytes::copy_from_slice(b)),
        RValue::SimpleString(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
        _ => None,
    }
}

/// The route (channel, or the pattern matched) and payload of a message push.
fn route_of(info: &PushInfo) -> Option<(Bytes, Bytes)> {
    match info.kind {
        PushKind::Message | PushKind::SMessage => {
            Some((bulk(info.data.first())?, bulk(info.data.get(1))?))
        }
        PushKind::PMessage => Some((bulk(info.data.first())?, bulk(info.data.get(2))?)),
        _ => None,
    }
}

/// `url` with RESP3 chosen (push messages need it), unless a protocol was.
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

async fn publisher(bus: Weak<Bus>, mut conn: Conn, mut rx: mpsc::Receiver<Out>) {
    let Some((sharded, stream, max_len)) = bus.upgrade().map(|b| {
        (
            b.sharded,
            b.config.stream_name.clone(),
            b.config.stream_max_len,
        )
    }) else {
        return;
    };
    let verb = if sharded { "SPUBLISH" } else { "PUBLISH" };
    while let Some(out) = rx.recv().await {
        let (cmd, channel) = match out {
            Out::Publish(channel, bytes) => {
                let mut cmd = redis::cmd(verb);
                cmd.arg(&channel).arg(bytes);
                (cmd, channel)
            }
            Out::Xadd(fields) => {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(max_len)
                    .arg("*");
                for (name, value) in fields {
                    cmd.arg(name).arg(value);
                }
                (cmd, stream.clone())
            }
        };
        let result = tokio::time::timeout(Duration::from_secs(5), conn.query(&cmd)).await;
        let failure = match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_string()),
        };
        let Some(bus) = bus.upgrade() else { return };
        if let Some(why) = failure {
            tracing::debug!("redis adapter: {verb} {channel}: {why}");
            bus.set_down(true, &why);
        }
    }
}

async fn dispatcher(
    bus: Weak<Bus>,
    mut rx: mpsc::UnboundedReceiver<Inbound>,
    bytes: Arc<AtomicUsize>,
) {
    while let Some(msg) = rx.recv().await {
        bytes.fetch_sub(msg.payload.len(), Ordering::AcqRel);
        let Some(bus) = bus.upgrade() else { return };
        let route = bus
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&msg.route)
            .cloned();
        drop(bus);
        let Some(route) = route else { continue };
        if let Some(adapter) = route.adapter.upgrade() {
            adapter.on_raw(route.kind, &msg.route, &msg.payload);
        }
    }
}

/// Reads the stream (streams mode) from its end on, and hands each entry, with its id, to the
/// adapter of its namespace; after an error it waits a second and reads on from where it was.
async fn stream_reader(bus: Weak<Bus>, mut conn: ConnectionManager) {
    let Some((stream, count, block)) = bus.upgrade().map(|b| {
        (
            b.config.stream_name.clone(),
            b.config.stream_read_count,
            b.config.stream_block,
        )
    }) else {
        return;
    };
    // From the last entry there is now ("$" would miss what comes between two reads).
    let mut last: Option<String> = None;
    loop {
        if bus.strong_count() == 0 {
            return;
        }
        if last.is_none() {
            let mut cmd = redis::cmd("XREVRANGE");
            cmd.arg(&stream).arg("+").arg("-").arg("COUNT").arg(1);
            match cmd.query_async::<RValue>(&mut conn).await {
                Ok(v) => {
                    last = Some(
                        entries(&v)
                            .first()
                            .map_or("0-0".to_string(), |e| e.0.clone()),
                    )
                }
                Err(e) => {
                    tracing::debug!("redis adapter: XREVRANGE {stream}: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let from = last.clone().unwrap_or_else(|| "0-0".into());
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&from);
        let reply = match cmd.query_async::<RValue>(&mut conn).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!("redis adapter: XREAD {stream}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(strong) = bus.upgrade() else { return };
        let batch = read_entries(&reply);
        if batch.is_empty() {
            continue;
        }
        let _turn = strong.reader_turn.lock().await;
        for (id, fields) in batch {
            let nsp = fields
                .iter()
                .find(|(k, _)| k == b"nsp")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
            let adapter = nsp.and_then(|nsp| {
                strong
                    .stream_routes
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&nsp)
                    .and_then(Weak::upgrade)
            });
            if let Some(adapter) = adapter {
                adapter.on_entry(&id, &fields);
            }
            last = Some(id);
        }
    }
}

/// A stream entry: its id and its fields.
pub(crate) type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// The entries of an XREAD reply (`[[stream, [entry…]]]`, or a RESP3 map of stream → entries).
fn read_entries(v: &RValue) -> Vec<Entry> {
    match v {
        RValue::Array(streams) => streams
            .iter()
            .flat_map(|s| match s {
                RValue::Array(pair) => pair.get(1).map(entries).unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect(),
        RValue::Map(streams) => streams.iter().flat_map(|(_, e)| entries(e)).collect(),
        _ => Vec::new(),
    }
}

/// The entries of an XRANGE reply (`[[id, [field, value, …]], …]`).
pub(crate) fn entries(v: &RValue) -> Vec<Entry> {
    let RValue::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let RValue::Array(pair) = item else {
                return None;
            };
            let id = bulk(pair.first())?;
            let fields = match pair.get(1)? {
                RValue::Array(flat) => flat
                    .chunks(2)
                    .filter_map(|kv| Some((bulk(kv.first())?.to_vec(), bulk(kv.get(1))?.to_vec())))
                    .collect(),
                RValue::Map(kv) => kv
                    .iter()
                    .filter_map(|(k, v)| Some((bulk(Some(k))?.to_vec(), bulk(Some(v))?.to_vec())))
                    .collect(),
                _ => return None,
            };
            Some((String::from_utf8_lossy(&id).into_owned(), fields))
        })
        .collect()
}

/// Pings Redis every second through both connections: this notices outages that no command
/// met, drives reconnection (and resubscription), and tells the hooks when Redis is back.
async fn watchdog(bus: Weak<Bus>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(strong) = bus.upgrade() else { return };
        let mut commands = strong.commands.clone();
        let ping = redis::cmd("PING");
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(2), commands.query(&ping)).await,
            Ok(Ok(_))
        );
        let sub_ok = {
            let mut sub = strong.sub.lock().await;
            matches!(
                tokio::time::timeout(Duration::from_secs(2), sub.query(&ping)).await,
                Ok(Ok(_))
            )
        };
        if !ok || !sub_ok {
            strong.set_down(true, "no answer to PING");
        } else if !strong.is_up() {
            strong.set_down(false, "");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
