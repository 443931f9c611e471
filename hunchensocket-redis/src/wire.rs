//! The messages nodes exchange, and their two encodings on Redis (sans-io): the classic
//! adapter's (`@socket.io/redis-adapter`'s `createAdapter`: msgpack broadcasts on the
//! namespace and room channels, JSON requests and responses on their own channels) and the
//! cluster adapter's (`createShardedAdapter`: one envelope `{uid, nsp, type, data}`, JSON unless
//! it carries binary).

use bytes::Bytes;
use hunchensocket_io::adapter::{BroadcastOptions, BroadcastPacket, SocketInfo};
use serde_json::{Map, Value, json};

use crate::msgpack;

/// Who a message from another node is for: rooms, except, and the flags as they came.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Opts {
    pub(crate) rooms: Vec<String>,
    pub(crate) except: Vec<String>,
    pub(crate) flags: Map<String, Value>,
}

impl Opts {
    pub(crate) fn from_options(opts: &BroadcastOptions) -> Opts {
        let mut flags = Map::new();
        if opts.volatile {
            flags.insert("volatile".into(), Value::Bool(true));
        }
        if let Some(t) = opts.timeout {
            flags.insert("timeout".into(), Value::from(t.as_millis() as u64));
        }
        Opts {
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            flags,
        }
    }

    pub(crate) fn to_options(&self) -> BroadcastOptions {
        let mut opts = BroadcastOptions::to(self.rooms.iter().cloned());
        opts.except = self.except.clone();
        opts.volatile = self.flags.get("volatile").is_some_and(truthy);
        opts
    }

    /// `{rooms, except, flags}` (with_flags) or `{rooms, except}`.
    fn json(&self, with_flags: bool) -> Value {
        let mut m = Map::new();
        m.insert("rooms".into(), json!(self.rooms));
        m.insert("except".into(), json!(self.except));
        if with_flags {
            m.insert("flags".into(), Value::Object(self.flags.clone()));
        }
        Value::Object(m)
    }

    fn parse(v: Option<&Value>) -> Result<Opts, String> {
        let Some(Value::Object(m)) = v else {
            return Err("opts is not an object".into());
        };
        Ok(Opts {
            rooms: rooms(m.get("rooms"))?,
            except: rooms(m.get("except"))?,
            flags: match m.get("flags") {
                Some(Value::Object(f)) => f.clone(),
                _ => Map::new(),
            },
        })
    }
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

/// A list of room names; numbers are accepted as JavaScript turns them into names.
fn rooms(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| match r {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("room is not a string: {other}")),
            })
            .collect(),
        Some(other) => Err(format!("rooms is not an array: {other}")),
    }
}

/// What one node tells the others, or answers one of them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Body {
    Broadcast {
        packet: BroadcastPacket,
        opts: Opts,
        request_id: Option<String>,
    },
    Join {
        opts: Opts,
        rooms: Vec<String>,
    },
    Leave {
        opts: Opts,
        rooms: Vec<String>,
    },
    Disconnect {
        opts: Opts,
        close: bool,
    },
    Fetch {
        request_id: String,
        opts: Opts,
    },
    AllRooms {
        request_id: String,
    },
    Sockets {
        request_id: String,
        rooms: Vec<String>,
    },
    ServerEmit {
        data: Vec<Value>,
        request_id: Option<String>,
    },
    ClientCount {
        request_id: String,
        count: u64,
    },
    Ack {
        request_id: String,
        value: Value,
    },
    FetchReply {
        request_id: String,
        sockets: Vec<SocketInfo>,
    },
    RoomsReply {
        request_id: String,
        rooms: Vec<String>,
    },
    SocketsReply {
        request_id: String,
        sids: Vec<String>,
    },
    ServerEmitReply {
        request_id: String,
        value: Value,
    },
    /// Heartbeats and close notices of the cluster adapter, which ours need not act on.
    Ignored,
}

impl Body {
    /// The request a response answers.
    pub(crate) fn reply_to(&self) -> Option<&str> {
        match self {
            Body::ClientCount { request_id, .. }
            | Body::Ack { request_id, .. }
            | Body::FetchReply { request_id, .. }
            | Body::RoomsReply { request_id, .. }
            | Body::SocketsReply { request_id, .. }
            | Body::ServerEmitReply { request_id, .. } => Some(request_id),
            _ => None,
        }
    }
}

/// A message with its sender (`None` from the emitter's join/leave/disconnect) and namespace.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Message {
    pub(crate) uid: Option<String>,
    pub(crate) nsp: String,
    pub(crate) body: Body,
}

/// Which kind of channel a message came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Broadcasts (classic: the namespace channel or a room channel).
    Broadcast,
    /// Requests (classic request channel; sharded: namespace or room channel).
    Request,
    /// Responses (classic response channels; sharded: this node's channel).
    Response,
}

