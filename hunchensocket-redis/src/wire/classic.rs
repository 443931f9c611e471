//! The classic adapter's encoding.

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
            json(json!({"uid": uid, "requestId": request_id, "type": 5, "opts": opts.json(false)})),
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
        Body::Ack { request_id, answer } => {
            let msg = json!({"type": 9, "requestId": request_id, "packet": answer.value});
            (
                ch.response.clone(),
                msgpack::encode(&msgpack::from_json(&msg, &answer.attachments)),
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
                Some(Value::Array(d)) if matches!(d.first(), Some(Value::String(_))) => d.clone(),
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
    let (v, attachments) = parse_any(bytes)?;
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
            answer: AckAnswer {
                value: m.get("packet").cloned().unwrap_or(Value::Null),
                attachments,
            },
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
