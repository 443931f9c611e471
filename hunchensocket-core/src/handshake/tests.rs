//! Tests of `mod`.

use super::*;

fn get(path: &str, headers: &[(&str, &[u8])]) -> http::Request<()> {
    let mut builder = http::Request::get(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

const BASE: [(&str, &[u8]); 3] = [
    ("Host", b"example.com"),
    ("Upgrade", b"websocket"),
    ("Connection", b"Upgrade"),
];

fn rfc(extra: &[(&str, &[u8])]) -> http::Request<()> {
    let mut headers = BASE.to_vec();
    headers.push(("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="));
    headers.push(("Sec-WebSocket-Version", b"13"));
    headers.extend_from_slice(extra);
    get("/chat", &headers)
}

fn refusal(req: &http::Request<()>) -> Refusal {
    Request::parse(req).expect_err("the request must be refused")
}

fn header<'r, B>(response: &'r Response<B>, name: &str) -> Option<&'r str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The draft's own example, hixie-76 §1.2 / protocols.md §2.
fn draft_example() -> http::Request<()> {
    get(
        "/demo",
        &[
            ("Host", b"example.com"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Key2", b"12998 5 Y3 1  .P00"),
            ("Sec-WebSocket-Protocol", b"sample"),
            ("Upgrade", b"WebSocket"),
            ("Sec-WebSocket-Key1", b"4 @1  46546xW%0l 1 5"),
            ("Origin", b"http://example.com"),
        ],
    )
}

#[test]
fn hixie76_draft_example() {
    let req = Request::parse(&draft_example()).unwrap();
    assert_eq!(req.version(), Version::Hixie76);
    assert_eq!(req.protocols(), ["sample"]);
    let response = req.accept(Some("sample"), false);
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .unwrap();
    assert_eq!(reason.as_bytes(), b"WebSocket Protocol Handshake");
    let headers: Vec<(&str, &str)> = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
        .collect();
    assert_eq!(
        headers,
        [
            ("upgrade", "WebSocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-origin", "http://example.com"),
            ("sec-websocket-location", "ws://example.com/demo"),
            ("sec-websocket-protocol", "sample"),
        ]
    );
    assert_eq!(
        &req.hixie76_answer(b"^n:ds[4U").unwrap(),
        b"8jKS'y:G*Co,Wxa-"
    );
}

#[test]
fn hixie76_secure_and_without_origin_or_protocol() {
    let mut plain = draft_example();
    plain.headers_mut().remove("origin");
    let req = Request::parse(&plain).unwrap();
    assert_eq!(req.origin(), None);
    let response = req.accept(Some("other"), true);
    assert_eq!(
        header(&response, "sec-websocket-location"),
        Some("wss://example.com/demo")
    );
    assert_eq!(header(&response, "sec-websocket-origin"), None);
    assert_eq!(header(&response, "sec-websocket-protocol"), None);
}

#[test]
fn hixie75() {
    let req = get(
        "/demo?a=b",
        &[
            ("Upgrade", b"WebSocket"),
            ("Connection", b"Upgrade"),
            ("Host", b"example.com:81"),
            ("Origin", b"http://example.com"),
            ("WebSocket-Protocol", b"sample"),
        ],
    );
    let req = Request::parse(&req).unwrap();
    assert_eq!(req.version(), Version::Hixie75);
    assert_eq!(req.path(), "/demo?a=b");
    assert_eq!(req.host(), "example.com:81");
    assert_eq!(req.protocols(), ["sample"]);
    assert_eq!(req.hixie76_answer(&[0; 8]), None);
    let response = req.accept(Some("sample"), true);
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .unwrap();
    assert_eq!(reason.as_bytes(), b"Web Socket Protocol Handshake");
    let headers: Vec<(&str, &str)> = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
        .collect();
    assert_eq!(
        headers,
        [
            ("upgrade", "WebSocket"),
            ("connection", "Upgrade"),
            ("websocket-origin", "http://example.com"),
            ("websocket-location", "wss://example.com:81/demo?a=b"),
            ("websocket-protocol", "sample"),
        ]
    );
}

#[test]
fn rfc6455_accept() {
    let req = Request::parse(&rfc(&[
        ("Origin", b"http://example.com"),
        ("Sec-WebSocket-Protocol", b"chat, superchat"),
        ("Sec-WebSocket-Protocol", b" v2 ,,"),
    ]))
    .unwrap();
    assert_eq!(req.version(), Version::Rfc6455);
    assert_eq!(req.origin(), Some("http://example.com"));
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.protocols(), ["chat", "superchat", "v2"]);
    assert_eq!(req.hixie76_answer(&[0; 8]), None);

    let response = req.accept(Some("superchat"), false);
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(
        response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .is_none()
    );
    assert_eq!(header(&response, "upgrade"), Some("websocket"));
    assert_eq!(header(&response, "connection"), Some("Upgrade"));
    assert_eq!(
        header(&response, "sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(
        header(&response, "sec-websocket-protocol"),
        Some("superchat")
    );

    // A choice the client did not offer is ignored.
    let response = req.accept(Some("mqtt"), false);
    assert_eq!(header(&response, "sec-websocket-protocol"), None);
    let response = req.accept(None, false);
    assert_eq!(header(&response, "sec-websocket-protocol"), None);
}

#[test]
fn detection() {
    let hybi = |version: &'static [u8]| {
        let mut headers = BASE.to_vec();
        headers.push(("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="));
        headers.push(("Sec-WebSocket-Version", version));
        headers.push(("Sec-WebSocket-Origin", b"http://old.example"));
        headers.push(("Origin", b"http://ignored.example"));
        Request::parse(&get("/", &headers))
    };
    let req = hybi(b"8").unwrap();
    assert_eq!(req.version(), Version::Hybi08);
    assert_eq!(req.origin(), Some("http://old.example"));
    let req = hybi(b"7").unwrap();
    assert_eq!(req.version(), Version::Hybi07);
    assert_eq!(req.origin(), Some("http://old.example"));
    let accept = req.accept(None, false);
    assert_eq!(
        header(&accept, "sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(hybi(b" 13 ").unwrap().version(), Version::Rfc6455);
    // RFC 6455 reads Origin, not Sec-WebSocket-Origin.
    assert_eq!(
        hybi(b"13").unwrap().origin(),
        Some("http://ignored.example")
    );

    // hybi-08 without Sec-WebSocket-Origin falls back to Origin.
    let mut headers = BASE.to_vec();
    headers.push(("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="));
    headers.push(("Sec-WebSocket-Version", b"8"));
    headers.push(("Origin", b"http://plain.example"));
    let req = Request::parse(&get("/", &headers)).unwrap();
    assert_eq!(req.origin(), Some("http://plain.example"));

    assert_eq!(
        Request::parse(&draft_example()).unwrap().version(),
        Version::Hixie76
    );
    assert_eq!(
        Request::parse(&get("/", &BASE)).unwrap().version(),
        Version::Hixie75
    );
}

#[test]
fn upgrade_detection() {
    assert!(is_upgrade_request(&get("/", &[("Upgrade", b"WebSocket")])));
    assert!(is_upgrade_request(&get(
        "/",
        &[("Upgrade", b"h2c, websocket")]
    )));
    assert!(is_upgrade_request(&get(
        "/",
        &[("upgrade", b"foo"), ("upgrade", b" WEBSOCKET ")]
    )));
    assert!(!is_upgrade_request(&get("/", &[("Upgrade", b"h2c")])));
    assert!(!is_upgrade_request(&get(
        "/",
        &[("Upgrade", b"websockets")]
    )));
    assert!(!is_upgrade_request(&get(
        "/",
        &[("Upgrade", b"\xffwebsocket")]
    )));
    assert!(!is_upgrade_request(&get("/", &[("Host", b"x")])));
}

#[test]
fn version_names() {
    assert!(Version::Hixie75.is_hixie() && Version::Hixie76.is_hixie());
    assert!(!Version::Hybi07.is_hixie() && !Version::Rfc6455.is_hixie());
    let names = [
        Version::Hixie75,
        Version::Hixie76,
        Version::Hybi07,
        Version::Hybi08,
        Version::Rfc6455,
    ]
    .map(Version::name);
    assert_eq!(
        names,
        ["hixie-75", "hixie-76", "hybi-07", "hybi-08", "rfc6455"]
    );
    assert_eq!(Version::Hybi08.to_string(), "hybi-08");
    assert_eq!(Version::Rfc6455.number(), Some(13));
    assert_eq!(Version::Hixie76.number(), None);
}

#[test]
fn bad_versions_get_426() {
    for version in [&b"12"[..], b"0", b"abc", b"", b"13, 8", b"-13"] {
        let mut headers = BASE.to_vec();
        headers.push(("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="));
        headers.push(("Sec-WebSocket-Version", version));
        let r = refusal(&get("/", &headers));
        assert_eq!(r.status, StatusCode::UPGRADE_REQUIRED, "{version:?}");
        assert_eq!(r.reason, "unsupported WebSocket version");
        let response = refusal_response(&r);
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(header(&response, "sec-websocket-version"), Some("13, 8, 7"));
        assert_eq!(header(&response, "content-type"), Some("text/plain"));
        assert_eq!(response.body(), "unsupported WebSocket version");
    }
    // A key without any version.
    let mut headers = BASE.to_vec();
    headers.push(("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="));
    assert_eq!(
        refusal(&get("/", &headers)).status,
        StatusCode::UPGRADE_REQUIRED
    );
}

#[test]
fn refusal_response_400() {
    let response = refusal_response(&Refusal::bad_request("nope"));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&response, "content-type"), Some("text/plain"));
    assert_eq!(header(&response, "sec-websocket-version"), None);
    assert_eq!(response.body(), "nope");
}

fn bad(req: &http::Request<()>, reason: &str) {
    let r = refusal(req);
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r}");
    assert!(
        r.reason.contains(reason),
        "{:?} should mention {reason:?}",
        r.reason
    );
}

