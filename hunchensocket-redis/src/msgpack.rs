//! MessagePack as notepack.io (the Node adapters' codec) writes and reads it, to and from the
//! JSON values and binary attachments of the adapter API.
//!
//! Writing: integers (and floats without a fraction that fit 64 bits) in their smallest
//! form, other numbers as float64, strings and binary in their smallest header, maps with
//! string keys. A binary placeholder `{"_placeholder":true,"num":N}` is written as the bytes
//! of attachment N. Reading: binary (and the ext 0 that notepack 2 wrote for an
//! `ArrayBuffer`) becomes a placeholder and an attachment; a timestamp (ext −1, a JavaScript
//! `Date`) becomes its ISO string, as a client would get it through JSON; other ext types
//! become `[type, <binary>]`, as notepack reads them.

use bytes::Bytes;
use hunchensocket_io::args::{placeholder, placeholder_num};
use rmpv::Value as Mp;
use serde_json::{Map, Number, Value};

/// How deep a decoded message may nest.
const MAX_DEPTH: usize = 128;

/// A JSON value as MessagePack, placeholders as the bytes of their attachments.
pub(crate) fn from_json(value: &Value, attachments: &[Bytes]) -> Mp {
    if let Some(bin) = placeholder_num(value).and_then(|n| attachments.get(n)) {
        return Mp::Binary(bin.to_vec());
    }
    match value {
        Value::Null => Mp::Nil,
        Value::Bool(b) => Mp::Boolean(*b),
        Value::Number(n) => number(n),
        Value::String(s) => Mp::String(s.as_str().into()),
        Value::Array(items) => Mp::Array(items.iter().map(|v| from_json(v, attachments)).collect()),
        Value::Object(map) => Mp::Map(
            map.iter()
                .map(|(k, v)| (Mp::String(k.as_str().into()), from_json(v, attachments)))
                .collect(),
        ),
    }
}

fn number(n: &Number) -> Mp {
    if let Some(u) = n.as_u64() {
        return Mp::from(u);
    }
    if let Some(i) = n.as_i64() {
        return Mp::from(i);
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    // JavaScript has one number type: an integral value goes out as an integer.
    if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) {
        Mp::from(f as u64)
    } else if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
        Mp::from(f as i64)
    } else {
        Mp::F64(f)
    }
}

/// A MessagePack value as JSON; binary becomes placeholders for the attachments pushed.
pub(crate) fn to_json(value: Mp, attachments: &mut Vec<Bytes>) -> Value {
    match value {
        Mp::Nil => Value::Null,
        Mp::Boolean(b) => Value::Bool(b),
        Mp::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::Null,
        },
        Mp::F32(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
        Mp::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Mp::String(s) => Value::String(s.into_str().unwrap_or_default()),
        Mp::Binary(b) => bin(b, attachments),
        Mp::Array(items) => {
            Value::Array(items.into_iter().map(|v| to_json(v, attachments)).collect())
        }
        Mp::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Mp::String(s) => s.into_str().unwrap_or_default(),
                    other => other.to_string(),
                };
                map.insert(key, to_json(v, attachments));
            }
            Value::Object(map)
        }
        Mp::Ext(0, data) => bin(data, attachments),
        Mp::Ext(-1, data) => timestamp(&data).map_or(Value::Null, Value::String),
        Mp::Ext(kind, data) => Value::Array(vec![Value::from(kind), bin(data, attachments)]),
    }
}

fn bin(bytes: Vec<u8>, attachments: &mut Vec<Bytes>) -> Value {
    attachments.push(Bytes::from(bytes));
    placeholder(attachments.len() - 1)
}

/// The ISO form (`2026-11-29T09:00:00.000Z`) of a MessagePack timestamp.
fn timestamp(data: &[u8]) -> Option<String> {
    let (secs, nanos): (i64, u32) = match data.len() {
        4 => (i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0),
        8 => {
            let v = u64::from_be_bytes(data.try_into().ok()?);
            ((v & 0x3_ffff_ffff) as i64, (v >> 34) as u32)
        }
        12 => (
            i64::from_be_bytes(data[4..].try_into().ok()?),
            u32::from_be_bytes(data[..4].try_into().ok()?),
        ),
        _ => return None,
    };
    Some(hunchensocket_io::adapter::iso_date(secs, nanos / 1_000_000))
}

/// The bytes of a MessagePack value.
pub(crate) fn encode(value: &Mp) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, value);
    out
}

/// Reads one MessagePack value that must fill `bytes` exactly.
pub(crate) fn decode(bytes: &[u8]) -> Result<Mp, String> {
    let mut rd = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
        .map_err(|e| format!("invalid msgpack: {e}"))?;
    if !rd.is_empty() {
        return Err(format!("{} bytes after the msgpack value", rd.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_broadcast_bytes() {
        // io.emit("hello", "world") from uid abc123, as protocols.md §8.1 gives it.
        let msg = json!(["abc123", {"type": 2, "data": ["hello", "world"], "nsp": "/"},
            {"rooms": [], "except": [], "flags": {}}]);
        let hex: String = encode(&from_json(&msg, &[]))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "93a6616263313233\
             83a474797065 02 a464617461 92a568656c6c6f a5776f726c64 a36e7370 a12f\
             83a5726f6f6d73 90 a6657863657074 90 a5666c616773 80"
                .replace(' ', "")
        );
    }

    #[test]
    fn numbers_as_javascript_writes_them() {
        let cases: &[(Value, &str)] = &[
            (json!(0), "00"),
            (json!(127), "7f"),
            (json!(128), "cc80"),
            (json!(-1), "ff"),
            (json!(-33), "d0df"),
            (json!(1.5), "cb3ff8000000000000"),
            (json!(2.0), "02"),
            (json!(-3.0), "fd"),
        ];
        for (v, hex) in cases {
            let got: String = encode(&from_json(v, &[]))
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(&got, hex, "{v}");
        }
    }

    #[test]
    fn binary_round_trip() {
        let att = vec![Bytes::from_static(b"\x01\x02")];
        let v = json!({"file": {"_placeholder": true, "num": 0}, "n": 1});
        let bytes = encode(&from_json(&v, &att));
        let mut back = Vec::new();
        let json = to_json(decode(&bytes).unwrap(), &mut back);
        assert_eq!(json, v);
        assert_eq!(back, att);
    }

    #[test]
    fn dates_and_garbage() {
        let ts = Mp::Ext(-1, 1_795_942_800u32.to_be_bytes().to_vec());
        assert_eq!(
            to_json(ts, &mut Vec::new()),
            json!("2026-11-29T09:00:00.000Z")
        );
        assert!(decode(&[0x93, 0x01]).is_err(), "truncated");
        assert!(decode(&[0x01, 0x02]).is_err(), "trailing bytes");
        assert!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err(),
            "huge claimed array"
        );
    }
}
