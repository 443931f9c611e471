//! `chat --listen ADDR [--client-js PATH] [--redis URL]` (default `127.0.0.1:3000`): a browser
//! chat on Socket.IO. Open `http://ADDR/` in a few tabs.
//!
//! With `--redis URL`, several chat processes share one Redis (`hunchensocket-redis`'s classic
//! adapter): messages, typing and presence cross between pages on different processes, and a
//! message stored by one process is added to the history of the others.
//!
//! The page (`examples/chat/`, built into the binary) is served at `/`, `/chat.css` and
//! `/chat.js`; Socket.IO at `/socket.io/`, with the bundled JavaScript client at
//! `/socket.io/client.js`. `--client-js PATH` serves the file at PATH there instead (the official
//! `socket.io.esm.min.js`, say, to compare clients).
//!
//! A page that loses its connection and comes back within two minutes keeps its socket, its
//! rooms, and gets the messages sent meanwhile (connection state recovery; one process only).
//!
//! Everything else is in memory. Events from the page, each answered by an ack (`{ "error": .. }`
//! when refused):
//!
//! - on connect, `auth: { name }` names the user (a guest name when missing or invalid); the
//!   server emits `welcome` `{ id, name }`.
//! - `join` room → `{ room, members, history }`: the last 50 messages of the room.
//! - `leave` room → `{ room }`.
//! - `nick` name → `{ name }`.
//! - `message` `{ room, text }` → `{ id, time }`, the stored message's id and time (the page's
//!   delivery tick); the others in the room get `message` `{ id, room, from, from_id, text, time }`.
//! - `typing` room (no ack): the others in the room get `typing` `{ room, id, name }`.
//!
//! Whenever who is in a room changes (join, leave, disconnect, nick change) its members get
//! `presence` `{ room, members: [{ id, name }] }`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hunchensocket_core::{Body, Server, text_response};
use hunchensocket_examples::{Args, bind, shutdown_signal};
use hunchensocket_io::adapter::Recovery;
use hunchensocket_io::{AckSender, DisconnectReason, Socket, SocketId, SocketIo};
use hunchensocket_redis::{ClassicAdapter, Config};
use serde::{Deserialize, Serialize};
use serde_json::json;

const USAGE: &str = "usage: chat [--listen ADDR] [--client-js PATH] [--redis URL]";

const INDEX_HTML: &str = include_str!("../../chat/index.html");
const CHAT_CSS: &str = include_str!("../../chat/chat.css");
const CHAT_JS: &str = include_str!("../../chat/chat.js");

/// Longest name, in characters.
const MAX_NAME: usize = 24;
/// Longest room name, in characters.
const MAX_ROOM: usize = 32;
/// Longest message, in characters.
const MAX_TEXT: usize = 1000;
/// Messages kept per room, replayed on join.
const HISTORY: usize = 50;
/// Rooms one user may be in at once.
const MAX_ROOMS_PER_USER: usize = 16;
/// Rooms the server keeps at once (a room goes when it has no members and no history).
const MAX_ROOMS: usize = 1000;

/// A stored message, as the page gets it (and other chat processes).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Message {
    id: u64,
    room: String,
    from: String,
    from_id: String,
    text: String,
    /// Milliseconds since the Unix epoch.
    time: u64,
}

/// One member of a room, as the page gets it.
#[derive(Debug, Serialize)]
struct Member<'a> {
    id: &'a str,
    name: &'a str,
}

/// What the page sends with `message`.
#[derive(Debug, Deserialize)]
struct Outgoing {
    room: String,
    text: String,
}

#[derive(Debug, Default)]
struct Room {
    /// Socket id → name.
    members: BTreeMap<SocketId, String>,
    history: VecDeque<Message>,
}

#[derive(Debug)]
struct User {
    name: String,
    rooms: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<String, Room>,
    users: HashMap<SocketId, User>,
    next_id: u64,
}

