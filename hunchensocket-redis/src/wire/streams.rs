//! The Redis Streams adapter's encoding (`@socket.io/redis-streams-adapter` 0.3): broadcasts
//! and join/leave/disconnect as stream entries (`uid`, `nsp`, `type`, `data` fields: JSON, or
//! base64 msgpack when it holds binary), the rest over pub/sub as msgpack of the whole message.

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
    let v = json!({"sid": &*state.sid, "pid": state.pid, "rooms": state.rooms, "data": state.data});
    base64::engine::general_purpose::STANDARD.encode(msgpack::encode(&msgpack::from_json(&v, &[])))
}

/// Reads a kept state.
pub(crate) fn from_session(text: &[u8]) -> Result<hunchensocket_io::adapter::SessionState, String> {
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
            !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
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
