//! The cluster (sharded) adapter's encoding.

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
        Body::Join { opts, rooms } => (4, json!({"opts": opts.json(true), "rooms": rooms}), &[]),
        Body::Leave { opts, rooms } => (5, json!({"opts": opts.json(true), "rooms": rooms}), &[]),
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
        Body::Ack { request_id, answer } => (
            12,
            json!({"requestId": request_id, "packet": answer.value}),
            &answer.attachments,
        ),
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
                Some(Value::Array(p)) if matches!(p.first(), Some(Value::String(_))) => p.clone(),
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
            answer: AckAnswer {
                value: d.get("packet").cloned().unwrap_or(Value::Null),
                attachments,
            },
        },
        other => return Err(format!("unknown message type {other}")),
    };
    Ok(Message { uid, nsp, body })
}