fn packet_json(p: &BroadcastPacket, with_nsp: bool) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), Value::from(2));
    m.insert("data".into(), Value::Array(p.data.clone()));
    if with_nsp {
        m.insert("nsp".into(), Value::String(p.nsp.clone()));
    }
    Value::Object(m)
}

fn parse_packet(
    v: Option<&Value>,
    nsp: &str,
    attachments: Vec<Bytes>,
) -> Result<BroadcastPacket, String> {
    let Some(Value::Object(m)) = v else {
        return Err("packet is not an object".into());
    };
    match m.get("type") {
        Some(t) if t == 2 || t == 5 => {}
        other => return Err(format!("packet type {other:?} is not an event")),
    }
    let Some(Value::Array(data)) = m.get("data") else {
        return Err("packet data is not an array".into());
    };
    if !matches!(data.first(), Some(Value::String(_))) {
        return Err("event name is not a string".into());
    }
    Ok(BroadcastPacket::new(nsp, data.clone(), attachments))
}

fn string(m: &Map<String, Value>, key: &str) -> Result<String, String> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        other => Err(format!("{key} is not a string: {other:?}")),
    }
}

fn socket_infos(v: Option<&Value>) -> Result<Vec<SocketInfo>, String> {
    let Some(Value::Array(items)) = v else {
        return Err("sockets is not an array".into());
    };
    items
        .iter()
        .map(|s| {
            let Value::Object(m) = s else {
                return Err("socket is not an object".into());
            };
            Ok(SocketInfo::new(
                string(m, "id")?.into(),
                m.get("handshake").cloned().unwrap_or(Value::Null),
                rooms(m.get("rooms"))?,
                m.get("data").cloned().unwrap_or(Value::Null),
            ))
        })
        .collect()
}

fn socket_infos_json(sockets: &[SocketInfo]) -> Value {
    Value::Array(
        sockets
            .iter()
            .map(|s| {
                json!({"id": &*s.id, "handshake": s.handshake, "rooms": s.rooms, "data": s.data})
            })
            .collect(),
    )
}

/// Parses bytes that are JSON when they start with `{`, msgpack otherwise.
fn parse_any(bytes: &[u8]) -> Result<(Value, Vec<Bytes>), String> {
    if bytes.first() == Some(&b'{') {
        let v = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        Ok((v, Vec::new()))
    } else {
        let mut attachments = Vec::new();
        let v = msgpack::to_json(msgpack::decode(bytes)?, &mut attachments);
        Ok((v, attachments))
    }
}

/// The classic adapter's encoding.
pub(crate) mod classic {
    use super::*;

    /// The channels of one namespace.
    #[derive(Clone, Debug)]
    pub(crate) struct Channels {
        /// `{key}#{nsp}#`: broadcasts (and, with a room and `#`, room broadcasts).
        pub(crate) broadcast: String,
        /// `{key}-request#{nsp}#`.
        pub(crate) request: String,
        /// `{key}-response#{nsp}#`.
        pub(crate) response: String,
        /// `{key}-response#{nsp}#{uid}#`.
        pub(crate) own_response: String,
    }

    impl Channels {
        pub(crate) fn new(key: &str, nsp: &str, uid: &str) -> Self {
            Channels {
                broadcast: format!("{key}#{nsp}#"),
                request: format!("{key}-request#{nsp}#"),
                response: format!("{key}-response#{nsp}#"),
                own_response: format!("{key}-response#{nsp}#{uid}#"),
            }
        }

        /// The pattern that takes every broadcast of the namespace.
        pub(crate) fn pattern(&self) -> String {
            format!("{}*", self.broadcast)
        }
    }

