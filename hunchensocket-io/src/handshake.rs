//! The handshake of a socket as Socket.IO describes it to applications and to other nodes
//! (`socket.handshake`): `headers`, `time`, `address`, `xdomain`, `secure`, `issued`, `url`,
//! `query`, `auth`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::engine::HandshakeInfo;

/// The handshake of a session, with the auth data of one socket, as JSON.
pub(crate) fn describe(info: &HandshakeInfo, auth: &Value) -> Value {
    let mut headers = Map::new();
    for name in info.headers.keys() {
        let values: Vec<&str> = info
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        headers.insert(name.as_str().to_string(), Value::String(values.join(", ")));
    }
    let mut query = Map::new();
    for pair in info.uri.query().unwrap_or("").split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = Value::String(crate::engine::percent_decode(v));
        // A key given more than once becomes an array of its values, in order, as Node's
        // querystring has it (`?a=1&a=2` → `{"a": ["1", "2"]}`).
        match query.entry(crate::engine::percent_decode(k)) {
            serde_json::map::Entry::Vacant(e) => {
                e.insert(value);
            }
            serde_json::map::Entry::Occupied(mut e) => match e.get_mut() {
                Value::Array(values) => values.push(value),
                first => *first = Value::Array(vec![first.take(), value]),
            },
        }
    }
    let millis = info
        .issued
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let url = info
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default();
    let mut out = Map::new();
    out.insert("headers".into(), Value::Object(headers));
    out.insert("time".into(), Value::String(js_date_string(info.issued)));
    out.insert(
        "address".into(),
        info.peer
            .map(|a| Value::String(a.ip().to_string()))
            .unwrap_or(Value::Null),
    );
    out.insert(
        "xdomain".into(),
        Value::Bool(info.headers.contains_key(http::header::ORIGIN)),
    );
    out.insert("secure".into(), Value::Bool(false));
    out.insert("issued".into(), Value::from(millis));
    out.insert("url".into(), Value::String(url));
    out.insert("query".into(), Value::Object(query));
    out.insert("auth".into(), auth.clone());
    Value::Object(out)
}

/// A time as JavaScript's `Date.prototype.toString` writes it in UTC:
/// `Sun Nov 29 2026 09:00:00 GMT+0000 (Coordinated Universal Time)`.
fn js_date_string(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = crate::adapter::civil_from_days(days as i64);
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_as_javascript_writes_them() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_942_800); // 2026-11-29 09:00:00 UTC
        assert_eq!(
            js_date_string(t),
            "Sun Nov 29 2026 09:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            js_date_string(UNIX_EPOCH),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(js_date_string(leap).starts_with("Tue Feb 29 2000"));
    }

    #[test]
    fn handshake_fields() {
        let mut headers = http::HeaderMap::new();
        headers.insert("origin", "http://a.example".parse().unwrap());
        let info = HandshakeInfo {
            headers,
            uri: "/socket.io/?EIO=4&transport=polling&x=a%20b&r=1&r=2&r=3&t=+"
                .parse()
                .unwrap(),
            peer: Some("127.0.0.1:5000".parse().unwrap()),
            issued: UNIX_EPOCH + Duration::from_millis(1500),
        };
        let v = describe(&info, &serde_json::json!({"token": "t"}));
        assert_eq!(v["headers"]["origin"], "http://a.example");
        assert_eq!(v["address"], "127.0.0.1");
        assert_eq!(v["xdomain"], true);
        assert_eq!(v["issued"], 1500);
        assert_eq!(v["query"]["x"], "a b");
        assert_eq!(v["query"]["EIO"], "4");
        assert_eq!(v["query"]["r"], serde_json::json!(["1", "2", "3"]));
        assert_eq!(v["query"]["t"], " ");
        assert_eq!(
            v["url"],
            "/socket.io/?EIO=4&transport=polling&x=a%20b&r=1&r=2&r=3&t=+"
        );
        assert_eq!(v["auth"]["token"], "t");
    }
}