#[test]
fn bad_keys() {
    let key = |key: &'static [u8]| {
        let mut headers = BASE.to_vec();
        headers.push(("Sec-WebSocket-Key", key));
        headers.push(("Sec-WebSocket-Version", b"13"));
        get("/", &headers)
    };
    bad(&key(b"not base64 at all!!!!!!!"), "Sec-WebSocket-Key");
    bad(&key(b"AAAAAAAAAAAAAAAAAAAA"), "Sec-WebSocket-Key"); // 15 bytes
    bad(&key(b"AAAAAAAAAAAAAAAAAAAAAAAAAAA="), "Sec-WebSocket-Key"); // 20 bytes
    bad(&key(b""), "Sec-WebSocket-Key");
    let mut headers = BASE.to_vec();
    headers.push(("Sec-WebSocket-Version", b"13"));
    bad(&get("/", &headers), "missing Sec-WebSocket-Key");
}

#[test]
fn bad_hixie76_keys() {
    let hixie = |key1: &'static [u8], key2: Option<&'static [u8]>| {
        let mut headers = BASE.to_vec();
        headers.push(("Sec-WebSocket-Key1", key1));
        if let Some(key2) = key2 {
            headers.push(("Sec-WebSocket-Key2", key2));
        }
        get("/", &headers)
    };
    let good: &[u8] = b"12998 5 Y3 1  .P00";
    bad(
        &hixie(b"12345", Some(good)),
        "Sec-WebSocket-Key1: hixie-76 key has no spaces",
    );
    bad(
        &hixie(good, Some(b"12345")),
        "Sec-WebSocket-Key2: hixie-76 key has no spaces",
    );
    bad(&hixie(b"1 2 3", Some(good)), "multiple");
    bad(&hixie(b"12345678901 ", Some(good)), "over");
    let hundred: &'static [u8] = format!("{} 7", "1".repeat(100)).into_bytes().leak();
    bad(&hixie(hundred, Some(good)), "over");
    bad(&hixie(b"x y", Some(good)), "no digits");
    bad(&hixie(good, None), "both");
    let mut headers = BASE.to_vec();
    headers.push(("Sec-WebSocket-Key2", good));
    bad(&get("/", &headers), "both");
}

