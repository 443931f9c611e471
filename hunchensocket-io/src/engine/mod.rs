//! Engine.IO v4: sessions over HTTP long-polling and WebSocket (every version the core speaks),
//! the upgrade from one to the other, the server-driven heartbeat, and the HTTP routing of it all.
//!
//! An [`Engine`] serves one path (default `/socket.io/`). The application plugs in through
//! [`Handler`]: it is told when a session opens, gets its messages, and is told when it ends.

mod config;
pub mod packet;
mod polling;
mod session;
mod websocket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hunchensocket_core::{Body, PeerAddr, Upgrade};

pub use config::{AllowRequest, Cors, CorsOrigins, EngineConfig};
pub use packet::{Packet, Payload};
pub(crate) use session::new_sid as new_id;
pub(crate) use session::percent_decode;
pub use session::{CloseReason, HandshakeInfo, SendError, Session, Sid};

use session::{SessionOwner, Transport};

/// The application side of an engine.
///
/// The callbacks run on the connection's task and must not block: spawn what takes time.
pub trait Handler: Send + Sync + 'static {
    /// Per-session data the application keeps in the [`Session`].
    type Data: Send + Sync + 'static;
    /// Makes the data of a new session.
    fn data(&self, info: &HandshakeInfo) -> Self::Data;
    /// A session has opened (its open packet is on its way).
    fn on_open(&self, session: &Arc<Session<Self::Data>>);
    /// A message from the client.
    fn on_message(&self, session: &Arc<Session<Self::Data>>, payload: Payload);
    /// The session has ended; called once.
    fn on_close(&self, session: &Arc<Session<Self::Data>>, reason: CloseReason);
}

/// The Engine.IO error codes, answered as `400 {"code":N,"message":"..."}` (`403` for
/// [`Forbidden`](EngineError::Forbidden)); `as u8` gives the code.
#[doc(hidden)] // Public for the fuzz targets only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// 0: no `transport`, or one that is not offered.
    UnknownTransport = 0,
    /// 1: a `sid` that names no open session.
    UnknownSid = 1,
    /// 2: a handshake that is not a `GET`.
    BadHandshakeMethod = 2,
    /// 3: a request that does not fit its transport or its session's state.
    BadRequest = 3,
    /// 4: an origin that the CORS settings do not allow.
    Forbidden = 4,
    /// 5: an `EIO` other than 4.
    UnsupportedProtocolVersion = 5,
}

/// What a request asks of the engine, as far as it can be told without the sessions: the
/// answer of [`route_request`] when it does not refuse the request.
#[doc(hidden)] // Public for the fuzz targets only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A CORS preflight (`OPTIONS`).
    Preflight,
    /// Long-polling: a handshake (a `GET` with no `sid`), or a request of session `sid`.
    Polling {
        /// The session named, if any.
        sid: Option<String>,
    },
    /// A WebSocket upgrade: a new session, or the upgrade of session `sid`.
    WebSocket {
        /// The session named, if any.
        sid: Option<String>,
    },
}

/// Reads a request as the engine does before it looks for a session: its method, its `Origin`
/// against the CORS settings, its query's `EIO`, `transport` and `sid`, and whether it asks
/// for a WebSocket upgrade. Pure: the engine answers a refusal here with its error code, and
/// looks up the session of an accepted request afterwards (which may still refuse it).
#[doc(hidden)] // Public for the fuzz targets only.
pub fn route_request<B>(
    config: &EngineConfig,
    req: &http::Request<B>,
) -> Result<Route, EngineError> {
    if req.method() == Method::OPTIONS {
        return Ok(Route::Preflight);
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if !origin_allowed(&config.cors, origin) {
            return Err(EngineError::Forbidden);
        }
    }
    let query = Query::parse(req.uri().query().unwrap_or(""));
    if query.eio.as_deref() != Some("4") {
        return Err(EngineError::UnsupportedProtocolVersion);
    }
    let upgrade = hunchensocket_core::handshake::is_upgrade_request(req);
    match query.transport.as_deref() {
        Some("polling") if config.polling && !upgrade => {}
        Some("websocket") if config.websocket && upgrade => {}
        Some("websocket") if config.websocket => return Err(EngineError::BadRequest),
        Some("polling") if config.polling => return Err(EngineError::BadRequest),
        _ => return Err(EngineError::UnknownTransport),
    }
    let sid = query.sid;
    if upgrade {
        return Ok(Route::WebSocket { sid });
    }
    if sid.is_none() && req.method() != Method::GET {
        return Err(EngineError::BadHandshakeMethod);
    }
    Ok(Route::Polling { sid })
}

