//! The messages nodes exchange, and their two encodings on Redis (sans-io): the classic
//! adapter's (`@socket.io/redis-adapter`'s `createAdapter`: msgpack broadcasts on the
//! namespace and room channels, JSON requests and responses on their own channels) and the
//! cluster adapter's (`createShardedAdapter`: one envelope `{uid, nsp, type, data}`, JSON unless
//! it carries binary).

use bytes::Bytes;
use hunchensocket_io::adapter::{AckAnswer, BroadcastOptions, BroadcastPacket, SocketInfo};
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
        /// One client's answer, binary parts included.
        answer: AckAnswer,
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

pub(crate) mod classic;

pub(crate) mod sharded;

pub(crate) mod streams;

#[cfg(test)]
mod vectors_tests;

#[cfg(test)]
mod tests;