    /// The channel and bytes of a message from node `uid`, or `None` for messages the classic
    /// adapter has no form for.
    pub(crate) fn encode(ch: &Channels, uid: &str, body: &Body) -> Option<(String, Vec<u8>)> {
        let json = |v: Value| v.to_string().into_bytes();
        Some(match body {
            Body::Broadcast {
                packet,
                opts,
                request_id: None,
            } => {
                let channel = match opts.rooms.as_slice() {
                    [room] => format!("{}{room}#", ch.broadcast),
                    _ => ch.broadcast.clone(),
                };
                let msg = json!([uid, packet_json(packet, true), opts.json(true)]);
                (
                    channel,
                    msgpack::encode(&msgpack::from_json(&msg, &packet.attachments)),
                )
            }
            Body::Broadcast {
                packet,
                opts,
                request_id: Some(id),
            } => {
                let msg = json!({"uid": uid, "requestId": id, "type": 7,
                    "packet": packet_json(packet, true), "opts": opts.json(true)});
                (
                    ch.request.clone(),
                    msgpack::encode(&msgpack::from_json(&msg, &packet.attachments)),
                )
            }
            Body::Join { opts, rooms } => (
                ch.request.clone(),
                json(json!({"uid": uid, "type": 2, "opts": opts.json(false), "rooms": rooms})),
            ),
            Body::Leave { opts, rooms } => (
                ch.request.clone(),
                json(json!({"uid": uid, "type": 3, "opts": opts.json(false), "rooms": rooms})),
            ),
            Body::Disconnect { opts, close } => (
                ch.request.clone(),
                json(json!({"uid": uid, "type": 4, "opts": opts.json(false), "close": close})),
            ),
            Body::Fetch { request_id, opts } => (
                ch.request.clone(),
                json(
                    json!({"uid": uid, "requestId": request_id, "type": 5, "opts": opts.json(false)}),
                ),
            ),
            Body::AllRooms { request_id } => (
                ch.request.clone(),
                json(json!({"uid": uid, "requestId": request_id, "type": 1})),
            ),
            Body::Sockets { request_id, rooms } => (
                ch.request.clone(),
                json(json!({"uid": uid, "requestId": request_id, "type": 0, "rooms": rooms})),
            ),
            Body::ServerEmit { data, request_id } => {
                let mut m = Map::new();
                m.insert("uid".into(), json!(uid));
                if let Some(id) = request_id {
                    m.insert("requestId".into(), json!(id));
                }
                m.insert("type".into(), json!(6));
                m.insert("data".into(), Value::Array(data.clone()));
                (ch.request.clone(), json(Value::Object(m)))
            }
            Body::ClientCount { request_id, count } => (
                ch.response.clone(),
                json(json!({"type": 8, "requestId": request_id, "clientCount": count})),
            ),
            Body::Ack { request_id, value } => {
                let msg = json!({"type": 9, "requestId": request_id, "packet": value});
                (
                    ch.response.clone(),
                    msgpack::encode(&msgpack::from_json(&msg, &[])),
                )
            }
            Body::FetchReply {
                request_id,
                sockets,
            } => (
                ch.response.clone(),
                json(json!({"requestId": request_id, "sockets": socket_infos_json(sockets)})),
            ),
            Body::RoomsReply { request_id, rooms } => (
                ch.response.clone(),
                json(json!({"requestId": request_id, "rooms": rooms})),
            ),
            Body::SocketsReply { request_id, sids } => (
                ch.response.clone(),
                json(json!({"requestId": request_id, "sockets": sids})),
            ),
            Body::ServerEmitReply { request_id, value } => (
                ch.response.clone(),
                json(json!({"type": 6, "requestId": request_id, "data": value})),
            ),
            Body::Ignored => return None,
        })
    }

    /// Reads a message that came on a channel of namespace `nsp`.
    pub(crate) fn decode(nsp: &str, kind: Kind, bytes: &[u8]) -> Result<Message, String> {
        match kind {
            Kind::Broadcast => decode_broadcast(nsp, bytes),
            Kind::Request => decode_request(nsp, bytes),
            Kind::Response => decode_response(nsp, bytes),
        }
    }