/// Whether the CORS settings let a page of `origin` make requests.
fn origin_allowed(cors: &Cors, origin: &HeaderValue) -> bool {
    match &cors.origins {
        CorsOrigins::None | CorsOrigins::Any => true,
        CorsOrigins::List(list) => origin.to_str().is_ok_and(|o| list.iter().any(|a| a == o)),
    }
}

impl EngineError {
    fn message(self) -> &'static str {
        match self {
            EngineError::UnknownTransport => "Transport unknown",
            EngineError::UnknownSid => "Session ID unknown",
            EngineError::BadHandshakeMethod => "Bad handshake method",
            EngineError::BadRequest => "Bad request",
            EngineError::Forbidden => "Forbidden",
            EngineError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }
}

/// An Engine.IO server for one path, with the application's [`Handler`].
pub struct Engine<H: Handler> {
    pub(crate) inner: Arc<EngineInner<H>>,
}

impl<H: Handler> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Engine {
            inner: self.inner.clone(),
        }
    }
}

impl<H: Handler> std::fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.inner.config.path)
            .finish_non_exhaustive()
    }
}

pub(crate) struct EngineInner<H: Handler> {
    pub(crate) config: EngineConfig,
    pub(crate) handler: H,
    sessions: Mutex<HashMap<Sid, Arc<Session<H::Data>>>>,
    me: Weak<EngineInner<H>>,
}

impl<H: Handler> SessionOwner<H::Data> for EngineInner<H> {
    fn closed(&self, session: &Arc<Session<H::Data>>, reason: CloseReason) {
        // The server ended a polling session while no GET waited: what it queued last (a
        // DISCONNECT, say) and the close packet go to the client's next GET, as engine.io
        // does, so the session stays findable until then (at most a heartbeat).
        let linger = {
            let st = session.lock();
            matches!(st.transport, Transport::Polling)
                && !st.upgrading
                && reason.delivered_on_next_poll()
        };
        if linger {
            if let Some(me) = self.me.upgrade() {
                let lingering = session.clone();
                let grace = self.config.ping_interval + self.config.ping_timeout;
                let spawned = tokio::runtime::Handle::try_current().map(|rt| {
                    rt.spawn(async move {
                        tokio::time::sleep(grace).await;
                        me.forget(&lingering);
                    })
                });
                if spawned.is_err() {
                    self.forget(session);
                }
            }
        } else {
            self.forget(session);
        }
        self.handler.on_close(session, reason);
    }
}

impl<H: Handler> EngineInner<H> {
    /// Takes `session` out of the table (if it is still the one under its id).
    fn forget(&self, session: &Arc<Session<H::Data>>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions
            .get(session.id())
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.remove(session.id());
        }
    }
}

