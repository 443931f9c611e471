//! The wire formats against bytes the Node packages produced: `tests/cluster/vectors.json`,
//! written by `tests/cluster/make-vectors.mjs` with notepack.io and captured from Redis while
//! the official adapters, the emitter and the sharded adapter ran.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::*;
use crate::msgpack;

const VECTORS: &str = include_str!("../../../tests/cluster/vectors.json");

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The vectors' JSON form (`{"$bin": hex}`, `{"$date": iso}`) as placeholders and
/// attachments; dates as the ISO strings we read them as.
fn to_placeholders(v: &Value, attachments: &mut Vec<Bytes>) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("$bin") => {
            attachments.push(Bytes::from(unhex(m["$bin"].as_str().unwrap())));
            hunchensocket_io::args::placeholder(attachments.len() - 1)
        }
        Value::Object(m) if m.len() == 1 && m.contains_key("$date") => m["$date"].clone(),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), to_placeholders(v, attachments)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| to_placeholders(v, attachments))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn has_date(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("$date") || m.values().any(has_date),
        Value::Array(items) => items.iter().any(has_date),
        _ => false,
    }
}

fn vectors() -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(VECTORS).expect("vectors.json parses")
}

#[test]
fn msgpack_vectors_read_and_write_byte_for_byte() {
    let mut checked = 0;
    for v in vectors() {
        let (Some(h), Some(expected)) = (v["hex"].as_str(), v.get("json")) else {
            continue;
        };
        let name = v["name"].as_str().unwrap_or("?");
        let bytes = unhex(h);
        let mut want_att = Vec::new();
        let want = to_placeholders(expected, &mut want_att);
        let mut got_att = Vec::new();
        let got = msgpack::to_json(msgpack::decode(&bytes).expect(name), &mut got_att);
        assert_eq!(got, want, "{name}: read");
        assert_eq!(got_att, want_att, "{name}: attachments read");
        if !has_date(expected) {
            // A Date has no JSON form to write back from.
            let written = msgpack::encode(&msgpack::from_json(&want, &want_att));
            assert_eq!(hex(&written), h, "{name}: written");
        }
        checked += 1;
    }
    assert!(checked >= 70, "only {checked} msgpack vectors");
}

#[test]
fn captured_classic_messages_decode_and_encode_alike() {
    let mut checked = 0;
    for v in vectors() {
        let name = v["name"].as_str().unwrap_or("?").to_string();
        let Some(rest) = name.strip_prefix("captured:classic:") else {
            continue;
        };
        let bytes = match (v["hex"].as_str(), v["text"].as_str()) {
            (Some(h), _) => unhex(h),
            (None, Some(t)) => t.as_bytes().to_vec(),
            _ => continue,
        };
        let kind = if rest.ends_with("broadcast") {
            Kind::Broadcast
        } else if rest.contains(":response") {
            Kind::Response
        } else {
            Kind::Request
        };
        let msg = classic::decode("/", kind, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!matches!(msg.body, Body::Ignored), "{name}: understood");
        // Written again by us with the same ids: the same bytes (text requests, msgpack
        // broadcasts), or for the emitter (other key order, no uid) the same value.
        let uid = msg.uid.clone().unwrap_or_default();
        let ch = classic::Channels::new("socket.io", "/", &uid);
        let (channel, ours) = classic::encode(&ch, &uid, &msg.body).expect("encodable");
        if let Some(c) = v["channel"].as_str() {
            let mine_is_response = channel.starts_with("socket.io-response#");
            assert!(
                c == channel || (mine_is_response && c.starts_with("socket.io-response#")),
                "{name}: channel {channel} vs {c}"
            );
        }
        let emitter = rest.starts_with("emitter");
        if !emitter && !rest.contains("Date") {
            assert_eq!(hex(&ours), hex(&bytes), "{name}: bytes");
        } else if !rest.contains("Date") {
            let again = classic::decode("/", kind, &ours).expect("reads back");
            assert_eq!(again.body, msg.body, "{name}: value");
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} classic captures");
}

#[test]
fn captured_sharded_messages_decode_and_encode_alike() {
    let mut checked = 0;
    for v in vectors() {
        let name = v["name"].as_str().unwrap_or("?").to_string();
        if !name.starts_with("captured:sharded:") {
            continue;
        }
        let bytes = match (v["hex"].as_str(), v["text"].as_str()) {
            (Some(h), _) => unhex(h),
            (None, Some(t)) => t.as_bytes().to_vec(),
            _ => continue,
        };
        let msg = sharded::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!matches!(msg.body, Body::Ignored), "{name}: understood");
        let uid = msg.uid.clone().unwrap_or_default();
        let ch = sharded::Channels::new("socket.io", "/", &uid);
        let to = msg.body.reply_to().map(|_| "requester");
        let (_, ours) = sharded::encode(&ch, &uid, "/", &msg.body, to).expect("encodable");
        assert_eq!(hex(&ours), hex(&bytes), "{name}: bytes");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} sharded captures");
}

#[test]
fn options_keep_their_flags() {
    let opts = Opts::parse(Some(
        &json!({"rooms": ["a", 1], "except": [], "flags": {"volatile": true}}),
    ))
    .unwrap();
    assert_eq!(opts.rooms, vec!["a".to_string(), "1".to_string()]);
    assert!(opts.to_options().volatile);
}
