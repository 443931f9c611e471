//! The Socket.IO server: its handle and builder, the hyper/tower service it mounts as, and a
//! one-call `serve`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Response;
use hunchensocket_core::{Body, BoxError};
use serde::Serialize;

use crate::ack::EmitError;
use crate::adapter::{AdapterError, AdapterFactory, InMemory, Recovery};
use crate::client::SioHandler;
use crate::engine::{CloseReason, Cors, Engine, EngineConfig};
use crate::handler::ConnectHandler;
use crate::namespace::{Namespace, NamespaceInner};
use crate::operators::Operators;
use crate::socket::{IntoRooms, Socket, read, write};

type NamespacePredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Settings of a Socket.IO server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IoConfig {
    /// The Engine.IO layer: path, heartbeat, payload limit, CORS, transports, flow control.
    pub engine: EngineConfig,
    /// How long a client has to join a namespace after connecting. Default 45 s.
    pub connect_timeout: Duration,
    /// How long `emit_with_ack` waits by default. Default 5 s.
    pub ack_timeout: Duration,
    /// Whether the bundled JavaScript client is served at `{path}client.js`. Default true.
    pub serve_client: bool,
    /// Most binary attachments one packet may announce; a client announcing more is
    /// disconnected (parse error) before any of them is read. Default 10, as socket.io-parser.
    /// The attachments of one packet together may hold at most `engine.max_payload` bytes.
    pub max_attachments: usize,
    /// Most events a client may send to a namespace before its connect middleware has admitted
    /// it (they wait, and are handled once it is admitted). One more closes the connection
    /// (reason [`CloseReason::BadRequest`]). Default 256.
    pub max_pending_events: usize,
    /// Most bytes of such waiting events (their JSON and attachments). Past it the connection
    /// is closed as above. Default 1 MiB.
    pub max_pending_bytes: usize,
    /// Connection state recovery (Socket.IO's `connectionStateRecovery`): a client that drops
    /// and comes back within the allowed time gets its socket id, rooms and data back, and every
    /// event it missed. Off (`None`) by default. See [`Recovery`] for the bounds.
    pub recovery: Option<Recovery>,
}

impl Default for IoConfig {
    fn default() -> Self {
        IoConfig {
            engine: EngineConfig::default(),
            connect_timeout: Duration::from_secs(45),
            ack_timeout: Duration::from_secs(5),
            serve_client: true,
            max_attachments: 10,
            max_pending_events: 256,
            max_pending_bytes: 1 << 20,
            recovery: None,
        }
    }
}