/// The chat: its state, and the server to broadcast on.
struct Chat {
    io: SocketIo,
    state: Mutex<State>,
    /// Whether other chat processes share the rooms (over Redis).
    clustered: bool,
    /// With other processes: presence updates of this one go out in turn.
    presence_turn: Arc<tokio::sync::Mutex<()>>,
    /// Low bits of this process's message ids, so that processes do not give the same ids.
    node_tag: u64,
}

/// A refusal, acked to the page as `{ "error": .. }`.
type Refusal = &'static str;

impl Chat {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells everyone in `room` who is there. Called with the state locked, so that presence
    /// updates reach every member in the order the changes happened.
    fn presence(&self, state: &State, room: &str) {
        if self.clustered {
            // The members are on every process: ask them all, then tell the room.
            let (io, room, turn) = (
                self.io.clone(),
                room.to_string(),
                self.presence_turn.clone(),
            );
            tokio::spawn(async move {
                let _turn = turn.lock().await;
                let found = io
                    .to(room.as_str())
                    .fetch_sockets()
                    .await
                    .unwrap_or_else(|partial| partial.partial);
                let mut members: Vec<(String, String)> = found
                    .iter()
                    .map(|s| {
                        let name = s.data()["name"].as_str().unwrap_or("?").to_string();
                        (s.id().to_string(), name)
                    })
                    .collect();
                members.sort();
                let members: Vec<Member<'_>> = members
                    .iter()
                    .map(|(id, name)| Member { id, name })
                    .collect();
                let _ = io
                    .to(room.as_str())
                    .emit("presence", &json!({ "room": room, "members": members }));
            });
            return;
        }
        let Some(r) = state.rooms.get(room) else {
            return;
        };
        let members: Vec<Member<'_>> = r
            .members
            .iter()
            .map(|(id, name)| Member { id, name })
            .collect();
        let _ = self
            .io
            .to(room)
            .emit("presence", &json!({ "room": room, "members": members }));
    }

    fn connect(self: &Arc<Self>, socket: &Socket) {
        let name = socket
            .auth()
            .get("name")
            .and_then(|n| n.as_str())
            .and_then(|n| clean_name(n).ok())
            .unwrap_or_else(|| guest_name(socket.id()));
        socket.set_data(json!({ "name": name }));
        // A socket recovered after a drop is still in its rooms: so is the user.
        let rooms: BTreeSet<String> = if socket.recovered() {
            socket
                .rooms()
                .into_iter()
                .filter(|r| **r != **socket.id())
                .collect()
        } else {
            BTreeSet::new()
        };
        let mut guard = self.state();
        let state = &mut *guard;
        for room in &rooms {
            let r = state.rooms.entry(room.clone()).or_default();
            r.members.insert(socket.id().clone(), name.clone());
        }
        state.users.insert(
            socket.id().clone(),
            User {
                name: name.clone(),
                rooms: rooms.clone(),
            },
        );
        for room in &rooms {
            self.presence(state, room);
        }
        drop(guard);
        let _ = socket.emit("welcome", &json!({ "id": &**socket.id(), "name": name }));
    }

    fn join(&self, socket: &Socket, room: &str) -> Result<serde_json::Value, Refusal> {
        let room = clean_room(room)?;
        let mut guard = self.state();
        let state = &mut *guard;
        let user = state.users.get_mut(socket.id()).ok_or("not connected")?;
        if !user.rooms.contains(&room) && user.rooms.len() >= MAX_ROOMS_PER_USER {
            return Err("in too many rooms already");
        }
        if !state.rooms.contains_key(&room) && state.rooms.len() >= MAX_ROOMS {
            return Err("too many rooms on this server");
        }
        user.rooms.insert(room.clone());
        let r = state.rooms.entry(room.clone()).or_default();
        r.members.insert(socket.id().clone(), user.name.clone());
        let answer = json!({
            "room": room,
            "members": r.members.iter().map(|(id, name)| Member { id, name }).collect::<Vec<_>>(),
            "history": r.history,
        });
        socket.join(room.as_str());
        self.presence(state, &room);
        Ok(answer)
    }

