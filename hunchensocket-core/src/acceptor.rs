//! The acceptor: serves a listener, passing ordinary requests to the application and upgrade
//! requests to WebSocket dispatchers; plain TCP or TLS; graceful shutdown.
//!
//! This keeps the shape of the original Hunchensocket: dispatchers are tried in order, each
//! looks at the request and declines, or accepts with a session that is given the socket's
//! [`Sender`] and yields the handler of its messages.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::config::Config;
use crate::error::{Refusal, Result};
use crate::handshake::{self, Version};
use crate::message::{CloseCode, Message};
use crate::socket::{Sender, WeakSender, WebSocket};
use crate::upgrade::{Upgrade, Upgraded};

/// The response body type of the acceptor (ordinary responses are boxed into it).
pub type Body = BoxBody<Bytes, BoxError>;

/// A boxed error of a response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Fallback = Arc<dyn Fn(http::Request<Incoming>) -> BoxFuture<Response<Body>> + Send + Sync>;
type OriginPolicy = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;
type MessageHandler = Box<dyn FnMut(Message) -> BoxFuture<()> + Send>;

/// The client's address, in the extensions of every request the acceptor serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// What a dispatcher sees of an upgrade request.
#[derive(Debug)]
pub struct Handshake<'a> {
    parts: &'a http::request::Parts,
    request: &'a handshake::Request,
    peer: SocketAddr,
}

