//! The engine's settings: timeouts, limits, transports, CORS, and the hook that admits or
//! refuses a handshake.

use std::sync::Arc;
use std::time::Duration;

/// Which origins may make cross-origin requests (the CORS headers of polling responses).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorsOrigins {
    /// No CORS headers: only same-origin pages may poll (browsers' default).
    #[default]
    None,
    /// Any origin (`Access-Control-Allow-Origin` echoes the request's origin, or `*`).
    Any,
    /// Only these origins, compared exactly (`https://example.com`).
    List(Vec<String>),
}

/// Cross-origin settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cors {
    /// Which origins are allowed.
    pub origins: CorsOrigins,
    /// Whether to send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
}

/// Settings of an Engine.IO server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EngineConfig {
    /// The path served, with its trailing slash. Default `/socket.io/`.
    pub path: String,
    /// How often the server pings. Default 25 s.
    pub ping_interval: Duration,
    /// How long the client has to answer a ping. Default 20 s.
    pub ping_timeout: Duration,
    /// Largest polling POST body (and the figure announced to clients). Default 1 000 000.
    pub max_payload: usize,
    /// How long a polling POST may take to deliver its whole body. Past it the client gets
    /// `408 Request Timeout`, its connection is closed, and the session ends (its packets are
    /// lost; reason [`CloseReason::TransportError`](super::CloseReason::TransportError)): a body that stalls or trickles holds no
    /// connection and no buffer for longer. Default 30 s (longer than a stalled client could
    /// keep its session under the default heartbeat anyway).
    pub post_timeout: Duration,
    /// How long a WebSocket may take to complete its upgrade. Default 10 s.
    pub upgrade_timeout: Duration,
    /// Outbound bytes a session may have waiting before the flow-control policy applies:
    /// volatile messages are then dropped, and any other message ends the session as a slow
    /// consumer. Default 1 MiB.
    pub max_buffer: usize,
    /// Cross-origin settings. Default: none.
    pub cors: Cors,
    /// Whether long-polling is offered. Default true.
    pub polling: bool,
    /// Whether WebSocket is offered. Default true.
    pub websocket: bool,
    /// Limits of the WebSocket transport.
    pub ws: hunchensocket_core::Config,
    /// Asked before each handshake (a request without a session id, over polling or
    /// WebSocket), as engine.io's `allowRequest`: the place to check the origin, cookies or
    /// the client's address. Default: none, every handshake is allowed.
    pub allow_request: Option<AllowRequest>,
}

/// A check of each Engine.IO handshake request, given the request's head: `Ok(())` lets it
/// through; `Err(message)` refuses it with `403 {"code":4,"message":message}` (`"Forbidden"`
/// when the message is empty), before any session or WebSocket exists. The request's
/// extensions hold the client's [`PeerAddr`](hunchensocket_core::PeerAddr) when the server knows it.
#[derive(Clone)]
pub struct AllowRequest(Arc<RequestCheck>);

type RequestCheck = dyn Fn(&http::request::Parts) -> Result<(), String> + Send + Sync;

impl AllowRequest {
    /// Wraps a check.
    pub fn new(
        check: impl Fn(&http::request::Parts) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        AllowRequest(Arc::new(check))
    }

    /// Runs the check.
    pub fn check(&self, parts: &http::request::Parts) -> Result<(), String> {
        (self.0)(parts)
    }
}

impl std::fmt::Debug for AllowRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AllowRequest(..)")
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/socket.io/".into(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            post_timeout: Duration::from_secs(30),
            upgrade_timeout: Duration::from_secs(10),
            max_buffer: 1 << 20,
            cors: Cors::default(),
            polling: true,
            websocket: true,
            ws: hunchensocket_core::Config::default().with_max_message_size(1_000_000),
            allow_request: None,
        }
    }
}

impl EngineConfig {
    /// Sets [`EngineConfig::path`] (a trailing slash is added if missing).
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let mut path = path.into();
        if !path.ends_with('/') {
            path.push('/');
        }
        self.path = path;
        self
    }

    /// Sets the heartbeat: ping interval and ping timeout.
    pub fn with_heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.ping_timeout = timeout;
        self
    }

    /// Sets [`EngineConfig::max_payload`] (also the WebSocket message limit).
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self.ws.max_message_size = bytes;
        self
    }

    /// Sets [`EngineConfig::post_timeout`].
    pub fn with_post_timeout(mut self, timeout: Duration) -> Self {
        self.post_timeout = timeout;
        self
    }

    /// Sets [`EngineConfig::allow_request`].
    pub fn with_allow_request(
        mut self,
        check: impl Fn(&http::request::Parts) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.allow_request = Some(AllowRequest::new(check));
        self
    }

    /// Sets [`EngineConfig::upgrade_timeout`].
    pub fn with_upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.upgrade_timeout = timeout;
        self
    }

    /// Sets [`EngineConfig::max_buffer`].
    pub fn with_max_buffer(mut self, bytes: usize) -> Self {
        self.max_buffer = bytes;
        self
    }

    /// Sets the CORS settings.
    pub fn with_cors(mut self, cors: Cors) -> Self {
        self.cors = cors;
        self
    }

    /// Chooses the transports offered.
    pub fn with_transports(mut self, polling: bool, websocket: bool) -> Self {
        self.polling = polling;
        self.websocket = websocket;
        self
    }
}