    fn decode_broadcast(nsp: &str, bytes: &[u8]) -> Result<Message, String> {
        let mut attachments = Vec::new();
        let v = msgpack::to_json(msgpack::decode(bytes)?, &mut attachments);
        let Value::Array(items) = v else {
            return Err("broadcast is not an array".into());
        };
        let uid = match items.first() {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let packet_nsp = items
            .get(1)
            .and_then(|p| p.get("nsp"))
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_string();
        let packet = parse_packet(items.get(1), &packet_nsp, attachments)?;
        let opts = Opts::parse(items.get(2))?;
        let _ = nsp;
        Ok(Message {
            uid,
            nsp: packet_nsp,
            body: Body::Broadcast {
                packet,
                opts,
                request_id: None,
            },
        })
    }

    fn decode_request(nsp: &str, bytes: &[u8]) -> Result<Message, String> {
        let (v, attachments) = parse_any(bytes)?;
        let Value::Object(m) = v else {
            return Err("request is not an object".into());
        };
        let uid = m.get("uid").and_then(Value::as_str).map(str::to_string);
        let kind = m
            .get("type")
            .and_then(Value::as_u64)
            .ok_or("request without a type")?;
        let body = match kind {
            0 => Body::Sockets {
                request_id: string(&m, "requestId")?,
                rooms: rooms(m.get("rooms"))?,
            },
            1 => Body::AllRooms {
                request_id: string(&m, "requestId")?,
            },
            2..=4 if m.get("opts").is_none() => Body::Ignored,
            2 => Body::Join {
                opts: Opts::parse(m.get("opts"))?,
                rooms: rooms(m.get("rooms"))?,
            },
            3 => Body::Leave {
                opts: Opts::parse(m.get("opts"))?,
                rooms: rooms(m.get("rooms"))?,
            },
            4 => Body::Disconnect {
                opts: Opts::parse(m.get("opts"))?,
                close: m.get("close").is_some_and(truthy),
            },
            5 => Body::Fetch {
                request_id: string(&m, "requestId")?,
                opts: Opts::parse(m.get("opts"))?,
            },
            6 => Body::ServerEmit {
                data: match m.get("data") {
                    Some(Value::Array(d)) if matches!(d.first(), Some(Value::String(_))) => {
                        d.clone()
                    }
                    _ => return Err("server-side emit without an event name".into()),
                },
                request_id: m
                    .get("requestId")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
            7 => {
                let packet_nsp = m
                    .get("packet")
                    .and_then(|p| p.get("nsp"))
                    .and_then(Value::as_str)
                    .unwrap_or(nsp);
                Body::Broadcast {
                    packet: parse_packet(m.get("packet"), packet_nsp, attachments)?,
                    opts: Opts::parse(m.get("opts"))?,
                    request_id: Some(string(&m, "requestId")?),
                }
            }
            other => return Err(format!("unknown request type {other}")),
        };
        Ok(Message {
            uid,
            nsp: nsp.to_string(),
            body,
        })
    }

    fn decode_response(nsp: &str, bytes: &[u8]) -> Result<Message, String> {
        let (v, _attachments) = parse_any(bytes)?;
        let Value::Object(m) = v else {
            return Err("response is not an object".into());
        };
        let request_id = string(&m, "requestId")?;
        let body = match m.get("type").and_then(Value::as_u64) {
            Some(8) => Body::ClientCount {
                request_id,
                count: m
                    .get("clientCount")
                    .and_then(Value::as_u64)
                    .ok_or("clientCount is not a number")?,
            },
            Some(9) => Body::Ack {
                request_id,
                value: m.get("packet").cloned().unwrap_or(Value::Null),
            },
            Some(6) => Body::ServerEmitReply {
                request_id,
                value: m.get("data").cloned().unwrap_or(Value::Null),
            },
            _ => match (m.get("sockets"), m.get("rooms")) {
                (Some(Value::Array(s)), _) if s.iter().all(Value::is_string) && !s.is_empty() => {
                    Body::SocketsReply {
                        request_id,
                        sids: rooms(m.get("sockets"))?,
                    }
                }
                (Some(_), _) => Body::FetchReply {
                    request_id,
                    sockets: socket_infos(m.get("sockets"))?,
                },
                (None, Some(_)) => Body::RoomsReply {
                    request_id,
                    rooms: rooms(m.get("rooms"))?,
                },
                (None, None) => Body::Ignored,
            },
        };
        Ok(Message {
            uid: None,
            nsp: nsp.to_string(),
            body,
        })
    }
}

/// The cluster (sharded) adapter's encoding.
pub(crate) mod sharded {
    use super::*;

    /// The channels of one namespace.
    #[derive(Clone, Debug)]
    pub(crate) struct Channels {
        /// `{prefix}#{nsp}#`: every request and broadcast.
        pub(crate) main: String,
        /// `{prefix}#{nsp}#{uid}#`: responses to this node.
        pub(crate) own_response: String,
    }

    impl Channels {
        pub(crate) fn new(prefix: &str, nsp: &str, uid: &str) -> Self {
            Channels {
                main: format!("{prefix}#{nsp}#"),
                own_response: format!("{prefix}#{nsp}#{uid}#"),
            }
        }

        /// The channel of the broadcasts to one public room.
        pub(crate) fn room(&self, room: &str) -> String {
            format!("{}{room}#", self.main)
        }

        /// The response channel of node `uid`.
        pub(crate) fn response_to(&self, uid: &str) -> String {
            format!("{}{uid}#", self.main)
        }
    }

    /// Whether a room is a socket's own (Socket.IO ids are 20 characters): such rooms have no
    /// channel of their own in the default subscription mode.
    pub(crate) fn looks_like_socket_id(room: &str) -> bool {
        room.chars().count() == 20
    }

    /// The channel and bytes of a message from node `uid` in namespace `nsp`; a response
    /// goes to the node `to`.
    /// A message's cluster-adapter type number, its `data`, and the attachments its
    /// placeholders refer to; `None` for messages the cluster adapter has no form for.
    pub(crate) fn parts(body: &Body) -> Option<(u8, Value, &[Bytes])> {
        Some(match body {
            Body::Broadcast {
                packet,
                opts,
                request_id,
            } => {
                let mut d = Map::new();
                d.insert("packet".into(), packet_json(packet, false));
                if let Some(id) = request_id {
                    d.insert("requestId".into(), json!(id));
                }
                d.insert("opts".into(), opts.json(true));
                (3, Value::Object(d), &packet.attachments)
            }
            Body::Join { opts, rooms } => {
                (4, json!({"opts": opts.json(true), "rooms": rooms}), &[])
            }
            Body::Leave { opts, rooms } => {
                (5, json!({"opts": opts.json(true), "rooms": rooms}), &[])
            }
            Body::Disconnect { opts, close } => {
                (6, json!({"opts": opts.json(true), "close": close}), &[])
            }
            Body::Fetch { request_id, opts } => (
                7,
                json!({"opts": opts.json(true), "requestId": request_id}),
                &[],
            ),
            Body::FetchReply {
                request_id,
                sockets,
            } => (
                8,
                json!({"requestId": request_id, "sockets": socket_infos_json(sockets)}),
                &[],
            ),
            Body::ServerEmit { data, request_id } => {
                let mut d = Map::new();
                if let Some(id) = request_id {
                    d.insert("requestId".into(), json!(id));
                }
                d.insert("packet".into(), Value::Array(data.clone()));
                (9, Value::Object(d), &[])
            }
            Body::ServerEmitReply { request_id, value } => {
                (10, json!({"requestId": request_id, "packet": value}), &[])
            }
            Body::ClientCount { request_id, count } => (
                11,
                json!({"requestId": request_id, "clientCount": count}),
                &[],
            ),
            Body::Ack { request_id, value } => {
                (12, json!({"requestId": request_id, "packet": value}), &[])
            }
            // No such requests in the cluster adapter: all rooms come from fetching sockets.
            Body::AllRooms { .. }
            | Body::Sockets { .. }
            | Body::RoomsReply { .. }
            | Body::SocketsReply { .. }
            | Body::Ignored => return None,
        })
    }

    /// The channel and bytes of a message from node `uid` in namespace `nsp`; a response
    /// goes to the node `to`.
    pub(crate) fn encode(
        ch: &Channels,
        uid: &str,
        nsp: &str,
        body: &Body,
        to: Option<&str>,
    ) -> Option<(String, Vec<u8>)> {
        let (kind, data, attachments) = parts(body)?;
        let channel = match (body, to) {
            (_, Some(to)) => ch.response_to(to),
            (
                Body::Broadcast {
                    opts,
                    request_id: None,
                    ..
                },
                None,
            ) if opts.rooms.len() == 1 && !looks_like_socket_id(&opts.rooms[0]) => {
                ch.room(&opts.rooms[0])
            }
            _ => ch.main.clone(),
        };
        let msg = json!({"type": kind, "data": data, "uid": uid, "nsp": nsp});
        let bytes = if !attachments.is_empty() {
            msgpack::encode(&msgpack::from_json(&msg, attachments))
        } else {
            msg.to_string().into_bytes()
        };
        Some((channel, bytes))
    }

    /// Reads a message of the cluster adapter.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Message, String> {
        let (v, attachments) = parse_any(bytes)?;
        from_value(v, attachments)
    }

    /// Reads a message of the cluster adapter already parsed (binary as placeholders for
    /// `attachments`).
    pub(crate) fn from_value(v: Value, attachments: Vec<Bytes>) -> Result<Message, String> {
        let Value::Object(m) = v else {
            return Err("message is not an object".into());
        };
        let uid = m.get("uid").and_then(Value::as_str).map(str::to_string);
        let nsp = m
            .get("nsp")
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_string();
        let kind = m
            .get("type")
            .and_then(Value::as_u64)
            .ok_or("message without a type")?;
        let empty = Value::Object(Map::new());
        let data = match m.get("data") {
            Some(Value::Object(_)) => &m["data"],
            _ => &empty,
        };
        let Value::Object(d) = data else {
            unreachable!("checked above")
        };
        let rid = || string(d, "requestId");
        let body = match kind {
            1 | 2 | 13 => Body::Ignored,
            3 => Body::Broadcast {
                packet: parse_packet(d.get("packet"), &nsp, attachments)?,
                opts: Opts::parse(d.get("opts"))?,
                request_id: d
                    .get("requestId")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
            4 => Body::Join {
                opts: Opts::parse(d.get("opts"))?,
                rooms: rooms(d.get("rooms"))?,
            },
            5 => Body::Leave {
                opts: Opts::parse(d.get("opts"))?,
                rooms: rooms(d.get("rooms"))?,
            },
            6 => Body::Disconnect {
                opts: Opts::parse(d.get("opts"))?,
                close: d.get("close").is_some_and(truthy),
            },
            7 => Body::Fetch {
                request_id: rid()?,
                opts: Opts::parse(d.get("opts"))?,
            },
            8 => Body::FetchReply {
                request_id: rid()?,
                sockets: socket_infos(d.get("sockets"))?,
            },
            9 => Body::ServerEmit {
                data: match d.get("packet") {
                    Some(Value::Array(p)) if matches!(p.first(), Some(Value::String(_))) => {
                        p.clone()
                    }
                    _ => return Err("server-side emit without an event name".into()),
                },
                request_id: d
                    .get("requestId")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
            10 => Body::ServerEmitReply {
                request_id: rid()?,
                value: d.get("packet").cloned().unwrap_or(Value::Null),
            },
            11 => Body::ClientCount {
                request_id: rid()?,
                count: d
                    .get("clientCount")
                    .and_then(Value::as_u64)
                    .ok_or("clientCount is not a number")?,
            },
            12 => Body::Ack {
                request_id: rid()?,
                value: d.get("packet").cloned().unwrap_or(Value::Null),
            },
            other => return Err(format!("unknown message type {other}")),
        };
        Ok(Message { uid, nsp, body })
    }
}

/// The Redis Streams adapter's encoding (`@socket.io/redis-streams-adapter` 0.3): broadcasts
/// and join/leave/disconnect as stream entries (`uid`, `nsp`, `type`, `data` fields: JSON, or
/// base64 msgpack when it holds binary), the rest over pub/sub as msgpack of the whole message.
pub(crate) mod streams {
    use super::*;
    use base64::Engine as _;

    /// The pub/sub channels of one namespace.
    #[derive(Clone, Debug)]
    pub(crate) struct Channels {
        /// `{prefix}#{nsp}#`: requests that need no log.
        pub(crate) public: String,
        /// `{prefix}#{nsp}#{uid}#`: responses to this node.
        pub(crate) private: String,
        /// The prefix, to name other nodes' channels.
        prefix: String,
        nsp: String,
    }

    impl Channels {
        pub(crate) fn new(prefix: &str, nsp: &str, uid: &str) -> Self {
            Channels {
                public: format!("{prefix}#{nsp}#"),
                private: format!("{prefix}#{nsp}#{uid}#"),
                prefix: prefix.to_string(),
                nsp: nsp.to_string(),
            }
        }

        /// The response channel of node `uid`.
        pub(crate) fn response_to(&self, uid: &str) -> String {
            format!("{}#{}#{uid}#", self.prefix, self.nsp)
        }
    }

    /// Whether a message goes to the stream (a log every node reads, whose entry ids are the
    /// offsets of recovery) rather than over pub/sub.
    pub(crate) fn logged(body: &Body) -> bool {
        matches!(
            body,
            Body::Broadcast {
                request_id: None,
                ..
            } | Body::Join { .. }
                | Body::Leave { .. }
                | Body::Disconnect { .. }
        )
    }

    /// The fields of a stream entry for `body`.
    pub(crate) fn entry(uid: &str, nsp: &str, body: &Body) -> Option<Vec<(&'static str, Vec<u8>)>> {
        let (kind, data, attachments) = sharded::parts(body)?;
        let data = if attachments.is_empty() {
            data.to_string()
        } else {
            let bytes = msgpack::encode(&msgpack::from_json(&data, attachments));
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        Some(vec![
            ("uid", uid.as_bytes().to_vec()),
            ("nsp", nsp.as_bytes().to_vec()),
            ("type", kind.to_string().into_bytes()),
            ("data", data.into_bytes()),
        ])
    }

    /// Reads a stream entry's fields.
    pub(crate) fn from_entry(fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Message, String> {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name.as_bytes())
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let kind: u64 = get("type")
            .and_then(|t| t.parse().ok())
            .ok_or("entry without a numeric type")?;
        let mut m = Map::new();
        m.insert("type".into(), Value::from(kind));
        let mut attachments = Vec::new();
        if let Some(data) = get("data") {
            let value = if data.starts_with('{') {
                serde_json::from_str(&data).map_err(|e| format!("invalid JSON data: {e}"))?
            } else {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .map_err(|e| format!("invalid base64 data: {e}"))?;
                msgpack::to_json(msgpack::decode(&bytes)?, &mut attachments)
            };
            m.insert("data".into(), value);
        }
        if let Some(uid) = get("uid") {
            m.insert("uid".into(), Value::String(uid));
        }
        m.insert(
            "nsp".into(),
            Value::String(get("nsp").ok_or("entry without nsp")?),
        );
        sharded::from_value(Value::Object(m), attachments)
    }

    /// The pub/sub payload of `body`: msgpack of the whole message, always.
    pub(crate) fn payload(uid: &str, nsp: &str, body: &Body) -> Option<Vec<u8>> {
        let (kind, data, attachments) = sharded::parts(body)?;
        let msg = json!({"type": kind, "data": data, "uid": uid, "nsp": nsp});
        Some(msgpack::encode(&msgpack::from_json(&msg, attachments)))
    }

    /// Reads a pub/sub payload.
    pub(crate) fn from_payload(bytes: &[u8]) -> Result<Message, String> {
        let mut attachments = Vec::new();
        let v = msgpack::to_json(msgpack::decode(bytes)?, &mut attachments);
        sharded::from_value(v, attachments)
    }

    /// The kept state of a socket: base64 of msgpack `{sid, pid, rooms, data}`.
    pub(crate) fn session(state: &hunchensocket_io::adapter::SessionState) -> String {
        let v =
            json!({"sid": &*state.sid, "pid": state.pid, "rooms": state.rooms, "data": state.data});
        base64::engine::general_purpose::STANDARD
            .encode(msgpack::encode(&msgpack::from_json(&v, &[])))
    }

    /// Reads a kept state.
    pub(crate) fn from_session(
        text: &[u8],
    ) -> Result<hunchensocket_io::adapter::SessionState, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("invalid base64 session: {e}"))?;
        let v = msgpack::to_json(msgpack::decode(&bytes)?, &mut Vec::new());
        let Value::Object(m) = v else {
            return Err("session is not a map".into());
        };
        Ok(hunchensocket_io::adapter::SessionState::new(
            string(&m, "sid")?.into(),
            string(&m, "pid")?,
            rooms(m.get("rooms"))?,
            m.get("data").cloned().unwrap_or(Value::Null),
        ))
    }

    /// Whether `offset` is a stream entry id (`<ms>-<seq>`).
    pub(crate) fn is_offset(offset: &str) -> bool {
        match offset.split_once('-') {
            Some((a, b)) => {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            }
            None => false,
        }
    }

    /// The entry id right after `offset`.
    pub(crate) fn next_offset(offset: &str) -> Option<String> {
        let (ms, seq) = offset.split_once('-')?;
        Some(format!("{ms}-{}", seq.parse::<u64>().ok()?.checked_add(1)?))
    }

    /// Compares two entry ids.
    pub(crate) fn cmp_offsets(a: &str, b: &str) -> std::cmp::Ordering {
        let key = |o: &str| {
            let (ms, seq) = o.split_once('-').unwrap_or((o, "0"));
            (
                ms.parse::<u64>().unwrap_or(0),
                seq.parse::<u64>().unwrap_or(0),
            )
        };
        key(a).cmp(&key(b))
    }
}

#[cfg(test)]
#[path = "vectors_tests.rs"]
mod vectors_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn packet() -> BroadcastPacket {
        BroadcastPacket::new("/", vec![json!("hello"), json!("world")], Vec::new())
    }

    #[test]
    fn classic_broadcast_round_trip() {
        let ch = classic::Channels::new("socket.io", "/", "abc123");
        let body = Body::Broadcast {
            packet: packet(),
            opts: Opts::default(),
            request_id: None,
        };
        let (channel, bytes) = classic::encode(&ch, "abc123", &body).unwrap();
        assert_eq!(channel, "socket.io#/#");
        let msg = classic::decode("/", Kind::Broadcast, &bytes).unwrap();
        assert_eq!(msg.uid.as_deref(), Some("abc123"));
        assert_eq!(msg.body, body);
        let one_room = Body::Broadcast {
            packet: packet(),
            opts: Opts {
                rooms: vec!["r1".into()],
                ..Default::default()
            },
            request_id: None,
        };
        assert_eq!(
            classic::encode(&ch, "abc123", &one_room).unwrap().0,
            "socket.io#/#r1#"
        );
    }

    #[test]
    fn classic_requests_round_trip() {
        let ch = classic::Channels::new("k", "/chat", "u1");
        let opts = Opts {
            rooms: vec!["a".into()],
            except: vec!["b".into()],
            flags: Map::new(),
        };
        for body in [
            Body::Join {
                opts: opts.clone(),
                rooms: vec!["x".into()],
            },
            Body::Leave {
                opts: opts.clone(),
                rooms: vec!["x".into()],
            },
            Body::Disconnect {
                opts: opts.clone(),
                close: true,
            },
            Body::Fetch {
                request_id: "r".into(),
                opts: opts.clone(),
            },
            Body::AllRooms {
                request_id: "r".into(),
            },
            Body::ServerEmit {
                data: vec![json!("ping"), json!(1)],
                request_id: Some("r".into()),
            },
            Body::Broadcast {
                packet: BroadcastPacket::new("/chat", vec![json!("q")], Vec::new()),
                opts: Opts {
                    flags: json!({"timeout": 1000}).as_object().unwrap().clone(),
                    ..opts.clone()
                },
                request_id: Some("r".into()),
            },
        ] {
            let (channel, bytes) = classic::encode(&ch, "u1", &body).unwrap();
            assert_eq!(channel, "k-request#/chat#");
            let msg = classic::decode("/chat", Kind::Request, &bytes).unwrap();
            assert_eq!(msg.body, body);
            assert_eq!(msg.uid.as_deref(), Some("u1"));
        }
        for body in [
            Body::ClientCount {
                request_id: "r".into(),
                count: 3,
            },
            Body::Ack {
                request_id: "r".into(),
                value: json!({"a": 1}),
            },
            Body::RoomsReply {
                request_id: "r".into(),
                rooms: vec!["x".into()],
            },
            Body::ServerEmitReply {
                request_id: "r".into(),
                value: json!("n1"),
            },
            Body::FetchReply {
                request_id: "r".into(),
                sockets: vec![SocketInfo::new(
                    "s".into(),
                    json!({}),
                    vec!["s".into()],
                    json!({}),
                )],
            },
        ] {
            let (channel, bytes) = classic::encode(&ch, "u1", &body).unwrap();
            assert_eq!(channel, "k-response#/chat#");
            assert_eq!(
                classic::decode("/chat", Kind::Response, &bytes)
                    .unwrap()
                    .body,
                body
            );
        }
    }

    #[test]
    fn sharded_round_trip() {
        let ch = sharded::Channels::new("socket.io", "/", "0123456789abcdef");
        let bin = BroadcastPacket::new(
            "/",
            vec![json!("up"), hunchensocket_io::args::placeholder(0)],
            vec![Bytes::from_static(b"\x00\x01")],
        );
        for (body, channel) in [
            (
                Body::Broadcast {
                    packet: packet(),
                    opts: Opts::default(),
                    request_id: None,
                },
                "socket.io#/#",
            ),
            (
                Body::Broadcast {
                    packet: packet(),
                    opts: Opts {
                        rooms: vec!["room".into()],
                        ..Default::default()
                    },
                    request_id: None,
                },
                "socket.io#/#room#",
            ),
            (
                Body::Broadcast {
                    packet: packet(),
                    opts: Opts {
                        rooms: vec!["aaaaaaaaaaaaaaaaaaaa".into()],
                        ..Default::default()
                    },
                    request_id: None,
                },
                "socket.io#/#",
            ),
            (
                Body::Broadcast {
                    packet: bin,
                    opts: Opts::default(),
                    request_id: None,
                },
                "socket.io#/#",
            ),
            (
                Body::Fetch {
                    request_id: "r".into(),
                    opts: Opts::default(),
                },
                "socket.io#/#",
            ),
        ] {
            let (got, bytes) = sharded::encode(&ch, "0123456789abcdef", "/", &body, None).unwrap();
            assert_eq!(got, channel);
            let msg = sharded::decode(&bytes).unwrap();
            assert_eq!(msg.body, body);
            assert_eq!(msg.nsp, "/");
        }
        let reply = Body::ClientCount {
            request_id: "r".into(),
            count: 2,
        };
        let (got, bytes) = sharded::encode(&ch, "me", "/", &reply, Some("them")).unwrap();
        assert_eq!(got, "socket.io#/#them#");
        assert_eq!(sharded::decode(&bytes).unwrap().body, reply);
    }

    #[test]
    fn streams_entries_and_payloads_round_trip() {
        let bin = BroadcastPacket::new(
            "/",
            vec![json!("up"), hunchensocket_io::args::placeholder(0)],
            vec![Bytes::from_static(b"\x00\x01")],
        );
        for body in [
            Body::Broadcast {
                packet: packet(),
                opts: Opts {
                    rooms: vec!["r".into()],
                    ..Default::default()
                },
                request_id: None,
            },
            Body::Broadcast {
                packet: bin,
                opts: Opts::default(),
                request_id: None,
            },
            Body::Join {
                opts: Opts::default(),
                rooms: vec!["x".into()],
            },
        ] {
            assert!(streams::logged(&body));
            let fields: Vec<(Vec<u8>, Vec<u8>)> = streams::entry("u1", "/", &body)
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect();
            assert_eq!(
                fields[2],
                (
                    b"type".to_vec(),
                    if matches!(body, Body::Join { .. }) {
                        b"4".to_vec()
                    } else {
                        b"3".to_vec()
                    }
                )
            );
            let msg = streams::from_entry(&fields).unwrap();
            assert_eq!((msg.uid.as_deref(), msg.body), (Some("u1"), body));
        }
        let fetch = Body::Fetch {
            request_id: "r".into(),
            opts: Opts::default(),
        };
        assert!(!streams::logged(&fetch));
        let payload = streams::payload("u1", "/", &fetch).unwrap();
        assert_ne!(payload[0], b'{', "pub/sub payloads are msgpack");
        assert_eq!(streams::from_payload(&payload).unwrap().body, fetch);
        let state = hunchensocket_io::adapter::SessionState::new(
            "s".into(),
            "p".into(),
            vec!["s".into(), "r".into()],
            json!({"a": 1}),
        );
        assert_eq!(
            streams::from_session(streams::session(&state).as_bytes()).unwrap(),
            state
        );
        assert!(
            streams::is_offset("1700000000000-0")
                && !streams::is_offset("17-")
                && !streams::is_offset("x-1")
        );
        assert_eq!(streams::next_offset("5-9").as_deref(), Some("5-10"));
        assert!(streams::cmp_offsets("10-0", "9-5").is_gt());
        assert!(streams::from_entry(&[(b"type".to_vec(), b"3".to_vec())]).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\xc1",
            b"{",
            b"{\"type\":\"x\"}",
            b"\x93\x01\x02\x03",
            b"\x92\xa1a",
        ] {
            let _ = classic::decode("/", Kind::Broadcast, bytes);
            let _ = classic::decode("/", Kind::Request, bytes);
            let _ = classic::decode("/", Kind::Response, bytes);
            let _ = sharded::decode(bytes);
        }
        assert!(classic::decode("/", Kind::Broadcast, b"\x93\x01\x02\x03").is_err());
        assert!(sharded::decode(b"{\"type\":3,\"data\":{\"packet\":1}}").is_err());
    }
}
