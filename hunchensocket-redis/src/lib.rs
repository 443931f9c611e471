//! Socket.IO adapters on Redis for `hunchensocket-io`: several server processes share rooms,
//! broadcasts, `fetch_sockets`, `join`/`leave`/`disconnect` on selections and server-side
//! events, and **Node servers can be among them**: the messages on Redis are byte for byte
//! those of Node's `@socket.io/redis-adapter` 8.3, so Rust and Node nodes share one Redis, and
//! `@socket.io/redis-emitter` reaches clients of Rust nodes.
//!
//! ```no_run
//! use hunchensocket_io::{Socket, SocketIo};
//! use hunchensocket_redis::{ClassicAdapter, Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let adapter = ClassicAdapter::connect(Config::new("redis://127.0.0.1:6379/")).await?;
//! let io = SocketIo::builder().adapter(adapter).build();
//! io.ns("/", |socket: Socket| async move {
//!     socket.on("chat", |socket: Socket, text: String| async move {
//!         // Every client of every node but the sender.
//!         let _ = socket.broadcast().emit("chat", &text);
//!     });
//! });
//! io.ready().await?; // subscribed: the first broadcasts reach every node
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! io.serve(listener).await?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`ClassicAdapter`]: Redis pub/sub (`PUBLISH`, `PSUBSCRIBE`), as `createAdapter` of the Node
//!   package: broadcasts in msgpack on `{key}#{nsp}#` (and `{key}#{nsp}#{room}#` for one room),
//!   requests and responses on `{key}-request#{nsp}#` and `{key}-response#{nsp}#`.
//! - [`ShardedAdapter`]: sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`) on a Redis 7 Cluster, as
//!   `createShardedAdapter` (the cluster adapter's messages; `subscriptionMode` "dynamic").
//! - [`StreamsAdapter`]: a Redis stream as `@socket.io/redis-streams-adapter` 0.3 uses it, the
//!   adapter for connection state recovery across nodes: a client that drops on one node is
//!   recovered on any other, ours or Node's.
//!
//! Operations that wait for other nodes (`fetch_sockets`, `all_rooms`, acks of a broadcast,
//! server-side emits with acks) give what answered within [`Config::requests_timeout`]
//! (default 5 s) and say which answers are missing; they end sooner when a node that was
//! waited for is gone.
//!
//! **Faults.** When Redis goes away, local delivery goes on, broadcasts meant for other nodes
//! are dropped with a log line, and the node reconnects and resubscribes by itself;
//! [`ClassicAdapter::on_status`] tells the application. A message from Redis that cannot be
//! read (garbage, truncated msgpack, wrong types), or that is larger than
//! [`Config::max_message_size`], is dropped with a log line. Memory stays bounded: at most
//! [`Config::max_publish_queue`] messages wait to be published, and received messages wait in
//! a queue of at most [`Config::max_inbound_bytes`] bytes; past that they are dropped (Redis
//! itself drops a pub/sub client that lags past its `client-output-buffer-limit`).
//!
//! **Dependencies.** `redis` (redis-rs): the most used Redis client for Rust, maintained by
//! the Redis organisation; its `ConnectionManager` reconnects and resubscribes by itself over
//! RESP3, and its cluster client speaks sharded pub/sub and follows the slot map. `rmpv`:
//! schemaless MessagePack values with bounded decoding (depth limit, capped preallocation),
//! which the dynamic shape of adapter messages needs; it writes the smallest forms as
//! notepack does.

mod bus;
mod msgpack;
mod node;
mod wire;

use std::sync::{Arc, Weak};
use std::time::Duration;

use hunchensocket_io::adapter::{Adapter, AdapterFactory, Local};

use bus::{Bus, Mode};
use node::NsAdapter;

/// Settings of a Redis adapter.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The Redis URL (`redis://host:port/`); for a cluster, any one node.
    pub url: String,
    /// The prefix of every channel (`key` of the classic adapter, `channelPrefix` of the
    /// sharded one). Default `socket.io`; every node of a fleet must use the same.
    pub key: String,
    /// How long requests to other nodes wait for answers. Default 5 s.
    pub requests_timeout: Duration,
    /// Messages from Redis larger than this are dropped. Default 4 MiB.
    pub max_message_size: usize,
    /// Bytes of received messages that may wait to be handled; past it, messages are dropped.
    /// Default 64 MiB.
    pub max_inbound_bytes: usize,
    /// Messages that may wait to be published; past it, publishing fails at once (and is
    /// logged) while Redis is unreachable. Default 10 000.
    pub max_publish_queue: usize,
    /// Streams adapter: the stream every node reads. Default `socket.io`.
    pub stream_name: String,
    /// Streams adapter: about how many entries the stream keeps (`XADD MAXLEN ~`). Default
    /// 10 000; a client whose offset was trimmed away is not recovered.
    pub stream_max_len: usize,
    /// Streams adapter: entries read at once. Default 100.
    pub stream_read_count: usize,
    /// Streams adapter: how long one read waits for entries. Default 5 s.
    pub stream_block: Duration,
    /// Streams adapter: the prefix of the keys of kept sessions. Default `sio:session:`.
    pub session_key_prefix: String,
    /// Streams adapter: how long a dropped socket's session is kept in Redis; make it the
    /// server's maximum disconnection duration. Default 2 minutes.
    pub session_ttl: Duration,
}

