//! The client's side of the opening handshake: the request bytes and the check of the answer.

use http::{HeaderName, HeaderValue, StatusCode};

use super::{Version, hixie, rfc6455};
use crate::{Error, Refusal};

/// What a client asks for.
#[derive(Clone, Debug, Default)]
pub struct ClientRequest {
    /// `host[:port]`, exactly as it goes in the `Host` header.
    pub host: String,
    /// The request-target (path and query); `"/"` when empty.
    pub path: String,
    /// Whether the connection runs over TLS (`wss://`); hixie servers echo it in their
    /// `Location` header, which the client checks.
    pub secure: bool,
    /// The `Origin` to send. hixie-75/76 require one and get `http://{host}` when this is `None`.
    pub origin: Option<String>,
    /// Subprotocols to offer, most preferred first. hixie versions can offer at most one.
    pub protocols: Vec<String>,
    /// Extra headers to send, after the handshake's own. They may not replace a header the
    /// handshake sets itself (`Host`, `Upgrade`, `Connection`, `Origin`, `Sec-WebSocket-*`).
    pub headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// A request for `path` on `host`, with no origin, subprotocols or extra headers, over
    /// plain TCP.
    pub fn new(host: impl Into<String>, path: impl Into<String>) -> Self {
        ClientRequest {
            host: host.into(),
            path: path.into(),
            ..ClientRequest::default()
        }
    }
}

/// State for checking the server's answer to [`client_handshake`].
#[derive(Clone, Debug)]
pub struct ClientCheck {
    version: Version,
    /// hybi/RFC: our `Sec-WebSocket-Key`.
    key: Option<String>,
    /// hixie-76: the 16 bytes the server must send after its headers.
    hixie76: Option<[u8; 16]>,
    /// hixie: the `Origin` we sent, which the server must echo.
    origin: Option<String>,
    /// hixie: the URL the server must echo as its `Location`.
    location: Option<String>,
    protocols: Vec<String>,
    /// Whether the caller offered extensions through an extra header.
    extensions: bool,
}