#[test]
fn bad_requests() {
    let mut post = rfc(&[]);
    *post.method_mut() = Method::POST;
    bad(&post, "must be GET");

    let mut http10 = rfc(&[]);
    *http10.version_mut() = http::Version::HTTP_10;
    bad(&http10, "HTTP/1.1");
    let mut hixie10 = draft_example();
    *hixie10.version_mut() = http::Version::HTTP_10;
    bad(&hixie10, "HTTP/1.1");

    let mut no_host = rfc(&[]);
    no_host.headers_mut().remove(HOST);
    bad(&no_host, "Host");

    let mut no_connection = rfc(&[]);
    no_connection.headers_mut().remove(CONNECTION);
    bad(&no_connection, "Connection");
    let mut keep_alive = rfc(&[]);
    keep_alive
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    bad(&keep_alive, "Connection");

    let mut no_upgrade = rfc(&[]);
    no_upgrade
        .headers_mut()
        .insert(UPGRADE, HeaderValue::from_static("h2c"));
    bad(&no_upgrade, "Upgrade");

    bad(
        &rfc(&[("Origin", b"http://\xff.example")]),
        "origin header is not valid UTF-8",
    );
    bad(
        &rfc(&[("Sec-WebSocket-Protocol", b"chat, \xfe")]),
        "not valid UTF-8",
    );
    let mut bad_host = rfc(&[]);
    bad_host
        .headers_mut()
        .insert(HOST, HeaderValue::from_bytes(b"ex\x80ample").unwrap());
    bad(&bad_host, "host header is not valid UTF-8");
    bad(
        &rfc(&[("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ==")]),
        "more than one",
    );
}

