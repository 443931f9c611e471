//! Upgrading one hyper request: for applications that run their own hyper or axum server.

use std::future::Future;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::codec::Role;
use crate::config::Config;
use crate::error::{Error, Refusal, Result};
use crate::handshake::{self, Version};
use crate::socket::WebSocket;

/// The transport of a WebSocket upgraded from a hyper connection.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// A validated upgrade request, holding on to its connection until the response is sent.
///
/// ```no_run
/// use hunchensocket_core::{Message, Upgrade};
///
/// async fn handle(mut req: http::Request<hyper::body::Incoming>) -> http::Response<String> {
///     match Upgrade::new(&mut req) {
///         Ok(upgrade) => upgrade
///             .on_upgrade(|mut ws| async move {
///                 while let Some(Ok(msg)) = ws.recv().await {
///                     if msg.is_data() {
///                         let _ = ws.send(msg).await;
///                     }
///                 }
///             })
///             .map(|()| String::new()),
///         Err(refusal) => hunchensocket_core::handshake::refusal_response(&refusal),
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Upgrade {
    request: handshake::Request,
    on_upgrade: OnUpgrade,
    protocol: Option<String>,
    secure: bool,
    config: Config,
    key3: Option<[u8; 8]>,
}

/// The socket-to-be of an accepted upgrade: await [`open`](Self::open) once the response is on
/// its way (hyper completes the upgrade after writing it).
#[derive(Debug)]
pub struct PendingSocket {
    request: handshake::Request,
    on_upgrade: OnUpgrade,
    config: Config,
    key3: Option<[u8; 8]>,
}

impl Upgrade {
    /// Validates `req` as an opening handshake of any supported version and takes its
    /// connection. A hixie-76 key3 sent as a body is not read here: use
    /// [`from_request`](Self::from_request), or [`key3`](Self::key3). A refusal carries the status to answer with
    /// ([`refusal_response`](crate::handshake::refusal_response) builds the response).
    pub fn new<B>(req: &mut http::Request<B>) -> Result<Upgrade, Refusal> {
        let request = handshake::Request::parse(req)?;
        let on_upgrade = hyper::upgrade::on(req);
        Ok(Upgrade::from_parts(request, on_upgrade))
    }

    /// Like [`new`](Self::new) for a whole request, and uses `config`: also reads a hixie-76
    /// key3 sent as an 8-byte body with `Content-Length` (within [`Config::key3_timeout`]).
    /// Gives back the request's head for the caller to inspect.
    pub async fn from_request<B>(
        req: http::Request<B>,
        config: &Config,
    ) -> Result<(Upgrade, http::request::Parts), Refusal>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut req = req;
        let request = handshake::Request::parse(&req)?;
        let on_upgrade = hyper::upgrade::on(&mut req);
        let (parts, body) = req.into_parts();
        let mut upgrade = Upgrade::from_parts(request, on_upgrade).config(config.clone());
        if upgrade.request.version() == Version::Hixie76
            && parts.headers.contains_key(http::header::CONTENT_LENGTH)
        {
            let limited = http_body_util::Limited::new(body, 8);
            let collected = tokio::time::timeout(config.key3_timeout, limited.collect())
                .await
                .map_err(|_| {
                    Refusal::new(http::StatusCode::REQUEST_TIMEOUT, "hixie-76 key3 timed out")
                })?
                .map_err(|_| Refusal::bad_request("hixie-76 key3 must be 8 bytes"))?;
            let key3 = collected
                .to_bytes()
                .as_ref()
                .try_into()
                .map_err(|_| Refusal::bad_request("hixie-76 key3 must be 8 bytes"))?;
            upgrade = upgrade.key3(key3);
        }
        Ok((upgrade, parts))
    }

    pub(crate) fn from_parts(request: handshake::Request, on_upgrade: OnUpgrade) -> Self {
        Upgrade {
            request,
            on_upgrade,
            protocol: None,
            secure: false,
            config: Config::default(),
            key3: None,
        }
    }

    /// The parsed handshake: version, origin, offered subprotocols.
    pub fn request(&self) -> &handshake::Request {
        &self.request
    }

    /// Picks a subprotocol; ignored unless the client offered it.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        let protocol = protocol.into();
        if self.request.protocols().contains(&protocol) {
            self.protocol = Some(protocol);
        }
        self
    }

    /// Whether the connection is TLS (hixie handshakes then announce a `wss://` location).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets the socket's limits and timeouts.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Supplies a hixie-76 key3 that arrived as the request body.
    ///
    /// Browsers send key3 after the headers without a `Content-Length`, and it is read from the
    /// connection after the upgrade. Some clients announce it with `Content-Length: 8`, so the
    /// HTTP server reads it as the body: read that body and pass it here.
    pub fn key3(mut self, key3: [u8; 8]) -> Self {
        self.key3 = Some(key3);
        self
    }

    /// The `101` response to send, and the socket that opens once it has been sent.
    pub fn into_response(self) -> (http::Response<()>, PendingSocket) {
        let response = self.request.accept(self.protocol.as_deref(), self.secure);
        let pending = PendingSocket {
            request: self.request,
            on_upgrade: self.on_upgrade,
            config: self.config,
            key3: self.key3,
        };
        (response, pending)
    }

    /// The `101` response to send; `handler` runs on a new task with the socket once it opens.
    pub fn on_upgrade<F, Fut>(self, handler: F) -> http::Response<()>
    where
        F: FnOnce(WebSocket<Upgraded>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (response, pending) = self.into_response();
        tokio::spawn(async move {
            match pending.open().await {
                Ok(socket) => handler(socket).await,
                Err(e) => tracing::debug!("websocket upgrade failed: {e}"),
            }
        });
        response
    }
}

impl PendingSocket {
    /// The protocol version of the socket.
    pub fn version(&self) -> Version {
        self.request.version()
    }

    /// Waits for hyper to hand over the connection, completes a hixie-76 handshake (reads key3,
    /// within [`Config::key3_timeout`], and writes the MD5 answer), and opens the socket.
    pub async fn open(self) -> Result<WebSocket<Upgraded>> {
        let upgraded = self.on_upgrade.await.map_err(std::io::Error::other)?;
        let mut io = TokioIo::new(upgraded);
        let version = self.request.version();
        if version == Version::Hixie76 {
            let key3 = match self.key3 {
                Some(key3) => key3,
                None => {
                    let mut key3 = [0u8; 8];
                    tokio::time::timeout(self.config.key3_timeout, io.read_exact(&mut key3))
                        .await
                        .map_err(|_| Error::Timeout("hixie-76 key3"))??;
                    key3
                }
            };
            if let Some(answer) = self.request.hixie76_answer(&key3) {
                io.write_all(&answer).await?;
            }
        }
        Ok(WebSocket::from_raw(
            io,
            Bytes::new(),
            version,
            Role::Server,
            &self.config,
        ))
    }
}