    fn leave(&self, socket: &Socket, room: &str) -> Result<serde_json::Value, Refusal> {
        let room = clean_room(room)?;
        let mut state = self.state();
        let user = state.users.get_mut(socket.id()).ok_or("not connected")?;
        if !user.rooms.remove(&room) {
            return Err("not in that room");
        }
        socket.leave(&room);
        Self::remove_member(&mut state, &room, socket.id());
        self.presence(&state, &room);
        Ok(json!({ "room": room }))
    }

    /// Takes `id` out of `room`, and forgets the room when nothing is left of it.
    fn remove_member(state: &mut State, room: &str, id: &SocketId) {
        if let Some(r) = state.rooms.get_mut(room) {
            r.members.remove(id);
            if r.members.is_empty() && r.history.is_empty() {
                state.rooms.remove(room);
            }
        }
    }

    fn nick(&self, socket: &Socket, name: &str) -> Result<serde_json::Value, Refusal> {
        let name = clean_name(name)?;
        let mut guard = self.state();
        let state = &mut *guard;
        let user = state.users.get_mut(socket.id()).ok_or("not connected")?;
        user.name = name.clone();
        socket.set_data(json!({ "name": name }));
        for room in &user.rooms {
            if let Some(r) = state.rooms.get_mut(room) {
                r.members.insert(socket.id().clone(), name.clone());
            }
        }
        for room in &state.users[socket.id()].rooms {
            self.presence(state, room);
        }
        Ok(json!({ "name": name }))
    }

    fn message(&self, socket: &Socket, out: Outgoing) -> Result<serde_json::Value, Refusal> {
        let room = clean_room(&out.room)?;
        let text = clean_text(&out.text)?;
        let mut guard = self.state();
        let state = &mut *guard;
        let user = state.users.get(socket.id()).ok_or("not connected")?;
        let r = match state.rooms.get_mut(&room) {
            Some(r) if user.rooms.contains(&room) => r,
            _ => return Err("not in that room"),
        };
        state.next_id += 1;
        let message = Message {
            id: state.next_id << 10 | self.node_tag,
            room: room.clone(),
            from: user.name.clone(),
            from_id: socket.id().to_string(),
            text,
            time: now_ms(),
        };
        if r.history.len() == HISTORY {
            r.history.pop_front();
        }
        r.history.push_back(message.clone());
        let _ = socket.to(room.as_str()).emit("message", &message);
        if self.clustered {
            let _ = socket.namespace().server_side_emit("history", &message);
        }
        Ok(json!({ "id": message.id, "time": message.time }))
    }

    /// A message another chat process stored: into this one's history of the room too.
    fn remote_message(&self, message: Message) {
        let mut state = self.state();
        if !state.rooms.contains_key(&message.room) && state.rooms.len() >= MAX_ROOMS {
            return;
        }
        let r = state.rooms.entry(message.room.clone()).or_default();
        if r.history.len() == HISTORY {
            r.history.pop_front();
        }
        r.history.push_back(message);
    }

    fn typing(&self, socket: &Socket, room: &str) {
        let Ok(room) = clean_room(room) else {
            return;
        };
        let state = self.state();
        let Some(user) = state.users.get(socket.id()) else {
            return;
        };
        if user.rooms.contains(&room) {
            let _ = socket.to(room.as_str()).volatile().emit(
                "typing",
                &json!({ "room": room, "id": &**socket.id(), "name": user.name }),
            );
        }
    }

    fn disconnect(&self, socket: &Socket, reason: DisconnectReason) {
        let mut state = self.state();
        let Some(user) = state.users.remove(socket.id()) else {
            return;
        };
        tracing::debug!(name = %user.name, reason = reason.as_str(), "left");
        for room in &user.rooms {
            Self::remove_member(&mut state, room, socket.id());
            self.presence(&state, room);
        }
    }
}

/// Acks `result`: its value, or `{ "error": .. }`.
fn answer(ack: AckSender, result: Result<serde_json::Value, Refusal>) {
    let _ = match result {
        Ok(value) => ack.send(&value),
        Err(error) => ack.send(&json!({ "error": error })),
    };
}