impl Handshake<'_> {
    /// The request's path (without the query).
    pub fn path(&self) -> &str {
        self.parts.uri.path()
    }

    /// The request's URI.
    pub fn uri(&self) -> &http::Uri {
        &self.parts.uri
    }

    /// The request's headers.
    pub fn headers(&self) -> &http::HeaderMap {
        &self.parts.headers
    }

    /// The WebSocket version the client speaks.
    pub fn version(&self) -> Version {
        self.request.version()
    }

    /// The client's origin, if it sent one.
    pub fn origin(&self) -> Option<&str> {
        self.request.origin()
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> &[String] {
        self.request.protocols()
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

/// Looks at an upgrade request and declines it (`None`) or accepts it.
///
/// Any `Fn(&Handshake) -> Option<Accept>` is a dispatcher.
pub trait Dispatcher: Send + Sync + 'static {
    /// Declines (`None`: the next dispatcher is asked) or accepts the request.
    fn dispatch(&self, handshake: &Handshake<'_>) -> Option<Accept>;
}

impl<F> Dispatcher for F
where
    F: Fn(&Handshake<'_>) -> Option<Accept> + Send + Sync + 'static,
{
    fn dispatch(&self, handshake: &Handshake<'_>) -> Option<Accept> {
        self(handshake)
    }
}

enum Run {
    Session(Box<dyn FnOnce(Sender) -> MessageHandler + Send>),
    Socket(Box<dyn FnOnce(WebSocket<Upgraded>) -> BoxFuture<()> + Send>),
}

/// A dispatcher's acceptance: what runs on the socket, and the subprotocol chosen.
pub struct Accept {
    protocol: Option<String>,
    run: Run,
}

impl std::fmt::Debug for Accept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accept")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Accept {
    /// Accepts with a session: `setup` is given the socket's [`Sender`] when it opens and returns
    /// the handler that is called with each message received, one at a time, in order (the
    /// final [`Message::Close`] included).
    pub fn session<S, H, Fut>(setup: S) -> Accept
    where
        S: FnOnce(Sender) -> H + Send + 'static,
        H: FnMut(Message) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let run = Run::Session(Box::new(move |sender| {
            let mut handler = setup(sender);
            Box::new(move |msg| Box::pin(handler(msg)) as BoxFuture<()>)
        }));
        Accept {
            protocol: None,
            run,
        }
    }

    /// Accepts and hands the whole socket to `f`, on a task of its own.
    pub fn socket<F, Fut>(f: F) -> Accept
    where
        F: FnOnce(WebSocket<Upgraded>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Accept {
            protocol: None,
            run: Run::Socket(Box::new(move |ws| Box::pin(f(ws)))),
        }
    }

    /// Chooses a subprotocol (ignored unless the client offered it).
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Chooses the first subprotocol the client offered, if it offered any: what a server that
    /// speaks every subprotocol the same way answers (a hixie-76 client fails the connection
    /// when its offer is not echoed).
    pub fn first_protocol(mut self, handshake: &Handshake<'_>) -> Self {
        self.protocol = handshake.protocols().first().cloned();
        self
    }
}

/// A WebSocket acceptor that serves ordinary HTTP beside WebSocket upgrades.
///
/// ```no_run
/// use hunchensocket_core::{Accept, Message, Server};
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// Server::new()
///     .dispatch(|hs: &hunchensocket_core::Handshake<'_>| {
///         (hs.path() == "/echo").then(|| {
///             Accept::session(|sender| {
///                 move |msg: Message| {
///                     let sender = sender.clone();
///                     async move {
///                         if msg.is_data() {
///                             let _ = sender.send(msg).await;
///                         }
///                     }
///                 }
///             })
///         })
///     })
///     .serve(listener)
///     .await
/// # }
/// ```
pub struct Server {
    config: Config,
    dispatchers: Vec<Box<dyn Dispatcher>>,
    fallback: Fallback,
    origin: Option<OriginPolicy>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    drain_timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("dispatchers", &self.dispatchers.len())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

/// A plain response with a text body.
pub fn text_response(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    let mut res = Response::new(full(Bytes::from(text.into())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

fn refusal(refusal: &Refusal) -> Response<Body> {
    let mut res = handshake::refusal_response(refusal).map(|s| full(Bytes::from(s)));
    res.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    res
}

impl Server {
    /// An acceptor with no dispatchers (every upgrade gets `404`) whose ordinary requests get `404`.
    pub fn new() -> Self {
        Server {
            config: Config::default(),
            dispatchers: Vec::new(),
            fallback: Arc::new(|_req| {
                Box::pin(async { text_response(StatusCode::NOT_FOUND, "not found\n") })
            }),
            origin: None,
            tls: None,
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// Sets the limits and timeouts of every connection and socket.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Adds a dispatcher; they are asked in the order they were added.
    pub fn dispatch(mut self, dispatcher: impl Dispatcher) -> Self {
        self.dispatchers.push(Box::new(dispatcher));
        self
    }

    /// Sets the handler of ordinary (non-upgrade) requests.
    ///
    /// A server with no dispatchers sends every request to it, upgrade requests included, so
    /// that a layer above can upgrade them itself with [`Upgrade::from_request`]. Every request
    /// carries the client's [`PeerAddr`] in its extensions.
    pub fn fallback<F, Fut, B>(mut self, handler: F) -> Self
    where
        F: Fn(http::Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<B>> + Send + 'static,
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let handler = Arc::new(handler);
        self.fallback = Arc::new(move |req| {
            let fut = handler(req);
            Box::pin(async move { fut.await.map(|b| b.map_err(Into::into).boxed()) })
        });
        self
    }

    /// Sets the origin policy: upgrades whose origin it refuses get `403`. All are allowed by default.
    pub fn allow_origin(
        mut self,
        policy: impl Fn(Option<&str>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.origin = Some(Arc::new(policy));
        self
    }

    /// Serves TLS (`wss://`, `https://`) with this configuration.
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
    }

    /// Serves TLS with a PEM certificate chain and private key.
    pub fn tls_pem(
        self,
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<Self> {
        Ok(self.tls(crate::tls::server_config_from_pem(cert_chain, key)?))
    }

    /// How long a graceful shutdown waits for connections to finish. Default 10 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Serves `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves `listener` until `signal` completes, then shuts down gracefully: stops accepting,
    /// closes every socket (1001, or `FF 00` over hixie), finishes ordinary requests, and waits
    /// for connections to end (at most the drain timeout).
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let drain_timeout = self.drain_timeout;
        let inner = Arc::new(Inner {
            config: self.config,
            dispatchers: self.dispatchers,
            fallback: self.fallback,
            origin: self.origin,
            secure: self.tls.is_some(),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
            sockets: std::sync::Mutex::new(Sockets::default()),
        });
        let tls = self.tls;
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::pin!(signal);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut signal => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let guard = inner.track();
            let inner = inner.clone();
            let stop = stop_rx.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _guard = guard;
                match tls {
                    None => serve_connection(inner, stream, peer, stop).await,
                    Some(acceptor) => {
                        let timeout = inner.config.handshake_timeout;
                        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => serve_connection(inner, stream, peer, stop).await,
                            Ok(Err(e)) => tracing::debug!("tls handshake with {peer} failed: {e}"),
                            Err(_) => tracing::debug!("tls handshake with {peer} timed out"),
                        }
                    }
                }
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        inner.close_sockets();
        let _ = tokio::time::timeout(drain_timeout, inner.drained()).await;
        Ok(())
    }
}

struct Inner {
    config: Config,
    dispatchers: Vec<Box<dyn Dispatcher>>,
    fallback: Fallback,
    origin: Option<OriginPolicy>,
    secure: bool,
    /// Connections and sockets still running, for the drain.
    active: AtomicUsize,
    idle: Notify,
    /// Open sockets, for the 1001 close of a graceful shutdown.
    sockets: std::sync::Mutex<Sockets>,
}

/// The open sockets of a server, as weak senders (they do not keep a socket open).
#[derive(Default)]
struct Sockets {
    next: u64,
    open: std::collections::HashMap<u64, WeakSender>,
    closing: bool,
}

struct Guard(Arc<Inner>);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Inner {
    fn track(self: &Arc<Self>) -> Guard {
        self.active.fetch_add(1, Ordering::AcqRel);
        Guard(self.clone())
    }

    fn sockets(&self) -> std::sync::MutexGuard<'_, Sockets> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an open socket; during a shutdown it is closed at once.
    fn register(&self, sender: WeakSender) -> u64 {
        let mut sockets = self.sockets();
        if sockets.closing {
            // A code that may be sent: this cannot fail.
            let _ = sender.close(CloseCode::GOING_AWAY, "server shutting down");
        }
        sockets.next += 1;
        let id = sockets.next;
        sockets.open.insert(id, sender);
        id
    }

    fn unregister(&self, id: u64) {
        self.sockets().open.remove(&id);
    }

    /// Graceful shutdown: every open socket gets a 1001 close (`FF 00` over hixie).
    fn close_sockets(&self) {
        let mut sockets = self.sockets();
        sockets.closing = true;
        for sender in sockets.open.values() {
            let _ = sender.close(CloseCode::GOING_AWAY, "server shutting down");
        }
    }

    async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

async fn serve_connection<I>(
    inner: Arc<Inner>,
    io: I,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let inner = inner.clone();
        service_fn(move |req| {
            let inner = inner.clone();
            async move { Ok::<_, Infallible>(handle(inner, req, peer).await) }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(inner.config.handshake_timeout)
        .title_case_headers(true);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!("connection from {peer}: {e}");
            }
        }
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn handle(
    inner: Arc<Inner>,
    req: http::Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let mut req = req;
    req.extensions_mut().insert(PeerAddr(peer));
    if inner.dispatchers.is_empty() || !handshake::is_upgrade_request(&req) {
        return (inner.fallback)(req).await;
    }
    let (upgrade, parts) = match Upgrade::from_request(req, &inner.config).await {
        Ok(pair) => pair,
        Err(r) => return refusal(&r),
    };
    if let Some(policy) = &inner.origin {
        if !policy(upgrade.request().origin()) {
            return refusal(&Refusal::new(StatusCode::FORBIDDEN, "origin not allowed"));
        }
    }
    let hs = Handshake {
        parts: &parts,
        request: upgrade.request(),
        peer,
    };
    let Some(accept) = inner.dispatchers.iter().find_map(|d| d.dispatch(&hs)) else {
        return refusal(&Refusal::new(
            StatusCode::NOT_FOUND,
            "no WebSocket endpoint here",
        ));
    };
    let mut upgrade = upgrade.secure(inner.secure);
    if let Some(p) = accept.protocol {
        upgrade = upgrade.protocol(p);
    }
    let (response, pending) = upgrade.into_response();
    let guard = inner.track();
    tokio::spawn(async move {
        match pending.open().await {
            Ok(socket) => run(&guard.0, accept.run, socket).await,
            Err(e) => tracing::debug!("upgrade from {peer} failed: {e}"),
        }
    });
    response.map(|()| full(Bytes::new()))
}

/// Completes once the server is shutting down.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here, inside.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// Runs an accepted socket; it is registered for the 1001 close of a graceful shutdown.
async fn run(inner: &Inner, run: Run, socket: WebSocket<Upgraded>) {
    let id = inner.register(socket.sender().downgrade());
    match run {
        Run::Socket(f) => f(socket).await,
        Run::Session(setup) => {
            let (mut reader, sender) = socket.split();
            let mut handler = setup(sender);
            while let Some(msg) = reader.recv().await {
                match msg {
                    Ok(msg) => handler(msg).await,
                    Err(e) => tracing::debug!("websocket closed on error: {e}"),
                }
            }
        }
    }
    inner.unregister(id);
}