impl Config {
    /// The defaults, on Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            key: "socket.io".into(),
            requests_timeout: Duration::from_secs(5),
            max_message_size: 4 << 20,
            max_inbound_bytes: 64 << 20,
            max_publish_queue: 10_000,
            stream_name: "socket.io".into(),
            stream_max_len: 10_000,
            stream_read_count: 100,
            stream_block: Duration::from_secs(5),
            session_key_prefix: "sio:session:".into(),
            session_ttl: Duration::from_secs(120),
        }
    }

    /// Sets [`Config::stream_name`].
    pub fn stream_name(mut self, name: impl Into<String>) -> Self {
        self.stream_name = name.into();
        self
    }

    /// Sets [`Config::stream_max_len`].
    pub fn stream_max_len(mut self, entries: usize) -> Self {
        self.stream_max_len = entries;
        self
    }

    /// Sets [`Config::session_ttl`].
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Sets [`Config::key`].
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Sets [`Config::requests_timeout`].
    pub fn requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = timeout;
        self
    }

    /// Sets [`Config::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Config::max_inbound_bytes`].
    pub fn max_inbound_bytes(mut self, bytes: usize) -> Self {
        self.max_inbound_bytes = bytes;
        self
    }

    /// Sets [`Config::max_publish_queue`].
    pub fn max_publish_queue(mut self, messages: usize) -> Self {
        self.max_publish_queue = messages;
        self
    }
}

/// Why connecting to Redis failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What [`ClassicAdapter::on_status`] hooks are told.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Redis cannot be reached: broadcasts stay on this node until it is back.
    Disconnected(String),
    /// Redis is back and the subscriptions are restored.
    Reconnected,
}

macro_rules! adapter_type {
    ($name:ident, $mode:expr, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Give it to [`Builder::adapter`](hunchensocket_io::Builder::adapter); it makes the
        /// adapter of each namespace, all sharing its connections. Cheap to clone.
        #[derive(Clone)]
        pub struct $name {
            bus: Arc<Bus>,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("url", &self.bus.config.url)
                    .field("key", &self.bus.config.key)
                    .finish_non_exhaustive()
            }
        }

        impl $name {
            /// Connects to Redis.
            pub async fn connect(config: Config) -> Result<Self, Error> {
                Ok($name {
                    bus: Bus::connect(config, $mode).await?,
                })
            }

            /// Adds a hook told when Redis goes away and when it is back (besides the log
            /// lines). It runs on the adapter's tasks: keep it short.
            pub fn on_status(&self, hook: impl Fn(Status) + Send + Sync + 'static) {
                self.bus.on_status(Arc::new(hook));
            }

            /// Whether Redis is reachable, as far as this node knows.
            pub fn is_connected(&self) -> bool {
                self.bus.is_up()
            }

            /// How many messages from Redis were dropped so far: unreadable, over
            /// [`Config::max_message_size`], or past [`Config::max_inbound_bytes`] waiting.
            pub fn dropped_messages(&self) -> u64 {
                self.bus.dropped()
            }
        }

        impl AdapterFactory for $name {
            fn create(&self, nsp: &str, local: Weak<dyn Local>) -> Arc<dyn Adapter> {
                NsAdapter::new(self.bus.clone(), nsp, local)
            }
        }
    };
}

adapter_type!(
    ClassicAdapter,
    Mode::Classic,
    "The classic adapter: Redis pub/sub, as `createAdapter` of `@socket.io/redis-adapter`."
);
adapter_type!(
    ShardedAdapter,
    Mode::Sharded,
    "The sharded adapter: sharded pub/sub on a Redis 7 Cluster, as `createShardedAdapter` of `@socket.io/redis-adapter`."
);
adapter_type!(
    StreamsAdapter,
    Mode::Streams,
    "The Redis Streams adapter, as `createAdapter` of `@socket.io/redis-streams-adapter` 0.3: broadcasts go through a stream every node reads, so a client that drops on one node recovers on any other (connection state recovery: sessions kept in Redis with `SET … PX`, missed packets read back with `XRANGE`)."
);