/// A name: trimmed, 1 to [`MAX_NAME`] characters, no control characters.
fn clean_name(name: &str) -> Result<String, Refusal> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.chars().count() > MAX_NAME {
        return Err("the name is too long (24 characters at most)");
    }
    if name.chars().any(char::is_control) {
        return Err("the name has control characters");
    }
    Ok(name.to_string())
}

/// A room name: trimmed, a leading `#` dropped, lowercased; 1 to [`MAX_ROOM`] of `a-z`, `0-9`,
/// `-` and `_`.
fn clean_room(room: &str) -> Result<String, Refusal> {
    let room = room.trim();
    let room = room.strip_prefix('#').unwrap_or(room).to_lowercase();
    if room.is_empty() {
        return Err("the room name is empty");
    }
    if room.chars().count() > MAX_ROOM {
        return Err("the room name is too long (32 characters at most)");
    }
    if !room
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err("a room name has only letters a-z, digits, - and _");
    }
    Ok(room)
}

/// A message: trimmed, 1 to [`MAX_TEXT`] characters, no control characters but newlines and tabs.
fn clean_text(text: &str) -> Result<String, Refusal> {
    let text: String = text
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Err("the message is empty");
    }
    if text.chars().count() > MAX_TEXT {
        return Err("the message is too long (1000 characters at most)");
    }
    Ok(text.to_string())
}

