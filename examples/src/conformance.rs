//! The server the official Engine.IO and Socket.IO protocol test suites expect (see the
//! `conformance` binary), as a library for the binary and the project's own tests.
//!
//! - `/engine.io/`: a bare Engine.IO server that echoes every message.
//! - `/socket.io/`: a Socket.IO server. Namespaces `/` and `/custom` emit `auth` with the
//!   handshake's auth data on connect. On `/`: `message` → `message-back` with the same
//!   arguments; `message-with-ack` → acked with the same arguments; `server-ack` with
//!   arguments A → the server emits `server-ack` with A asking for an ack (1000 ms) and, when
//!   acked with B, emits `server-ack-result` with B.
//! - The cluster events on `/` (see [`cluster_events`]), which a fleet of these servers on
//!   one Redis answers alike, Node's among them.
//!
//! Both: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1 000 000, CORS for any origin;
//! Socket.IO connectTimeout 1000 ms.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use hunchensocket_core::Server;
use hunchensocket_io::adapter::{Adapter, AdapterFactory, InMemory, Local, Recovery};
use hunchensocket_io::engine::{
    CloseReason, Engine, EngineConfig, Handler, HandshakeInfo, Payload, Session,
};
use hunchensocket_io::{AckSender, Cors, CorsOrigins, Event, RawArgs, Socket, SocketIo};
use serde_json::Value;

/// The bare Engine.IO echo served at `/engine.io/`.
#[derive(Debug)]
pub struct Echo;

impl Handler for Echo {
    type Data = ();
    fn data(&self, _info: &HandshakeInfo) {}
    fn on_open(&self, _session: &Arc<Session<()>>) {}
    fn on_message(&self, session: &Arc<Session<()>>, payload: Payload) {
        let _ = session.send(payload, false);
    }
    fn on_close(&self, _session: &Arc<Session<()>>, _reason: CloseReason) {}
}

fn any_origin() -> Cors {
    Cors {
        origins: CorsOrigins::Any,
        credentials: false,
    }
}

fn engine_config(path: &str) -> EngineConfig {
    EngineConfig::default()
        .with_path(path)
        .with_heartbeat(Duration::from_millis(300), Duration::from_millis(200))
        .with_max_payload(1_000_000)
        .with_cors(any_origin())
}

async fn on_connect(socket: Socket) {
    let _ = socket.emit("auth", socket.auth());
}

/// How a conformance server is run.
pub struct Options {
    /// The adapter of its namespaces (in-memory by default; Redis for a fleet).
    pub adapter: Arc<dyn AdapterFactory>,
    /// The node name `whoami` and the server-side `ping` answer.
    pub node: String,
    /// Connection state recovery, with this maximum disconnection duration (middleware
    /// skipped for recovered sockets).
    pub recovery: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            adapter: Arc::new(InMemory),
            node: "hunchensocket".into(),
            recovery: None,
        }
    }
}

/// An adapter factory shared behind an `Arc`.
struct Shared(Arc<dyn AdapterFactory>);

impl AdapterFactory for Shared {
    fn create(&self, nsp: &str, local: Weak<dyn Local>) -> Arc<dyn Adapter> {
        self.0.create(nsp, local)
    }
}

fn socket_io(options: &Options) -> SocketIo {
    let io = SocketIo::builder()
        .adapter(Shared(options.adapter.clone()))
        .config({
            let mut config = hunchensocket_io::IoConfig::default();
            config.engine = engine_config("/socket.io/");
            config.connect_timeout = Duration::from_millis(1000);
            config.recovery = options.recovery.map(|d| Recovery::new(d, true));
            config
        })
        .build();
    let node = options.node.clone();
    io.ns("/", move |socket: Socket| {
        let node = node.clone();
        async move {
            socket.on("message", |socket: Socket, event: Event| async move {
                let _ = socket.emit("message-back", &event.raw_args());
            });
            socket.on(
                "message-with-ack",
                |_socket: Socket, event: Event| async move {
                    let (args, ack) = event.split();
                    let _ = ack.send(&args);
                },
            );
            socket.on("server-ack", |socket: Socket, event: Event| async move {
                let answer = socket.emit_with_ack_raw(
                    "server-ack",
                    &event.raw_args(),
                    Duration::from_millis(1000),
                );
                if let Ok(b) = answer.await {
                    let _ = socket.emit("server-ack-result", &b);
                }
            });
            cluster_events(&socket, &node);
            on_connect(socket).await;
        }
    });
    io.ns("/custom", on_connect);
    if let Some(ns) = io.of("/") {
        let name = options.node.clone();
        ns.on_server_event("ping", move |_args, ack| {
            let _ = ack.send(&name);
        });
    }
    io
}