impl<H: Handler> Engine<H> {
    /// An engine with `config` and `handler`.
    pub fn new(config: EngineConfig, handler: H) -> Self {
        let inner = Arc::new_cyclic(|me| EngineInner {
            config,
            handler,
            sessions: Mutex::new(HashMap::new()),
            me: me.clone(),
        });
        Engine { inner }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The application handler.
    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    /// Whether `req` is for this engine (its path is the engine's path).
    pub fn matches<B>(&self, req: &http::Request<B>) -> bool {
        let path = req.uri().path();
        let own = &self.inner.config.path;
        path == own || path == own.trim_end_matches('/')
    }

    /// The session with this id, if it is open.
    pub fn session(&self, sid: &str) -> Option<Arc<Session<H::Data>>> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sid)
            .cloned()
    }

    /// Number of sessions whose long-polling GET is waiting for packets.
    pub fn waiting_polls(&self) -> usize {
        let sessions: Vec<_> = self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        sessions.iter().filter(|s| s.lock().polling).count()
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends every session with `reason`.
    pub fn close_all(&self, reason: CloseReason) {
        let sessions: Vec<_> = self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for s in sessions {
            s.close(reason);
        }
    }

    /// Answers one HTTP request for this engine: a polling GET or POST, a WebSocket upgrade, or
    /// a CORS preflight.
    pub async fn handle<B>(&self, req: http::Request<B>) -> Response<Body>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<hunchensocket_core::BoxError>,
    {
        let origin = req.headers().get(header::ORIGIN).cloned();
        let mut res = self.route(req).await;
        self.inner.cors_headers(origin.as_ref(), res.headers_mut());
        res
    }

    async fn route<B>(&self, req: http::Request<B>) -> Response<Body>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<hunchensocket_core::BoxError>,
    {
        let inner = &self.inner;
        let (upgrade, sid) = match route_request(&inner.config, &req) {
            Ok(Route::Preflight) => return preflight(&req),
            Ok(Route::Polling { sid }) => (false, sid),
            Ok(Route::WebSocket { sid }) => (true, sid),
            Err(refusal) => return error(refusal),
        };
        let session = match &sid {
            Some(sid) => match self.session(sid) {
                Some(s) => Some(s),
                None => return error(EngineError::UnknownSid),
            },
            None => None,
        };
        // A handshake: the application may refuse it.
        let mut req = req;
        if let (None, Some(allow)) = (&session, &inner.config.allow_request) {
            if req.method() == Method::GET {
                let (parts, body) = req.into_parts();
                if let Err(message) = allow.check(&parts) {
                    return error_with(EngineError::Forbidden, &message);
                }
                req = http::Request::from_parts(parts, body);
            }
        }
        if upgrade {
            return self.upgrade(req, session).await;
        }
        match session {
            // route_request() refused a handshake that is not a GET.
            None => self.open_polling(req),
            Some(session) => {
                if !matches!(session.lock().transport, Transport::Polling) {
                    // Upgraded: HTTP requests with this sid are refused.
                    return error(EngineError::BadRequest);
                }
                match *req.method() {
                    Method::GET => {
                        let (answer, ended) = polling::poll(&session).await;
                        if ended {
                            inner.forget(&session);
                        }
                        answer
                    }
                    Method::POST => polling::post(inner, &session, req.into_body()).await,
                    _ => error(EngineError::BadRequest),
                }
            }
        }
    }

    fn open_polling<B>(&self, req: http::Request<B>) -> Response<Body> {
        let info = handshake_info(&req);
        let session = self.inner.create(Transport::Polling, info);
        let open = self.inner.open_packet(&session, true);
        self.inner.started(&session, true);
        text_response(packet::encode_payload(&[open]))
    }

    async fn upgrade<B>(
        &self,
        req: http::Request<B>,
        session: Option<Arc<Session<H::Data>>>,
    ) -> Response<Body>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<hunchensocket_core::BoxError>,
    {
        let info = handshake_info(&req);
        // A WebSocket for a session that has one already, or is getting one: as the reference
        // server does (engine.io's `onWebSocket`), its handshake completes and the server then
        // closes it; the session is not touched.
        let mut surplus = false;
        if let Some(session) = &session {
            let mut st = session.lock();
            if st.upgrading || !matches!(st.transport, Transport::Polling) || st.closed.is_some() {
                surplus = true;
            } else {
                st.upgrading = true;
            }
        }
        let (upgrade, _parts) = match Upgrade::from_request(req, &self.inner.config.ws).await {
            Ok(pair) => pair,
            Err(refusal) => {
                if let Some(s) = session.as_ref().filter(|_| !surplus) {
                    s.lock().upgrading = false;
                }
                return hunchensocket_core::handshake::refusal_response(&refusal).map(|b| {
                    Full::new(Bytes::from(b))
                        .map_err(|never| match never {})
                        .boxed()
                });
            }
        };
        let (response, pending) = upgrade.into_response();
        if surplus {
            tokio::spawn(websocket::refuse(pending));
            return response.map(|()| empty());
        }
        let engine = self.clone();
        tokio::spawn(async move {
            match session {
                Some(session) => websocket::upgrade(engine, session, pending).await,
                None => websocket::open(engine, pending, info).await,
            }
        });
        response.map(|()| empty())
    }
}

