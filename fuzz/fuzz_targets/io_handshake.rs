//! The Engine.IO handshake of arbitrary HTTP requests, under arbitrary transport and CORS
//! settings: `route_request` never panics, and its answer agrees with the request as the
//! application reads it (`HandshakeInfo::query`), whose percent-decoding is checked against a
//! strict decoder written here.
//!
//! Input: one byte of settings (bit 0: polling offered; bit 1: WebSocket offered; bits 2-3:
//! CORS none, any, or one of two origin lists), then a request as `httparse` reads it.
#![no_main]

use http::{Method, header};
use hunchensocket_io::engine::{
    Cors, CorsOrigins, EngineConfig, EngineError, HandshakeInfo, Route, route_request,
};
use libfuzzer_sys::fuzz_target;

/// `+` is a space, `%` with two hex digits is that byte, anything else is itself; then UTF-8
/// with replacement characters (what Node's `querystring` gives, after its fallback).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(bytes) else {
        return;
    };
    let mut builder = http::Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"));
    for h in parsed.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let Ok(req) = builder.body(()) else { return };

    let origins = match (ctl >> 2) & 3 {
        0 => CorsOrigins::None,
        1 => CorsOrigins::Any,
        2 => CorsOrigins::List(vec!["https://a.example".into()]),
        _ => CorsOrigins::List(vec!["null".into(), "http://b.example:8080".into()]),
    };
    let config = EngineConfig::default()
        .with_transports(ctl & 1 != 0, ctl & 2 != 0)
        .with_cors(Cors {
            origins: origins.clone(),
            credentials: false,
        });
    let answer = route_request(&config, &req);

    // The application's view of the same request.
    let info = HandshakeInfo {
        headers: req.headers().clone(),
        uri: req.uri().clone(),
        peer: None,
        issued: std::time::SystemTime::now(),
    };
    let query = req.uri().query().unwrap_or("");
    for pair in query.split('&') {
        let key = decode(pair.split_once('=').map_or(pair, |(k, _)| k));
        if key.is_empty() {
            continue;
        }
        // The first value of the key, keys compared decoded.
        let first = query.split('&').find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k) == key).then(|| decode(v))
        });
        assert_eq!(info.query(&key), first, "{key:?} in {query:?}");
    }

    if let Err(refusal) = answer {
        assert!((refusal as u8) <= 5);
        assert_ne!(
            refusal,
            EngineError::UnknownSid,
            "no session is looked up here"
        );
    }
    let options = req.method() == Method::OPTIONS;
    assert_eq!(answer == Ok(Route::Preflight), options, "{answer:?}");
    if options {
        return;
    }
    let refused_origin = match (&origins, req.headers().get(header::ORIGIN)) {
        (CorsOrigins::List(list), Some(origin)) => {
            !origin.to_str().is_ok_and(|o| list.iter().any(|a| a == o))
        }
        _ => false,
    };
    assert_eq!(
        answer == Err(EngineError::Forbidden),
        refused_origin,
        "{answer:?}"
    );
    if refused_origin {
        return;
    }
    let v4 = info.query("EIO").as_deref() == Some("4");
    assert_eq!(
        answer == Err(EngineError::UnsupportedProtocolVersion),
        !v4,
        "{answer:?}, EIO {:?}",
        info.query("EIO")
    );
    if !v4 {
        return;
    }
    let transport = info.query("transport");
    let sid = info.query("sid");
    let upgrade = hunchensocket_core::handshake::is_upgrade_request(&req);
    let offered = match transport.as_deref() {
        Some("polling") => config.polling,
        Some("websocket") => config.websocket,
        _ => false,
    };
    let wants_websocket = transport.as_deref() == Some("websocket");
    match answer {
        Ok(Route::Polling { sid: routed }) => {
            assert!(offered && !wants_websocket && !upgrade);
            assert_eq!(routed, sid);
            assert!(routed.is_some() || req.method() == Method::GET);
        }
        Ok(Route::WebSocket { sid: routed }) => {
            assert!(offered && wants_websocket && upgrade);
            assert_eq!(routed, sid);
        }
        Err(EngineError::UnknownTransport) => assert!(!offered, "{transport:?}"),
        Err(EngineError::BadRequest) => assert!(offered && upgrade != wants_websocket),
        Err(EngineError::BadHandshakeMethod) => {
            assert!(offered && !upgrade && sid.is_none() && req.method() != Method::GET);
        }
        other => panic!("{other:?} for {req:?}"),
    }
});