/// A room name and what follows it: the event name and its arguments.
fn split_room_event(event: Event) -> Option<(String, String, RawArgs, AckSender)> {
    let (mut raw, ack) = event.split();
    if raw.args.len() < 2 {
        return None;
    }
    let mut head = raw.args.drain(..2);
    let room = head.next().and_then(|v| v.as_str().map(str::to_string))?;
    let name = head.next().and_then(|v| v.as_str().map(str::to_string))?;
    drop(head);
    Some((room, name, raw, ack))
}

fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    values
}

/// The events a fleet answers on `/` (each acked; "ack X" means the ack gets X):
///
/// - `whoami` → ack the node name;
/// - `join` room → join, ack `"ok"`;
/// - `to-room` (room, event, ...args) → `io.to(room).emit(event, ...args)`, ack `"ok"`;
/// - `others-in-room` (room, event, ...args) → `socket.to(room).emit(event, ...args)` (not
///   the sender), ack `"ok"`;
/// - `fetch-sockets` room → ack `[{id, rooms}]` of `io.to(room).fetch_sockets()`, sorted by id;
/// - `sockets-join` (room, new), `sockets-leave` (room, old), `disconnect-room` room → the
///   cluster-wide operation, ack `"ok"`;
/// - `server-side-emit` → ack the sorted answers of the server-side `ping` (1 s), which every
///   node answers with its name;
/// - `broadcast-with-ack` room → `io.to(room).timeout(1 s).emit_with_ack("question")`, ack
///   the answers, sorted;
/// - `broadcast-with-binary-ack` room → the same with `binary-question`, which clients answer
///   with binary (their id's bytes): ack each answer's bytes as text, sorted (`{"error": ...}`
///   for an answer that is not binary, or none);
/// - `all-rooms` → ack the sorted rooms of every node;
/// - `emit-all` (event, ...args) → `io.emit(event, ...args)`, ack `"ok"`;
/// - `my-state` → ack `{ id, rooms, recovered }` of the asking socket (for recovery tests);
/// - `cut-me` → `socket.cut_connection()`: the connection is dropped without a goodbye (no
///   ack);
/// - `ack-on-second-try` key → no ack the first time `key` comes, then acked with how many
///   times it came (for clients' retries).
pub fn cluster_events(socket: &Socket, node: &str) {
    let node = node.to_string();
    socket.on("whoami", move |_socket: Socket, _: (), ack: AckSender| {
        let _ = ack.send(&node);
        async {}
    });
    socket.on(
        "join",
        |socket: Socket, room: String, ack: AckSender| async move {
            socket.join(room);
            let _ = ack.send("ok");
        },
    );
    socket.on("to-room", |socket: Socket, event: Event| async move {
        if let Some((room, name, args, ack)) = split_room_event(event) {
            let ns = socket.namespace();
            let _ = ns.to(room).emit(&name, &args);
            let _ = ack.send("ok");
        }
    });
    socket.on("emit-all", |socket: Socket, event: Event| async move {
        let (mut raw, ack) = event.split();
        if let Some(Value::String(name)) = (!raw.args.is_empty()).then(|| raw.args.remove(0)) {
            let _ = socket.namespace().emit(&name, &raw);
            let _ = ack.send("ok");
        }
    });
    socket.on(
        "ack-on-second-try",
        |_socket: Socket, key: String, ack: AckSender| async move {
            // The first delivery of `key` goes unanswered; later ones are acked with the count.
            static DELIVERIES: std::sync::Mutex<Option<std::collections::HashMap<String, u64>>> =
                std::sync::Mutex::new(None);
            let n = {
                let mut map = DELIVERIES.lock().unwrap_or_else(|p| p.into_inner());
                let n = map
                    .get_or_insert_with(Default::default)
                    .entry(key)
                    .or_insert(0);
                *n += 1;
                *n
            };
            if n > 1 {
                let _ = ack.send(&n);
            }
        },
    );
    socket.on(
        "my-state",
        |socket: Socket, _: (), ack: AckSender| async move {
            let mut rooms = socket.rooms();
            rooms.sort();
            let state = serde_json::json!({
                "id": &**socket.id(),
                "rooms": rooms,
                "recovered": socket.recovered(),
            });
            let _ = ack.send(&state);
        },
    );
    // No ack: the connection is gone before one could be sent.
    socket.on("cut-me", |socket: Socket, _: Event| async move {
        socket.cut_connection();
    });
    socket.on(
        "others-in-room",
        |socket: Socket, event: Event| async move {
            if let Some((room, name, args, ack)) = split_room_event(event) {
                let _ = socket.to(room).emit(&name, &args);
                let _ = ack.send("ok");
            }
        },
    );
    socket.on(
        "fetch-sockets",
        |socket: Socket, room: String, ack: AckSender| async move {
            let found = match socket.namespace().to(room).fetch_sockets().await {
                Ok(found) => found,
                Err(partial) => {
                    tracing::warn!("fetch-sockets: {}", partial.error);
                    partial.partial
                }
            };
            let mut out: Vec<Value> = found
                .iter()
                .map(|s| {
                    let mut rooms = s.rooms().to_vec();
                    rooms.sort();
                    serde_json::json!({"id": &**s.id(), "rooms": rooms})
                })
                .collect();
            out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
            let _ = ack.send(&out);
        },
    );
    socket.on(
        "sockets-join",
        |socket: Socket, (room, new): (String, String), ack: AckSender| async move {
            socket.namespace().to(room).join(new);
            let _ = ack.send("ok");
        },
    );
    socket.on(
        "sockets-leave",
        |socket: Socket, (room, old): (String, String), ack: AckSender| async move {
            socket.namespace().to(room).leave(old);
            let _ = ack.send("ok");
        },
    );
    socket.on(
        "disconnect-room",
        |socket: Socket, room: String, ack: AckSender| async move {
            // Acked first: the asking socket may be among those disconnected.
            let _ = ack.send("ok");
            socket.namespace().to(room).disconnect_with(true);
        },
    );
    socket.on(
        "server-side-emit",
        |socket: Socket, _: (), ack: AckSender| async move {
            let answers = socket
                .namespace()
                .server_side_emit_with_ack("ping", &(), Duration::from_secs(1))
                .await
                .unwrap_or_else(|partial| partial.partial);
            let _ = ack.send(&sorted(answers));
        },
    );
    socket.on(
        "broadcast-with-ack",
        |socket: Socket, room: String, ack: AckSender| async move {
            let answers = socket
                .namespace()
                .to(room)
                .timeout(Duration::from_secs(1))
                .emit_with_ack::<_, Value>("question", &())
                .await;
            let answers: Vec<Value> = answers.into_iter().filter_map(Result::ok).collect();
            let _ = ack.send(&sorted(answers));
        },
    );
    socket.on(
        "broadcast-with-binary-ack",
        |socket: Socket, room: String, ack: AckSender| async move {
            let answers = socket
                .namespace()
                .to(room)
                .timeout(Duration::from_secs(1))
                .emit_with_ack::<_, Bytes>("binary-question", &())
                .await;
            let answers: Vec<Value> = answers
                .into_iter()
                .map(|answer| match answer {
                    Ok(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
                    Err(e) => serde_json::json!({"error": e.to_string()}),
                })
                .collect();
            let _ = ack.send(&sorted(answers));
        },
    );
    socket.on(
        "all-rooms",
        |socket: Socket, _: (), ack: AckSender| async move {
            let rooms = socket
                .namespace()
                .all_rooms()
                .await
                .unwrap_or_else(|partial| partial.partial);
            let _ = ack.send(&rooms);
        },
    );
}

/// The conformance server: serve it on a listener; close the [`SocketIo`] on shutdown.
pub fn server() -> (Server, SocketIo) {
    server_with(&Options::default())
}

/// The conformance server with other options (an adapter for a fleet, a node name).
pub fn server_with(options: &Options) -> (Server, SocketIo) {
    let parts = parts(options);
    (parts.server, parts.io)
}

/// The conformance server and what it serves, for tests that look inside.
#[derive(Debug)]
pub struct Parts {
    /// The server to run.
    pub server: Server,
    /// The Socket.IO server at `/socket.io/` (close it on shutdown).
    pub io: SocketIo,
    /// The bare Engine.IO echo at `/engine.io/`.
    pub echo: Engine<Echo>,
}

/// The conformance server with `options`, in parts.
pub fn parts(options: &Options) -> Parts {
    let engine = Engine::new(engine_config("/engine.io/"), Echo);
    let echo = engine.clone();
    let io = socket_io(options);
    let routed = io.clone();
    let server = Server::new().fallback(move |req: http::Request<hyper::body::Incoming>| {
        let (engine, io) = (engine.clone(), routed.clone());
        async move {
            if engine.matches(&req) {
                engine.handle(req).await
            } else if io.matches(&req) {
                io.handle(req).await
            } else {
                hunchensocket_core::text_response(http::StatusCode::NOT_FOUND, "not found\n")
            }
        }
    });
    Parts { server, io, echo }
}