impl<H: Handler> EngineInner<H> {
    pub(crate) fn create(
        &self,
        transport: Transport,
        info: HandshakeInfo,
    ) -> Arc<Session<H::Data>> {
        let data = self.handler.data(&info);
        let owner: Weak<dyn SessionOwner<H::Data>> = self.me.clone();
        let session = Arc::new(Session::new(
            session::new_sid(),
            transport,
            info,
            self.config.max_buffer,
            owner,
            data,
        ));
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.id().clone(), session.clone());
        session
    }

    pub(crate) fn open_packet(&self, session: &Session<H::Data>, polling: bool) -> Packet {
        let upgrades = if polling && self.config.websocket {
            vec!["websocket".to_string()]
        } else {
            vec![]
        };
        packet::OpenInfo {
            sid: session.id().to_string(),
            upgrades,
            ping_interval: self.config.ping_interval.as_millis() as u64,
            ping_timeout: self.config.ping_timeout.as_millis() as u64,
            max_payload: self.config.max_payload as u64,
        }
        .packet()
    }

    /// Tells the application and starts the heartbeat.
    /// Tells the application; starts the heartbeat task of a session that opened over
    /// polling (one that opened on a WebSocket beats in its read loop instead).
    pub(crate) fn started(&self, session: &Arc<Session<H::Data>>, heartbeat_task: bool) {
        self.handler.on_open(session);
        if heartbeat_task {
            tokio::spawn(session::heartbeat(
                Arc::downgrade(session),
                self.config.ping_interval,
                self.config.ping_timeout,
            ));
        }
    }

    fn cors_headers(&self, origin: Option<&HeaderValue>, headers: &mut http::HeaderMap) {
        let cors = &self.config.cors;
        let allow = match (&cors.origins, origin) {
            (CorsOrigins::None, _) => return,
            (CorsOrigins::Any, None) if !cors.credentials => HeaderValue::from_static("*"),
            (_, Some(origin)) if origin_allowed(cors, origin) => origin.clone(),
            _ => return,
        };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if origin.is_some() {
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        if cors.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// The query parameters Engine.IO reads.
#[derive(Debug, Default)]
struct Query {
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
}

impl Query {
    /// Reads the parameters as [`HandshakeInfo::query`] does.
    fn parse(query: &str) -> Query {
        Query {
            eio: session::query_param(query, "EIO"),
            transport: session::query_param(query, "transport"),
            sid: session::query_param(query, "sid"),
        }
    }
}

/// What a session keeps of its opening request. Copied, not cloned: hyper's header values and
/// URI are slices of the connection's read buffer, and a clone would keep that whole buffer
/// (8 KiB or more) alive for as long as the session lives.
fn handshake_info<B>(req: &http::Request<B>) -> HandshakeInfo {
    let mut headers = http::HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        let mut copy = HeaderValue::from_bytes(value.as_bytes())
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        copy.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), copy);
    }
    let uri = req
        .uri()
        .to_string()
        .parse()
        .unwrap_or_else(|_| req.uri().clone());
    HandshakeInfo {
        headers,
        uri,
        peer: req.extensions().get::<PeerAddr>().map(|p| p.0),
        issued: std::time::SystemTime::now(),
    }
}

pub(crate) fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn text_response(text: String) -> Response<Body> {
    let mut res = Response::new(body(text));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    res
}

pub(crate) fn error(kind: EngineError) -> Response<Body> {
    error_with(kind, "")
}