/// Builds a [`SocketIo`].
#[must_use]
pub struct Builder {
    config: IoConfig,
    adapter: Arc<dyn AdapterFactory>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The path served (default `/socket.io/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.engine = self.config.engine.with_path(path);
        self
    }

    /// Ping interval and timeout (default 25 s and 20 s).
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.config.engine = self.config.engine.with_heartbeat(interval, timeout);
        self
    }

    /// Largest message or polling payload accepted (default 1 000 000 bytes).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.engine = self.config.engine.with_max_payload(bytes);
        self
    }

    /// Outbound bytes a client may have waiting before volatile emits are dropped and, past
    /// that, the client is disconnected as a slow consumer (default 1 MiB).
    pub fn max_buffer(mut self, bytes: usize) -> Self {
        self.config.engine = self.config.engine.with_max_buffer(bytes);
        self
    }

    /// Cross-origin settings (default: none).
    pub fn cors(mut self, cors: Cors) -> Self {
        self.config.engine = self.config.engine.with_cors(cors);
        self
    }

    /// The transports offered (default both).
    pub fn transports(mut self, polling: bool, websocket: bool) -> Self {
        self.config.engine = self.config.engine.with_transports(polling, websocket);
        self
    }

    /// How long a WebSocket may take to complete an upgrade (default 10 s).
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.config.engine = self.config.engine.with_upgrade_timeout(timeout);
        self
    }

    /// How long a polling POST may take to deliver its body (default 30 s); past it the
    /// client gets `408` and its session ends.
    pub fn post_timeout(mut self, timeout: Duration) -> Self {
        self.config.engine = self.config.engine.with_post_timeout(timeout);
        self
    }

    /// A check of each handshake, before any session exists (engine.io's `allowRequest`):
    /// `Err(message)` refuses it with `403 {"code":4,"message":...}`. See
    /// [`AllowRequest`](crate::engine::AllowRequest).
    pub fn allow_request(
        mut self,
        check: impl Fn(&http::request::Parts) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.config.engine = self.config.engine.with_allow_request(check);
        self
    }

    /// How long a client has to join a namespace (default 45 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// How long acks are awaited by default (default 5 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.config.ack_timeout = timeout;
        self
    }

    /// Whether to serve the bundled JavaScript client at `{path}client.js` (default true).
    pub fn serve_client(mut self, serve: bool) -> Self {
        self.config.serve_client = serve;
        self
    }

    /// Most binary attachments one packet may announce (default 10).
    pub fn max_attachments(mut self, count: usize) -> Self {
        self.config.max_attachments = count;
        self
    }

    /// Most events a client may send before it is admitted to a namespace (default 256).
    pub fn max_pending_events(mut self, count: usize) -> Self {
        self.config.max_pending_events = count;
        self
    }

    /// Most bytes of events a client may send before it is admitted to a namespace (default
    /// 1 MiB).
    pub fn max_pending_bytes(mut self, bytes: usize) -> Self {
        self.config.max_pending_bytes = bytes;
        self
    }

    /// Turns connection state recovery on (see [`IoConfig::recovery`]).
    pub fn connection_state_recovery(mut self, recovery: Recovery) -> Self {
        self.config.recovery = Some(recovery);
        self
    }

    /// Every setting at once.
    pub fn config(mut self, config: IoConfig) -> Self {
        self.config = config;
        self
    }

    /// What makes the adapter of each namespace (default: [`InMemory`], rooms of this
    /// process only). An adapter that spans several server processes (`hunchensocket-redis`)
    /// makes broadcasts, `fetch_sockets`, `join`/`leave`/`disconnect` on selections and
    /// server-side events reach every node.
    pub fn adapter(mut self, factory: impl AdapterFactory) -> Self {
        self.adapter = Arc::new(factory);
        self
    }

    /// The server.
    pub fn build(self) -> SocketIo {
        let inner = Arc::new_cyclic(|me| IoInner {
            engine: Engine::new(self.config.engine.clone(), SioHandler { io: me.clone() }),
            config: self.config,
            adapter: self.adapter,
            namespaces: Arc::new(RwLock::new(HashMap::new())),
            dynamic: RwLock::new(Vec::new()),
            closed: OnceLock::new(),
        });
        SocketIo(inner)
    }
}

pub(crate) struct IoInner {
    pub(crate) config: IoConfig,
    engine: Engine<SioHandler>,
    adapter: Arc<dyn AdapterFactory>,
    /// The namespaces by path (shared with the dynamic children, which leave it when unused).
    namespaces: Arc<RwLock<Namespaces>>,
    /// Dynamic namespaces: a predicate on the path, and the namespace whose handler and
    /// middleware each new child copies.
    dynamic: RwLock<Vec<(NamespacePredicate, Arc<NamespaceInner>)>>,
    closed: OnceLock<()>,
}

type Namespaces = HashMap<String, Arc<NamespaceInner>>;

impl IoInner {
    /// The namespace at `path` for a socket about to join it: a registered one, or a new child
    /// of a matching dynamic one. The socket counts as joining it (see
    /// [`NamespaceInner::joining`]) until it is admitted or refused.
    ///
    /// A dynamic child is removed once no socket is in it or joining it (Socket.IO's
    /// `cleanupEmptyChildNamespaces`), so that every path a predicate accepts does not stay a
    /// namespace forever; the next join makes a new one.
    pub(crate) fn namespace(&self, path: &str) -> Option<Arc<NamespaceInner>> {
        if let Some(ns) = read(&self.namespaces).get(path) {
            ns.joining();
            return Some(ns.clone());
        }
        let template = read(&self.dynamic)
            .iter()
            .find(|(pred, _)| pred(path))
            .map(|(_, t)| t.clone())?;
        let mut namespaces = write(&self.namespaces);
        let ns = namespaces.entry(path.to_string()).or_insert_with(|| {
            let child = NamespaceInner::new(
                path.to_string(),
                template.handler.clone(),
                read(&template.middlewares).clone(),
                &*self.adapter,
                &self.config,
            );
            child.remove_when_unused(remover(Arc::downgrade(&self.namespaces)));
            child
        });
        ns.joining();
        Some(ns.clone())
    }
}

/// Removes a dynamic child from `namespaces` if it is still there and unused: checked under
/// the table's write lock, which every lookup that counts a joining socket holds too.
fn remover(namespaces: Weak<RwLock<Namespaces>>) -> crate::namespace::OnUnused {
    Box::new(move |ns: &NamespaceInner| {
        let Some(namespaces) = namespaces.upgrade() else {
            return;
        };
        let removed = {
            let mut table = write(&namespaces);
            let current = table
                .get(&ns.path)
                .is_some_and(|n| std::ptr::eq(Arc::as_ptr(n), ns));
            if current && ns.is_unused() {
                table.remove(&ns.path)
            } else {
                None
            }
        };
        if let Some(removed) = removed {
            removed.adapter.close();
        }
    })
}

/// A Socket.IO server. Cheap to clone; every clone is the same server.
///
/// ```no_run
/// use hunchensocket_io::{AckSender, SocketIo, Socket};
/// use serde_json::Value;
///
/// # async fn run() -> std::io::Result<()> {
/// let io = SocketIo::new();
/// io.ns("/", |socket: Socket| async move {
///     socket.on("chat", |socket: Socket, msg: String, ack: AckSender| async move {
///         let _ = socket.broadcast().emit("chat", &msg);
///         let _ = ack.send("delivered");
///     });
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// io.serve(listener).await
/// # }
/// ```
#[derive(Clone)]
pub struct SocketIo(pub(crate) Arc<IoInner>);

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo")
            .field("path", &self.0.config.engine.path)
            .finish_non_exhaustive()
    }
}