/// The bytes of the opening handshake for `version`, plus the state needed to check the
/// answer.
///
/// Every version is supported. For hixie-76 the buffer ends with the 8 key3 bytes, sent right
/// after the headers as real clients do. Returns [`Error::Url`] when a field cannot go on the
/// wire: an empty host, control characters or line breaks in any field, a path with spaces,
/// a subprotocol that is not an HTTP token (or more than one for hixie), an invalid extra
/// header, or an extra header that would replace one of the handshake's own.
pub fn client_handshake(
    req: &ClientRequest,
    version: Version,
) -> Result<(Vec<u8>, ClientCheck), Error> {
    if req.host.is_empty() || !req.host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Url(format!("invalid host {:?}", req.host)));
    }
    let path = if req.path.is_empty() {
        "/"
    } else {
        req.path.as_str()
    };
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Url(format!("invalid request-target {path:?}")));
    }
    let origin = match (&req.origin, version.is_hixie()) {
        (Some(origin), _) => Some(origin.clone()),
        (None, true) => Some(format!("http://{}", req.host)),
        (None, false) => None,
    };
    if let Some(origin) = &origin {
        if !is_value(origin) {
            return Err(Error::Url(format!("invalid origin {origin:?}")));
        }
    }
    for protocol in &req.protocols {
        let valid = if version.is_hixie() {
            !protocol.is_empty() && protocol.bytes().all(|b| (0x20..0x7F).contains(&b))
        } else {
            is_token(protocol)
        };
        if !valid {
            return Err(Error::Url(format!("invalid subprotocol {protocol:?}")));
        }
    }
    if version.is_hixie() && req.protocols.len() > 1 {
        return Err(Error::Url(format!(
            "{version} can offer only one subprotocol"
        )));
    }
    let mut extensions = false;
    for (name, value) in &req.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::Url(format!("invalid header name {name:?}")))?;
        if !is_value(value) {
            return Err(Error::Url(format!("invalid value for header {name}")));
        }
        if header == "sec-websocket-extensions" {
            extensions = true;
        } else if reserved(&header) {
            return Err(Error::Url(format!("header {name} is set by the handshake")));
        }
    }

    let mut head = format!("GET {path} HTTP/1.1\r\n");
    let mut line = |name: &str, value: &str| {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    };
    let protocol = req.protocols.join(", ");
    let mut key = None;
    let mut key3 = None;
    let mut hixie76 = None;
    match version {
        Version::Rfc6455 | Version::Hybi07 | Version::Hybi08 => {
            let nonce = rfc6455::client_key();
            line("Host", &req.host);
            line("Upgrade", "websocket");
            line("Connection", "Upgrade");
            line("Sec-WebSocket-Key", &nonce);
            let number = match version {
                Version::Hybi07 => "7",
                Version::Hybi08 => "8",
                _ => "13",
            };
            line("Sec-WebSocket-Version", number);
            if let Some(origin) = &origin {
                let name = if version == Version::Rfc6455 {
                    "Origin"
                } else {
                    "Sec-WebSocket-Origin"
                };
                line(name, origin);
            }
            if !protocol.is_empty() {
                line("Sec-WebSocket-Protocol", &protocol);
            }
            key = Some(nonce);
        }
        Version::Hixie76 => {
            let keys = hixie::client_keys();
            line("Host", &req.host);
            line("Connection", "Upgrade");
            line("Upgrade", "WebSocket");
            line("Origin", origin.as_deref().unwrap_or_default());
            line("Sec-WebSocket-Key1", &keys.key1);
            line("Sec-WebSocket-Key2", &keys.key2);
            if !protocol.is_empty() {
                line("Sec-WebSocket-Protocol", &protocol);
            }
            key3 = Some(keys.key3);
            hixie76 = Some(keys.expected);
        }
        Version::Hixie75 => {
            // The draft's order: some hixie-75 servers compared these lines byte for byte.
            line("Upgrade", "WebSocket");
            line("Connection", "Upgrade");
            line("Host", &req.host);
            line("Origin", origin.as_deref().unwrap_or_default());
            if !protocol.is_empty() {
                line("WebSocket-Protocol", &protocol);
            }
        }
    }
    for (name, value) in &req.headers {
        line(name, value);
    }
    head.push_str("\r\n");

    let mut bytes = head.into_bytes();
    if let Some(key3) = key3 {
        bytes.extend_from_slice(&key3);
    }
    let location = version.is_hixie().then(|| {
        let scheme = if req.secure { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", req.host)
    });
    let check = ClientCheck {
        version,
        key,
        hixie76,
        origin: origin.filter(|_| version.is_hixie()),
        location,
        protocols: req.protocols.clone(),
        extensions,
    };
    Ok((bytes, check))
}

impl ClientCheck {
    /// The version the request was made for.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Checks the parsed response head: the status code and the headers as (name, value)
    /// pairs, names in any case (the caller parses with httparse).
    ///
    /// Needs status 101, `Upgrade: websocket` and `Connection: upgrade` (tokens, ASCII
    /// case-insensitive); for hybi/RFC the right `Sec-WebSocket-Accept` and no
    /// `Sec-WebSocket-Extensions` unless the caller offered some; for hixie the origin and
    /// location echoed exactly. A subprotocol in the answer must be one that was offered.
    ///
    /// Returns the chosen subprotocol. Every failure is [`Error::Handshake`] with a
    /// [`Refusal`] carrying the response's status (502 if that status is not a valid code) and
    /// a reason.
    pub fn check(&self, status: u16, headers: &[(&str, &[u8])]) -> Result<Option<String>, Error> {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let fail = |reason: String| Error::from(Refusal::new(code, reason));
        if status != 101 {
            return Err(fail(format!("server answered {status} instead of 101")));
        }
        if !has_token(headers, "upgrade", b"websocket") {
            return Err(fail("response lacks Upgrade: websocket".into()));
        }
        if !has_token(headers, "connection", b"upgrade") {
            return Err(fail("response lacks Connection: upgrade".into()));
        }
        let protocol_header = match self.version {
            Version::Hixie75 => "websocket-protocol",
            _ => "sec-websocket-protocol",
        };
        if let Some(key) = &self.key {
            let accept = first(headers, "sec-websocket-accept")
                .ok_or_else(|| fail("response lacks Sec-WebSocket-Accept".into()))?;
            if !rfc6455::verify_accept(key.as_bytes(), accept) {
                return Err(fail("wrong Sec-WebSocket-Accept".into()));
            }
            let extensions = first(headers, "sec-websocket-extensions").unwrap_or_default();
            if !self.extensions && !extensions.trim_ascii().is_empty() {
                return Err(fail(
                    "server chose an extension that was not offered".into(),
                ));
            }
        } else {
            let (origin_header, location_header) = match self.version {
                Version::Hixie75 => ("websocket-origin", "websocket-location"),
                _ => ("sec-websocket-origin", "sec-websocket-location"),
            };
            for (header, expected) in [
                (origin_header, &self.origin),
                (location_header, &self.location),
            ] {
                let expected = expected.as_deref().unwrap_or_default();
                if first(headers, header).map(<[u8]>::trim_ascii) != Some(expected.as_bytes()) {
                    return Err(fail(format!("response {header} does not match {expected}")));
                }
            }
        }
        let Some(chosen) = first(headers, protocol_header) else {
            return Ok(None);
        };
        let chosen = std::str::from_utf8(chosen)
            .map(str::trim)
            .unwrap_or_default();
        if self.protocols.iter().any(|offered| offered == chosen) {
            Ok(Some(chosen.to_owned()))
        } else {
            Err(fail(format!(
                "server chose subprotocol {chosen:?} that was not offered"
            )))
        }
    }