/// An error response with `message` (the code's own message when empty).
fn error_with(kind: EngineError, message: &str) -> Response<Body> {
    let status = if kind == EngineError::Forbidden {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::BAD_REQUEST
    };
    let message = if message.is_empty() {
        kind.message()
    } else {
        message
    };
    let json = serde_json::json!({ "code": kind as u8, "message": message }).to_string();
    let mut res = Response::new(body(json));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn preflight<B>(req: &http::Request<B>) -> Response<Body> {
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = Query::parse("EIO=4&transport=polling&t=N8hyd6w&sid=abc");
        assert_eq!(q.eio.as_deref(), Some("4"));
        assert_eq!(q.transport.as_deref(), Some("polling"));
        assert_eq!(q.sid.as_deref(), Some("abc"));
        let q = Query::parse("");
        assert!(q.eio.is_none() && q.transport.is_none() && q.sid.is_none());
    }

    #[test]
    fn routes() {
        let both = EngineConfig::default();
        let request = |method: &str, query: &str, headers: &[(&str, &str)]| {
            let mut req = http::Request::builder()
                .method(method)
                .uri(format!("/socket.io/?{query}"));
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            req.body(()).unwrap()
        };
        let upgrade = [("upgrade", "websocket"), ("connection", "Upgrade")];
        let polling = |sid: Option<&str>| {
            Ok(Route::Polling {
                sid: sid.map(Into::into),
            })
        };
        let websocket = |sid: Option<&str>| {
            Ok(Route::WebSocket {
                sid: sid.map(Into::into),
            })
        };
        let cases = [
            (
                request("GET", "EIO=4&transport=polling", &[]),
                polling(None),
            ),
            (
                request("POST", "EIO=4&transport=polling&sid=s", &[]),
                polling(Some("s")),
            ),
            (
                request("GET", "EIO=4&transport=websocket", &upgrade),
                websocket(None),
            ),
            (
                request("GET", "EIO=4&transport=websocket&sid=s", &upgrade),
                websocket(Some("s")),
            ),
            (request("OPTIONS", "", &[]), Ok(Route::Preflight)),
            (
                request("GET", "EIO=3&transport=polling", &[]),
                Err(EngineError::UnsupportedProtocolVersion),
            ),
            (
                request("GET", "transport=polling", &[]),
                Err(EngineError::UnsupportedProtocolVersion),
            ),
            (
                request("GET", "EIO=4&transport=flash", &[]),
                Err(EngineError::UnknownTransport),
            ),
            (
                request("GET", "EIO=4", &[]),
                Err(EngineError::UnknownTransport),
            ),
            (
                request("GET", "EIO=4&transport=websocket", &[]),
                Err(EngineError::BadRequest),
            ),
            (
                request("GET", "EIO=4&transport=polling", &upgrade),
                Err(EngineError::BadRequest),
            ),
            (
                request("POST", "EIO=4&transport=polling", &[]),
                Err(EngineError::BadHandshakeMethod),
            ),
        ];
        for (req, answer) in cases {
            assert_eq!(route_request(&both, &req), answer, "{req:?}");
        }
        let websocket_only = EngineConfig::default().with_transports(false, true);
        let req = request("GET", "EIO=4&transport=polling", &[]);
        assert_eq!(
            route_request(&websocket_only, &req),
            Err(EngineError::UnknownTransport)
        );
        let listed = EngineConfig::default().with_cors(Cors {
            origins: CorsOrigins::List(vec!["https://a.example".into()]),
            credentials: false,
        });
        let from = |origin| request("GET", "EIO=4&transport=polling", &[("origin", origin)]);
        assert_eq!(
            route_request(&listed, &from("https://a.example")),
            polling(None)
        );
        assert_eq!(
            route_request(&listed, &from("https://b.example")),
            Err(EngineError::Forbidden)
        );
        assert_eq!(
            route_request(&both, &from("https://b.example")),
            polling(None)
        );
    }

    #[test]
    fn error_bodies() {
        let res = error(EngineError::UnknownSid);
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let res = error(EngineError::Forbidden);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(EngineError::UnsupportedProtocolVersion as u8, 5);
        assert_eq!(EngineError::UnknownTransport.message(), "Transport unknown");
    }
}