impl Default for SocketIo {
    fn default() -> Self {
        SocketIo::new()
    }
}

impl SocketIo {
    /// A server with the default settings.
    pub fn new() -> Self {
        SocketIo::builder().build()
    }

    /// A builder for other settings.
    pub fn builder() -> Builder {
        Builder {
            config: IoConfig::default(),
            adapter: Arc::new(InMemory),
        }
    }

    /// The server's settings.
    pub fn config(&self) -> &IoConfig {
        &self.0.config
    }

    /// Registers the namespace at `path` (Socket.IO's `io.of(path).on("connection", handler)`),
    /// replacing one registered there before. The handler gets each socket that joins.
    pub fn ns<F, Fut>(&self, path: impl Into<String>, handler: F) -> Namespace
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let path = normalize(path.into());
        let inner = NamespaceInner::new(
            path.clone(),
            connect_handler(handler),
            Vec::new(),
            &*self.0.adapter,
            &self.0.config,
        );
        if let Some(old) = write(&self.0.namespaces).insert(path, inner.clone()) {
            old.adapter.close();
        }
        Namespace(inner)
    }

    /// Registers dynamic namespaces: any path `predicate` accepts is created on its first
    /// connection, with this handler and the middleware added to the returned template.
    ///
    /// Such a child namespace is removed when its last socket leaves (or its only join is
    /// refused), as Socket.IO's `cleanupEmptyChildNamespaces` does: [`of`](Self::of) no longer
    /// finds it, and the next connection to that path makes a new one. A [`Namespace`] handle
    /// kept from before then reaches none of the new one's sockets.
    pub fn dynamic_ns<P, F, Fut>(&self, predicate: P, handler: F) -> Namespace
    where
        P: Fn(&str) -> bool + Send + Sync + 'static,
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let template = NamespaceInner::new(
            "<dynamic>".into(),
            connect_handler(handler),
            Vec::new(),
            &InMemory,
            &self.0.config,
        );
        write(&self.0.dynamic).push((Arc::new(predicate), template.clone()));
        Namespace(template)
    }

    /// The namespace at `path`, if registered (or created dynamically).
    pub fn of(&self, path: &str) -> Option<Namespace> {
        read(&self.0.namespaces)
            .get(&normalize(path.to_string()))
            .cloned()
            .map(Namespace)
    }

    fn main_ns(&self) -> Operators {
        match self.of("/") {
            Some(ns) => ns.broadcast(),
            None => {
                let ns = self.ns("/", |_socket: Socket| async {});
                ns.broadcast()
            }
        }
    }

    /// Emits to every socket of the main namespace (`/`).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.main_ns().emit(event, data)
    }

    /// The sockets of `/` in `rooms`.
    pub fn to(&self, rooms: impl IntoRooms) -> Operators {
        self.main_ns().to(rooms)
    }

    /// The sockets of `/` not in `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> Operators {
        self.main_ns().except(rooms)
    }

    /// Every socket of `/`, acks awaited for at most `timeout`.
    pub fn timeout(&self, timeout: Duration) -> Operators {
        self.main_ns().timeout(timeout)
    }

    /// Every socket of `/`, emits droppable for lagging clients.
    pub fn volatile(&self) -> Operators {
        self.main_ns().volatile()
    }

    /// Every socket of `/` on this server instance.
    pub fn local(&self) -> Operators {
        self.main_ns().local()
    }

    /// Completes when the adapter of every namespace registered so far can reach the other
    /// nodes (with the in-memory adapter, at once). Start accepting clients after it, so that
    /// the first broadcasts reach every node.
    pub async fn ready(&self) -> Result<(), AdapterError> {
        let adapters: Vec<_> = read(&self.0.namespaces)
            .values()
            .map(|ns| ns.adapter.clone())
            .collect();
        for adapter in adapters {
            adapter.ready().await?;
        }
        Ok(())
    }

    /// Number of open Engine.IO connections.
    pub fn connections(&self) -> usize {
        self.0.engine.len()
    }

    /// Whether `req` is for this server: its path, or the bundled client's.
    pub fn matches<B>(&self, req: &http::Request<B>) -> bool {
        self.0.engine.matches(req) || self.is_client_request(req)
    }

    fn is_client_request<B>(&self, req: &http::Request<B>) -> bool {
        self.0.config.serve_client
            && req
                .uri()
                .path()
                .strip_prefix(self.0.config.engine.path.as_str())
                == Some("client.js")
    }

    /// Answers one HTTP request for this server (polling, WebSocket upgrade, preflight, or the
    /// bundled client).
    pub async fn handle<B>(&self, req: http::Request<B>) -> Response<Body>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if self.is_client_request(&req) {
            return crate::client_js::respond(&req);
        }
        self.0.engine.handle(req).await
    }

    /// A hyper and tower service answering this server's path, and `404` elsewhere.
    pub fn service(&self) -> IoService {
        IoService { io: self.clone() }
    }

    /// Shuts down gracefully: every socket is disconnected (reason "server shutting down"),
    /// then every connection is closed.
    pub async fn close(&self) {
        if self.0.closed.set(()).is_err() {
            return;
        }
        self.0.engine.close_all(CloseReason::ServerShutdown);
        let namespaces: Vec<_> = read(&self.0.namespaces).values().cloned().collect();
        for ns in namespaces {
            ns.adapter.close();
        }
        // Let the close frames and disconnect handlers run.
        tokio::task::yield_now().await;
    }

    /// Serves on `listener` until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves on `listener` (other paths get `404`) until `signal` completes, then shuts down
    /// gracefully.
    pub async fn serve_with_shutdown(
        self,
        listener: tokio::net::TcpListener,
        signal: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let io = self.clone();
        let server = hunchensocket_core::Server::new()
            .config(self.0.config.engine.ws.clone())
            .fallback(move |req: http::Request<hyper::body::Incoming>| {
                let io = io.clone();
                async move { io.service().respond(req).await }
            });
        server
            .serve_with_shutdown(listener, async move {
                signal.await;
                self.close().await;
            })
            .await
    }
}

fn normalize(mut path: String) -> String {
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    path
}

fn connect_handler<F, Fut>(handler: F) -> ConnectHandler
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |socket| Box::pin(handler(socket)))
}

/// The server as a hyper (and tower) service: its path is answered, anything else gets `404`.
/// Mount it beside other routes, or give it to `hyper::server::conn::http1` with upgrades on.
#[derive(Clone, Debug)]
pub struct IoService {
    io: SocketIo,
}

impl IoService {
    async fn respond<B>(self, req: http::Request<B>) -> Response<Body>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if self.io.matches(&req) {
            self.io.handle(req).await
        } else {
            hunchensocket_core::text_response(http::StatusCode::NOT_FOUND, "not found\n")
        }
    }
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<B> hyper::service::Service<http::Request<B>> for IoService
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, req: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.respond(req).await) })
    }
}

impl<B> tower_service::Service<http::Request<B>> for IoService
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.respond(req).await) })
    }
}