    /// hixie-76: the 16 bytes the server must send right after its headers; `None` otherwise.
    pub fn hixie76_expected(&self) -> Option<[u8; 16]> {
        self.hixie76
    }
}

/// Headers the handshake writes itself, which extra headers may not repeat.
fn reserved(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(
        name,
        "host" | "upgrade" | "connection" | "origin" | "websocket-protocol"
    ) || name.starts_with("sec-websocket-")
}

/// A header value we can write: no control characters other than tab.
fn is_value(s: &str) -> bool {
    HeaderValue::from_str(s).is_ok()
}

/// An HTTP token (RFC 9110 §5.6.2), as subprotocol names must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The value of the first header named `name` (ASCII case-insensitive).
fn first<'h>(headers: &[(&str, &'h [u8])], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// True when any header named `name` lists `token` among its comma-separated items.
fn has_token(headers: &[(&str, &[u8])], name: &str, token: &[u8]) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .any(|(_, v)| {
            v.split(|b| *b == b',')
                .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::Request;

    /// Parses request bytes as a server would: the head into an `http::Request`, plus the
    /// bytes after it.
    fn parse_request(bytes: &[u8]) -> (http::Request<()>, Vec<u8>) {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(len) = parsed.parse(bytes).unwrap() else {
            panic!("incomplete request head");
        };
        assert_eq!(parsed.version, Some(1));
        let mut builder = http::Request::builder()
            .method(parsed.method.unwrap())
            .uri(parsed.path.unwrap())
            .version(http::Version::HTTP_11);
        for h in parsed.headers.iter() {
            builder = builder.header(h.name, h.value);
        }
        (builder.body(()).unwrap(), bytes[len..].to_vec())
    }

    /// Feeds a server response back to the client check, as the client's parser would.
    fn check_response(
        check: &ClientCheck,
        response: &http::Response<()>,
    ) -> Result<Option<String>, Error> {
        let headers: Vec<(&str, &[u8])> = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        check.check(response.status().as_u16(), &headers)
    }

    fn request() -> ClientRequest {
        ClientRequest {
            protocols: vec!["chat".into(), "superchat".into()],
            origin: Some("http://example.com".into()),
            ..ClientRequest::new("example.com:8080", "/socket?x=1")
        }
    }

    #[test]
    fn rfc6455_round_trip() {
        for version in [Version::Rfc6455, Version::Hybi08, Version::Hybi07] {
            let (bytes, check) = client_handshake(&request(), version).unwrap();
            let (http_req, rest) = parse_request(&bytes);
            assert!(rest.is_empty());
            assert!(crate::handshake::is_upgrade_request(&http_req));
            let server = Request::parse(&http_req).unwrap();
            assert_eq!(server.version(), version);
            assert_eq!(server.host(), "example.com:8080");
            assert_eq!(server.path(), "/socket?x=1");
            assert_eq!(server.origin(), Some("http://example.com"));
            assert_eq!(server.protocols(), ["chat", "superchat"]);
            assert_eq!(server.hixie76_answer(&[0; 8]), None);
            assert_eq!(check.hixie76_expected(), None);
            assert_eq!(check.version(), version);

            let chosen = check_response(&check, &server.accept(Some("superchat"), false));
            assert_eq!(chosen.unwrap().as_deref(), Some("superchat"));
            let none = check_response(&check, &server.accept(None, false));
            assert_eq!(none.unwrap(), None);
        }
    }

    #[test]
    fn rfc6455_request_bytes() {
        let mut req = request();
        req.headers.push(("Cookie".into(), "a=b".into()));
        let (bytes, _) = client_handshake(&req, Version::Rfc6455).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("GET /socket?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n"));
        for line in [
            "\r\nUpgrade: websocket\r\n",
            "\r\nConnection: Upgrade\r\n",
            "\r\nSec-WebSocket-Version: 13\r\n",
            "\r\nOrigin: http://example.com\r\n",
            "\r\nSec-WebSocket-Protocol: chat, superchat\r\n",
            "\r\nCookie: a=b\r\n\r\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text:?}");
        }
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn hixie76_round_trip() {
        let mut req = request();
        req.protocols = vec!["sample".into()];
        req.origin = None;
        req.secure = true;
        let (bytes, check) = client_handshake(&req, Version::Hixie76).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with(
            "GET /socket?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nConnection: Upgrade\r\n\
             Upgrade: WebSocket\r\nOrigin: http://example.com:8080\r\nSec-WebSocket-Key1: "
        ));
        let (http_req, rest) = parse_request(&bytes);
        let key3: [u8; 8] = rest
            .as_slice()
            .try_into()
            .expect("8 key3 bytes after the head");
        let server = Request::parse(&http_req).unwrap();
        assert_eq!(server.version(), Version::Hixie76);
        assert_eq!(server.protocols(), ["sample"]);
        assert_eq!(server.hixie76_answer(&key3), check.hixie76_expected());
        assert!(check.hixie76_expected().is_some());

        let chosen = check_response(&check, &server.accept(Some("sample"), true));
        assert_eq!(chosen.unwrap().as_deref(), Some("sample"));
        // The server believing it is on plain TCP gives the wrong Location.
        assert!(check_response(&check, &server.accept(Some("sample"), false)).is_err());
    }

    #[test]
    fn hixie75_round_trip() {
        let mut req = request();
        req.protocols = vec!["sample".into()];
        let (bytes, check) = client_handshake(&req, Version::Hixie75).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(
            "GET /socket?x=1 HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\
             Host: example.com:8080\r\nOrigin: http://example.com\r\nWebSocket-Protocol: sample\r\n"
        ));
        let (http_req, rest) = parse_request(&bytes);
        assert!(rest.is_empty());
        let server = Request::parse(&http_req).unwrap();
        assert_eq!(server.version(), Version::Hixie75);
        let chosen = check_response(&check, &server.accept(Some("sample"), false));
        assert_eq!(chosen.unwrap().as_deref(), Some("sample"));
        assert_eq!(check.hixie76_expected(), None);
    }

    fn refused(check: &ClientCheck, status: u16, headers: &[(&str, &[u8])]) -> Refusal {
        match check.check(status, headers) {
            Err(Error::Handshake(refusal)) => *refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_answers() {
        let (bytes, check) = client_handshake(&request(), Version::Rfc6455).unwrap();
        let (http_req, _) = parse_request(&bytes);
        let server = Request::parse(&http_req).unwrap();
        let good = server.accept(None, false);
        let accept = good.headers()["sec-websocket-accept"].as_bytes();

        let base: Vec<(&str, &[u8])> = vec![
            ("Upgrade", b"WebSocket"),
            ("Connection", b"keep-alive, Upgrade"),
            ("Sec-WebSocket-Accept", accept),
        ];
        assert_eq!(check.check(101, &base).unwrap(), None);

        let r = refused(&check, 200, &base);
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.reason.contains("200"));
        assert_eq!(refused(&check, 403, &[]).status, StatusCode::FORBIDDEN);
        assert_eq!(refused(&check, 1000, &[]).status, StatusCode::BAD_GATEWAY);

        let mut wrong = base.clone();
        wrong[2].1 = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        assert!(refused(&check, 101, &wrong).reason.contains("Accept"));
        assert!(refused(&check, 101, &base[..2]).reason.contains("Accept"));
        assert!(refused(&check, 101, &base[1..]).reason.contains("Upgrade"));
        let no_connection = [base[0], base[2]];
        assert!(
            refused(&check, 101, &no_connection)
                .reason
                .contains("Connection")
        );

        let mut unoffered = base.clone();
        unoffered.push(("Sec-WebSocket-Protocol", b"other"));
        let r = refused(&check, 101, &unoffered);
        assert_eq!(r.status, StatusCode::SWITCHING_PROTOCOLS);
        assert!(r.reason.contains("other"));

        let mut extension = base.clone();
        extension.push(("Sec-WebSocket-Extensions", b"permessage-deflate"));
        assert!(
            refused(&check, 101, &extension)
                .reason
                .contains("extension")
        );
    }

    #[test]
    fn offered_extensions_pass_through() {
        let mut req = request();
        req.headers.push((
            "Sec-WebSocket-Extensions".into(),
            "permessage-deflate".into(),
        ));
        let (bytes, check) = client_handshake(&req, Version::Rfc6455).unwrap();
        let (http_req, _) = parse_request(&bytes);
        let mut response = Request::parse(&http_req).unwrap().accept(None, false);
        response.headers_mut().insert(
            "sec-websocket-extensions",
            HeaderValue::from_static("permessage-deflate"),
        );
        assert_eq!(check_response(&check, &response).unwrap(), None);
    }

    #[test]
    fn hixie_rejects_wrong_origin() {
        let mut req = request();
        req.protocols.clear();
        let (bytes, check) = client_handshake(&req, Version::Hixie75).unwrap();
        let (http_req, _) = parse_request(&bytes);
        let mut response = Request::parse(&http_req).unwrap().accept(None, false);
        response
            .headers_mut()
            .insert("websocket-origin", HeaderValue::from_static("http://evil"));
        let err = check_response(&check, &response).unwrap_err();
        assert!(err.to_string().contains("websocket-origin"), "{err}");
    }

    #[test]
    fn refuses_unusable_requests() {
        let cases: Vec<(ClientRequest, Version)> = vec![
            (ClientRequest::new("", "/"), Version::Rfc6455),
            (ClientRequest::new("a b", "/"), Version::Rfc6455),
            (ClientRequest::new("host", "/a b"), Version::Rfc6455),
            (ClientRequest::new("host", "/\r\nX: y"), Version::Rfc6455),
            (
                ClientRequest {
                    origin: Some("http://x\r\n".into()),
                    ..ClientRequest::new("h", "/")
                },
                Version::Rfc6455,
            ),
            (
                ClientRequest {
                    protocols: vec!["a,b".into()],
                    ..ClientRequest::new("h", "/")
                },
                Version::Rfc6455,
            ),
            (
                ClientRequest {
                    protocols: vec!["a".into(), "b".into()],
                    ..ClientRequest::new("h", "/")
                },
                Version::Hixie76,
            ),
            (
                ClientRequest {
                    headers: vec![("Sec-WebSocket-Key".into(), "x".into())],
                    ..ClientRequest::new("h", "/")
                },
                Version::Rfc6455,
            ),
            (
                ClientRequest {
                    headers: vec![("Bad Name".into(), "x".into())],
                    ..ClientRequest::new("h", "/")
                },
                Version::Rfc6455,
            ),
            (
                ClientRequest {
                    headers: vec![("X".into(), "a\nb".into())],
                    ..ClientRequest::new("h", "/")
                },
                Version::Rfc6455,
            ),
        ];
        for (req, version) in cases {
            match client_handshake(&req, version) {
                Err(Error::Url(_)) => {}
                other => panic!("{req:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn empty_path_is_root() {
        let (bytes, _) = client_handshake(&ClientRequest::new("h", ""), Version::Rfc6455).unwrap();
        assert!(bytes.starts_with(b"GET / HTTP/1.1\r\n"));
    }
}
