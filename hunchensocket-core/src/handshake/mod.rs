//! Opening handshakes as pure functions: which protocol a request speaks, the response that
//! accepts it, the response that refuses it, and the client's side of the same exchange.
//!
//! Nothing here does IO. A server calls [`is_upgrade_request`], then [`Request::parse`], then
//! either [`Request::accept`] (plus [`Request::hixie76_answer`] once key3 has arrived) or
//! [`refusal_response`]. A client calls [`client_handshake`] and checks the answer with
//! [`ClientCheck`].

use std::fmt;

use http::header::{CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};

use crate::Refusal;

mod client;
pub mod hixie;
pub mod rfc6455;

pub use client::{ClientCheck, ClientRequest, client_handshake};

const SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");
const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
const SEC_WEBSOCKET_KEY1: HeaderName = HeaderName::from_static("sec-websocket-key1");
const SEC_WEBSOCKET_KEY2: HeaderName = HeaderName::from_static("sec-websocket-key2");
const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
const SEC_WEBSOCKET_PROTOCOL: HeaderName = HeaderName::from_static("sec-websocket-protocol");
const SEC_WEBSOCKET_ORIGIN: HeaderName = HeaderName::from_static("sec-websocket-origin");
const SEC_WEBSOCKET_LOCATION: HeaderName = HeaderName::from_static("sec-websocket-location");
const WEBSOCKET_PROTOCOL: HeaderName = HeaderName::from_static("websocket-protocol");
const WEBSOCKET_ORIGIN: HeaderName = HeaderName::from_static("websocket-origin");
const WEBSOCKET_LOCATION: HeaderName = HeaderName::from_static("websocket-location");
const ORIGIN: HeaderName = HeaderName::from_static("origin");

/// The status text hixie-76 clients compare byte for byte.
const HIXIE76_REASON: &[u8] = b"WebSocket Protocol Handshake";
/// The status text hixie-75 clients compare byte for byte.
const HIXIE75_REASON: &[u8] = b"Web Socket Protocol Handshake";

/// The versions this crate answers in a 426 refusal, most preferred first.
pub const SUPPORTED_VERSIONS: &str = "13, 8, 7";

/// A WebSocket protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// draft-hixie-thewebsocketprotocol-75: no keys, text frames only.
    Hixie75,
    /// draft-hixie-thewebsocketprotocol-76 (= hybi-00): two keys, key3 and an MD5 answer.
    Hixie76,
    /// draft-ietf-hybi-thewebsocketprotocol-07: RFC 6455 framing, `Sec-WebSocket-Version: 7`.
    Hybi07,
    /// draft-ietf-hybi-thewebsocketprotocol-08: RFC 6455 framing, `Sec-WebSocket-Version: 8`.
    Hybi08,
    /// RFC 6455, `Sec-WebSocket-Version: 13`.
    Rfc6455,
}

impl Version {
    /// True for hixie-75 and hixie-76, which share the text-only framing.
    pub fn is_hixie(self) -> bool {
        matches!(self, Version::Hixie75 | Version::Hixie76)
    }

