//! Opening handshakes as pure functions: which protocol a request speaks, the response that
//! accepts it, the response that refuses it, and the client's side of the same exchange.
//!
//! Nothing here does IO. A server calls [`is_upgrade_request`], then [`Request::parse`], then
//! either [`Request::accept`] (plus [`Request::hixie76_answer`] once key3 has arrived) or
//! [`refusal_response`]. A client calls [`client_handshake`] and checks the answer with
//! [`ClientCheck`].

use std::fmt;

use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING, UPGRADE};
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
    /// not UTF-8, or a body (a `Transfer-Encoding`, or a `Content-Length` other than 0; 8 is
    /// allowed for hixie-76, whose key3 some clients send as a body): the bytes after the head
    /// belong to the WebSocket, and a body would be read as frames.
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
        if has_body(headers, version) {
            return Err(Refusal::bad_request("a WebSocket handshake has no body"));
        }
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

/// Whether the request announces a body other than hixie-76's 8-byte key3.
fn has_body(headers: &HeaderMap, version: Version) -> bool {
    let allowed: &[&[u8]] = if version == Version::Hixie76 {
        &[b"0", b"8"]
    } else {
        &[b"0"]
    };
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .any(|v| !allowed.contains(&v.as_bytes().trim_ascii()))
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
#[path = "tests.rs"]
mod tests;