fn guest_name(id: &str) -> String {
    let tail: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect();
    format!("guest-{tail}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn socket_io(serve_client: bool, redis: Option<ClassicAdapter>) -> SocketIo {
    let clustered = redis.is_some();
    let mut builder = SocketIo::builder().serve_client(serve_client);
    match redis {
        Some(adapter) => builder = builder.adapter(adapter),
        // One process: a page that drops and comes back within two minutes keeps its socket
        // and gets the messages it missed (over Redis, the classic adapter keeps no packets).
        None => {
            builder =
                builder.connection_state_recovery(Recovery::new(Duration::from_secs(120), true))
        }
    }
    let io = builder.build();
    let chat = Arc::new(Chat {
        io: io.clone(),
        state: Mutex::new(State::default()),
        clustered,
        presence_turn: Arc::default(),
        node_tag: now_ms() % 1024,
    });
    let remote = chat.clone();
    io.ns("/", move |socket: Socket| {
        let chat = chat.clone();
        async move {
            let c = chat.clone();
            socket.on("join", move |s: Socket, room: String, ack: AckSender| {
                let c = c.clone();
                async move { answer(ack, c.join(&s, &room)) }
            });
            let c = chat.clone();
            socket.on("leave", move |s: Socket, room: String, ack: AckSender| {
                let c = c.clone();
                async move { answer(ack, c.leave(&s, &room)) }
            });
            let c = chat.clone();
            socket.on("nick", move |s: Socket, name: String, ack: AckSender| {
                let c = c.clone();
                async move { answer(ack, c.nick(&s, &name)) }
            });
            let c = chat.clone();
            socket.on(
                "message",
                move |s: Socket, out: Outgoing, ack: AckSender| {
                    let c = c.clone();
                    async move { answer(ack, c.message(&s, out)) }
                },
            );
            let c = chat.clone();
            socket.on("typing", move |s: Socket, room: String| {
                let c = c.clone();
                async move { c.typing(&s, &room) }
            });
            let c = chat.clone();
            socket.on_disconnect(move |s: Socket, reason| async move { c.disconnect(&s, reason) });
            chat.connect(&socket);
        }
    })
    .on_server_event("history", move |args, _ack| {
        let message = args
            .into_iter()
            .next()
            .map(serde_json::from_value::<Message>);
        if let Some(Ok(message)) = message {
            remote.remote_message(message);
        }
    });
    io
}

/// A `200` with `body`, or `304` and no body when the copy the browser has is current.
fn asset(
    req: &Request<hyper::body::Incoming>,
    content_type: &'static str,
    body: Bytes,
) -> Response<Body> {
    // A weak ETag from the length and an FNV-1a hash: enough to spare re-downloads.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in &body {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let etag = format!("W/\"{:x}-{hash:016x}\"", body.len());
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let body = if fresh || req.method() == Method::HEAD {
        Bytes::new()
    } else {
        body
    };
    let mut res = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    if fresh {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    if content_type.starts_with("text/html") {
        // Defense in depth: the page inserts user text as text only, and loads nothing foreign.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                 img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        );
    }
    res
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse(USAGE);
    hunchensocket_examples::init_logs();
    // `--client-js PATH`: that file instead of the bundled client, read once at start.
    let client_js = args.get("client-js").map(|path| match std::fs::read(path) {
        Ok(js) => Bytes::from(js),
        Err(e) => {
            eprintln!("chat: --client-js {path}: {e}");
            std::process::exit(2);
        }
    });
    let redis = match args.get("redis") {
        None => None,
        Some(url) => match ClassicAdapter::connect(Config::new(url)).await {
            Ok(adapter) => {
                adapter.on_status(|status| eprintln!("chat: redis {status:?}"));
                Some(adapter)
            }
            Err(e) => {
                eprintln!("chat: --redis {url}: {e}");
                std::process::exit(2);
            }
        },
    };
    let io = socket_io(client_js.is_none(), redis);
    if let Err(e) = io.ready().await {
        eprintln!("chat: redis subscriptions: {e}");
        std::process::exit(1);
    }
    let shutdown_io = io.clone();
    let server = Server::new().fallback(move |req: Request<hyper::body::Incoming>| {
        let (io, client_js) = (io.clone(), client_js.clone());
        async move {
            if req.method() != Method::GET && req.method() != Method::HEAD {
                if io.matches(&req) {
                    return io.handle(req).await;
                }
                return text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            }
            match (req.uri().path(), client_js) {
                ("/" | "/index.html", _) => asset(
                    &req,
                    "text/html; charset=utf-8",
                    Bytes::from_static(INDEX_HTML.as_bytes()),
                ),
                ("/chat.css", _) => asset(
                    &req,
                    "text/css; charset=utf-8",
                    Bytes::from_static(CHAT_CSS.as_bytes()),
                ),
                ("/chat.js", _) => asset(
                    &req,
                    "text/javascript; charset=utf-8",
                    Bytes::from_static(CHAT_JS.as_bytes()),
                ),
                ("/socket.io/client.js", Some(js)) => {
                    asset(&req, "text/javascript; charset=utf-8", js)
                }
                _ if io.matches(&req) => io.handle(req).await,
                _ => text_response(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
    });
    let listener = bind(args.get_or("listen", "127.0.0.1:3000")).await?;
    println!("open http://{}/", listener.local_addr()?);
    server
        .serve_with_shutdown(listener, async move {
            shutdown_signal().await;
            println!("shutting down");
            shutdown_io.close().await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(clean_name("  ann  "), Ok("ann".to_string()));
        assert!(clean_name("   ").is_err());
        assert!(clean_name(&"x".repeat(25)).is_err());
        assert_eq!(
            clean_name(&"é".repeat(24)).map(|n| n.chars().count()),
            Ok(24)
        );
        assert!(clean_name("a\u{0}b").is_err());
        assert_eq!(
            clean_name("<b>x</b>"),
            Ok("<b>x</b>".to_string()),
            "text, shown as text"
        );
    }

    #[test]
    fn rooms() {
        assert_eq!(clean_room(" #Lobby "), Ok("lobby".to_string()));
        assert_eq!(
            clean_room("rust_2024-chat"),
            Ok("rust_2024-chat".to_string())
        );
        assert!(clean_room("").is_err());
        assert!(clean_room("a b").is_err());
        assert!(clean_room("<script>").is_err());
        assert!(clean_room(&"r".repeat(33)).is_err());
    }

    #[test]
    fn texts() {
        assert_eq!(
            clean_text("  hi\n there \u{7} "),
            Ok("hi\n there".to_string())
        );
        assert!(clean_text(" \n ").is_err());
        assert!(clean_text(&"x".repeat(1001)).is_err());
        assert!(clean_text(&"x".repeat(1000)).is_ok());
    }

    #[test]
    fn guests() {
        assert_eq!(guest_name("a-B_c1d2"), "guest-aBc1");
    }
}