    /// A short name: `"hixie-75"`, `"hixie-76"`, `"hybi-07"`, `"hybi-08"` or `"rfc6455"`.
    pub fn name(self) -> &'static str {
        match self {
            Version::Hixie75 => "hixie-75",
            Version::Hixie76 => "hixie-76",
            Version::Hybi07 => "hybi-07",
            Version::Hybi08 => "hybi-08",
            Version::Rfc6455 => "rfc6455",
        }
    }

    /// The `Sec-WebSocket-Version` number of a hybi/RFC version; `None` for hixie.
    pub fn number(self) -> Option<u8> {
        match self {
            Version::Hixie75 | Version::Hixie76 => None,
            Version::Hybi07 => Some(7),
            Version::Hybi08 => Some(8),
            Version::Rfc6455 => Some(13),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// True when the request asks for a WebSocket upgrade at all: an `Upgrade` header whose
/// comma-separated tokens include "websocket" (ASCII case-insensitive). Everything else is
/// ordinary HTTP.
pub fn is_upgrade_request<B>(req: &http::Request<B>) -> bool {
    has_token(req.headers(), &UPGRADE, "websocket")
}

/// A validated upgrade request.
#[derive(Clone, Debug)]
pub struct Request {
    version: Version,
    origin: Option<String>,
    host: String,
    path: String,
    protocols: Vec<String>,
    keys: Keys,
}

/// What a version's response is computed from.
#[derive(Clone, Debug)]
enum Keys {
    /// hixie-75: nothing.
    None,
    /// hixie-76: the two key parts; key3 comes later.
    Hixie76(u32, u32),
    /// hybi/RFC: the `Sec-WebSocket-Accept` value, computed at parse time.
    Accept(String),
}

impl Request {
    /// Detects the protocol and validates the request (protocols.md §1, RFC 6455 §4.2.1).
    ///
    /// Detection: a `Sec-WebSocket-Version` of 13, 8 or 7 picks RFC 6455, hybi-08 or hybi-07,
    /// any other value is refused with `426 Upgrade Required`; otherwise `Sec-WebSocket-Key1`
    /// and `Sec-WebSocket-Key2` pick hixie-76; a lone `Sec-WebSocket-Key` (no version) is
    /// refused with 426; anything else is hixie-75.
    ///
    /// Every other refusal is `400 Bad Request` with a reason: a method other than GET (400
    /// rather than 405, since the request is a malformed handshake, not a resource that
    /// allows other methods), a version other than HTTP/1.1, no `Host`, no `websocket` token
    /// in `Upgrade`, no `upgrade` token in `Connection`, a `Sec-WebSocket-Key` that is not
    /// base64 of 16 bytes, an invalid hixie-76 key ([`hixie::key_part`]), only one of the two
    /// hixie-76 keys, a header used here that is repeated where one is expected, or that is
    /// not UTF-8.
    pub fn parse<B>(req: &http::Request<B>) -> Result<Request, Refusal> {
        if req.method() != Method::GET {
            return Err(Refusal::bad_request("WebSocket handshake must be GET"));
        }
        if req.version() != http::Version::HTTP_11 {
            return Err(Refusal::bad_request("WebSocket handshake must be HTTP/1.1"));
        }
        let headers = req.headers();
        if !has_token(headers, &UPGRADE, "websocket") {
            return Err(Refusal::bad_request("Upgrade header must name websocket"));
        }
        if !has_token(headers, &CONNECTION, "upgrade") {
            return Err(Refusal::bad_request(
                "Connection header must contain upgrade",
            ));
        }
        let host = single(headers, &HOST)?
            .ok_or_else(|| Refusal::bad_request("missing Host header"))?
            .to_owned();
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();

        let (version, keys) = detect(headers)?;
        let origin = match version {
            // Firefox 6-10 and Chrome 14-15 sent Sec-WebSocket-Origin; non-browser clients
            // of that time sometimes sent Origin instead.
            Version::Hybi07 | Version::Hybi08 => match single(headers, &SEC_WEBSOCKET_ORIGIN)? {
                Some(origin) => Some(origin),
                None => single(headers, &ORIGIN)?,
            },
            _ => single(headers, &ORIGIN)?,
        }
        .map(str::to_owned);
        let protocols = match version {
            Version::Hixie75 => whole_values(headers, &WEBSOCKET_PROTOCOL)?,
            Version::Hixie76 => whole_values(headers, &SEC_WEBSOCKET_PROTOCOL)?,
            _ => listed_values(headers, &SEC_WEBSOCKET_PROTOCOL)?,
        };
        Ok(Request {
            version,
            origin,
            host,
            path,
            protocols,
            keys,
        })
    }

    /// The protocol version the client speaks.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The client's origin: `Origin`, or for hybi-07/08 `Sec-WebSocket-Origin` (falling back
    /// to `Origin`). `None` when the client sent none (non-browser clients).
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The `Host` header as sent.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The request-target as sent: path and query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The subprotocols the client offers, in its order, trimmed.
    ///
    /// For hybi/RFC these are the comma-separated items of every `Sec-WebSocket-Protocol`
    /// header. hixie clients send one value that the server must echo exactly, so for hixie-76
    /// (`Sec-WebSocket-Protocol`) and hixie-75 (`WebSocket-Protocol`) each header is one item.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The `101` response that accepts the request (its body is empty).
    ///
    /// `protocol` is the application's choice of subprotocol; it is sent only if it is one of
    /// [`protocols`](Self::protocols), and ignored otherwise. `secure` picks `wss://` rather
    /// than `ws://` for the hixie `Location` header. hixie responses carry their legacy status
    /// text as a [`hyper::ext::ReasonPhrase`] extension.
    pub fn accept(&self, protocol: Option<&str>, secure: bool) -> Response<()> {
        let protocol = protocol.filter(|p| self.protocols.iter().any(|offered| offered == p));
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        match &self.keys {
            Keys::Accept(accept) => {
                headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
                headers.insert(SEC_WEBSOCKET_ACCEPT, value(accept));
                if let Some(protocol) = protocol {
                    headers.insert(SEC_WEBSOCKET_PROTOCOL, value(protocol));
                }
            }
            Keys::Hixie76(..) | Keys::None => {
                let (reason, [origin_name, location_name, protocol_name]) =
                    if self.version == Version::Hixie76 {
                        let names = [
                            SEC_WEBSOCKET_ORIGIN,
                            SEC_WEBSOCKET_LOCATION,
                            SEC_WEBSOCKET_PROTOCOL,
                        ];
                        (HIXIE76_REASON, names)
                    } else {
                        let names = [WEBSOCKET_ORIGIN, WEBSOCKET_LOCATION, WEBSOCKET_PROTOCOL];
                        (HIXIE75_REASON, names)
                    };
                headers.insert(UPGRADE, HeaderValue::from_static("WebSocket"));
                headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
                if let Some(origin) = &self.origin {
                    headers.insert(origin_name, value(origin));
                }
                let scheme = if secure { "wss" } else { "ws" };
                let location = format!("{scheme}://{}{}", self.host, self.path);
                headers.insert(location_name, value(&location));
                if let Some(protocol) = protocol {
                    headers.insert(protocol_name, value(protocol));
                }
                response
                    .extensions_mut()
                    .insert(hyper::ext::ReasonPhrase::from_static(reason));
            }
        }
        response
    }

    /// hixie-76 only: the 16 bytes to write right after the response headers, computed from
    /// key3 (the 8 bytes the client sent after its headers). `None` for other versions.
    pub fn hixie76_answer(&self, key3: &[u8; 8]) -> Option<[u8; 16]> {
        match self.keys {
            Keys::Hixie76(part1, part2) => Some(hixie::challenge_answer(part1, part2, key3)),
            _ => None,
        }
    }
}

/// Picks the version and checks its keys.
fn detect(headers: &HeaderMap) -> Result<(Version, Keys), Refusal> {
    if let Some(number) = single(headers, &SEC_WEBSOCKET_VERSION)? {
        let version = match number.trim() {
            "13" => Version::Rfc6455,
            "8" => Version::Hybi08,
            "7" => Version::Hybi07,
            _ => return Err(upgrade_required()),
        };
        let key = single(headers, &SEC_WEBSOCKET_KEY)?
            .ok_or_else(|| Refusal::bad_request("missing Sec-WebSocket-Key header"))?
            .trim();
        if !rfc6455::is_valid_key(key.as_bytes()) {
            return Err(Refusal::bad_request(
                "Sec-WebSocket-Key must be base64 of 16 bytes",
            ));
        }
        return Ok((version, Keys::Accept(rfc6455::accept_key(key.as_bytes()))));
    }
    let key1 = single(headers, &SEC_WEBSOCKET_KEY1)?;
    let key2 = single(headers, &SEC_WEBSOCKET_KEY2)?;
    match (key1, key2) {
        (Some(key1), Some(key2)) => {
            let part1 = hixie::key_part(key1).map_err(|r| with_prefix("Sec-WebSocket-Key1", r))?;
            let part2 = hixie::key_part(key2).map_err(|r| with_prefix("Sec-WebSocket-Key2", r))?;
            Ok((Version::Hixie76, Keys::Hixie76(part1, part2)))
        }
        (Some(_), None) | (None, Some(_)) => Err(Refusal::bad_request(
            "hixie-76 needs both Sec-WebSocket-Key1 and Sec-WebSocket-Key2",
        )),
        (None, None) if headers.contains_key(SEC_WEBSOCKET_KEY) => Err(upgrade_required()),
        (None, None) => Ok((Version::Hixie75, Keys::None)),
    }
}

fn upgrade_required() -> Refusal {
    Refusal::new(
        StatusCode::UPGRADE_REQUIRED,
        "unsupported WebSocket version",
    )
}

fn with_prefix(header: &str, refusal: Refusal) -> Refusal {
    Refusal {
        reason: format!("{header}: {}", refusal.reason),
        ..refusal
    }
}

/// A refusal as an HTTP response: the refusal's status, `Content-Type: text/plain` and the
/// reason as the body. A 426 also carries `Sec-WebSocket-Version: 13, 8, 7` (the versions
/// this crate speaks) and `Upgrade: websocket` (which HTTP requires of a 426).
pub fn refusal_response(refusal: &Refusal) -> Response<String> {
    let mut response = Response::new(refusal.reason.clone());
    *response.status_mut() = refusal.status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if refusal.status == StatusCode::UPGRADE_REQUIRED {
        headers.insert(
            SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static(SUPPORTED_VERSIONS),
        );
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    }
    response
}

/// True when any `name` header lists `token` among its comma-separated items (ASCII
/// case-insensitive). Works on raw bytes, so values that are not UTF-8 simply do not match.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The one `name` header as text: `None` when absent; refused when repeated or not UTF-8.
fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h str>, Refusal> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::bad_request(format!("more than one {name} header")));
    }
    text(name, first).map(Some)
}

/// Every `name` header, each one trimmed item; empty values skipped.
fn whole_values(headers: &HeaderMap, name: &HeaderName) -> Result<Vec<String>, Refusal> {
    let mut items = Vec::new();
    for v in headers.get_all(name) {
        let item = text(name, v)?.trim();
        if !item.is_empty() {
            items.push(item.to_owned());
        }
    }
    Ok(items)
}

/// The comma-separated items of every `name` header, trimmed; empty items skipped.
fn listed_values(headers: &HeaderMap, name: &HeaderName) -> Result<Vec<String>, Refusal> {
    let mut items = Vec::new();
    for v in headers.get_all(name) {
        for item in text(name, v)?.split(',').map(str::trim) {
            if !item.is_empty() {
                items.push(item.to_owned());
            }
        }
    }
    Ok(items)
}

fn text<'h>(name: &HeaderName, v: &'h HeaderValue) -> Result<&'h str, Refusal> {
    std::str::from_utf8(v.as_bytes())
        .map_err(|_| Refusal::bad_request(format!("{name} header is not valid UTF-8")))
}

/// A header value from text that came out of a header or a URI, so it is always valid.
fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("text taken from a header or URI is a valid header value")
}

#[cfg(test)]
mod tests {
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
}