#[test]
fn a_body_is_refused() {
    // After the head, the bytes belong to the WebSocket: a body would be read as frames.
    bad(&rfc(&[("Content-Length", b"5")]), "no body");
    bad(&rfc(&[("Transfer-Encoding", b"chunked")]), "no body");
    bad(
        &rfc(&[("Content-Length", b"0"), ("Content-Length", b"1")]),
        "no body",
    );
    assert!(Request::parse(&rfc(&[("Content-Length", b"0")])).is_ok());
    assert!(Request::parse(&rfc(&[("Content-Length", b" 0 ")])).is_ok());
    // hixie-76's key3 may come as an 8-byte body (Upgrade::from_request reads it); other
    // lengths are refused there, or here.
    let mut key3_body = draft_example();
    key3_body
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("8"));
    assert!(Request::parse(&key3_body).is_ok());
    key3_body
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("9"));
    bad(&key3_body, "no body");
    let mut chunked = draft_example();
    chunked
        .headers_mut()
        .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    bad(&chunked, "no body");
    // hixie-75 and hybi have no key3.
    bad(&rfc(&[("Content-Length", b"8")]), "no body");
}

#[test]
fn lenient_where_http_is() {
    // Connection lists several tokens; values in any case; UTF-8 origins are fine.
    let mut req = rfc(&[("Origin", "http://bücher.example".as_bytes())]);
    req.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("keep-alive, UPGRADE"));
    req.headers_mut()
        .insert(UPGRADE, HeaderValue::from_static("WebSocket"));
    let req = Request::parse(&req).unwrap();
    assert_eq!(req.origin(), Some("http://bücher.example"));
    let response = req.accept(None, false);
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
}
