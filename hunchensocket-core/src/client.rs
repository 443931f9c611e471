//! The client side: connect to a `ws://` or `wss://` URL with RFC 6455 or hixie-76.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::codec::Role;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::handshake::{self, ClientRequest, Version};
use crate::socket::WebSocket;
use crate::tls::MaybeTlsStream;

/// Longest response head a client accepts.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Opens client WebSockets.
///
/// ```no_run
/// use hunchensocket_core::{Connector, Message};
///
/// # async fn run() -> hunchensocket_core::Result<()> {
/// let (mut ws, _protocol) = Connector::new().connect("ws://127.0.0.1:8080/echo").await?;
/// ws.send("hello").await?;
/// assert_eq!(ws.recv().await.transpose()?, Some(Message::text("hello")));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Connector {
    version: Version,
    protocols: Vec<String>,
    origin: Option<String>,
    headers: Vec<(String, String)>,
    config: Config,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Connector {
    fn default() -> Self {
        Connector::new()
    }
}

/// Connects to `url` with RFC 6455 and the default settings.
pub async fn connect(url: &str) -> Result<WebSocket<MaybeTlsStream>> {
    Ok(Connector::new().connect(url).await?.0)
}

struct Target {
    secure: bool,
    host: String,
    port: u16,
    authority: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Target> {
    let uri: http::Uri = url.parse().map_err(|e| Error::Url(format!("{url}: {e}")))?;
    let secure = match uri.scheme_str() {
        Some("ws") | Some("http") => false,
        Some("wss") | Some("https") => true,
        _ => return Err(Error::Url(format!("{url}: scheme must be ws or wss"))),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| Error::Url(format!("{url}: no host")))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority
        .port_u16()
        .unwrap_or(if secure { 443 } else { 80 });
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let path = if path.is_empty() { "/" } else { path }.to_string();
    Ok(Target {
        secure,
        host,
        port,
        authority: authority.as_str().to_string(),
        path,
    })
}

impl Connector {
    /// An RFC 6455 connector with default limits and no subprotocols.
    pub fn new() -> Self {
        Connector {
            version: Version::Rfc6455,
            protocols: Vec::new(),
            origin: None,
            headers: Vec::new(),
            config: Config::default(),
            tls: None,
        }
    }

    /// The protocol to speak: [`Version::Rfc6455`] (default) or [`Version::Hixie76`].
    pub fn version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// Offers a subprotocol (may be called several times, in order of preference).
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Sends this `Origin`.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Adds a header to the opening handshake.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the socket's limits and timeouts.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The TLS configuration for `wss://` URLs (required for them).
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Connects to `url` (`ws://` or `wss://`); gives the socket and the subprotocol the server chose.
    pub async fn connect(&self, url: &str) -> Result<(WebSocket<MaybeTlsStream>, Option<String>)> {
        let target = parse_url(url)?;
        let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
        let _ = tcp.set_nodelay(true);
        let stream = if target.secure {
            let config = self
                .tls
                .clone()
                .ok_or_else(|| Error::Tls("wss:// needs Connector::tls".into()))?;
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| Error::Tls(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            MaybeTlsStream::Tls(Box::new(tls))
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        self.handshake(stream, &target).await
    }

    /// Performs the opening handshake for `url` over a stream the caller has connected.
    pub async fn connect_on<S>(
        &self,
        stream: S,
        url: &str,
    ) -> Result<(WebSocket<S>, Option<String>)>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let target = parse_url(url)?;
        self.handshake(stream, &target).await
    }

    async fn handshake<S>(
        &self,
        mut stream: S,
        target: &Target,
    ) -> Result<(WebSocket<S>, Option<String>)>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let request = ClientRequest {
            host: target.authority.clone(),
            path: target.path.clone(),
            secure: target.secure,
            origin: self.origin.clone(),
            protocols: self.protocols.clone(),
            headers: self.headers.clone(),
        };
        let (bytes, check) = handshake::client_handshake(&request, self.version)?;
        let exchange = async {
            stream.write_all(&bytes).await?;
            let mut buf = BytesMut::with_capacity(1024);
            let (head_len, protocol) = loop {
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let pairs: Vec<(&str, &[u8])> =
                            response.headers.iter().map(|h| (h.name, h.value)).collect();
                        let protocol = check.check(response.code.unwrap_or(0), &pairs)?;
                        break (n, protocol);
                    }
                    Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => continue,
                    Ok(httparse::Status::Partial) => {
                        return Err(Error::Url("response head too long".into()));
                    }
                    Err(e) => return Err(Error::Url(format!("malformed handshake response: {e}"))),
                }
            };
            let _ = buf.split_to(head_len);
            if let Some(expected) = check.hixie76_expected() {
                while buf.len() < 16 {
                    if stream.read_buf(&mut buf).await? == 0 {
                        return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
                    }
                }
                if buf.split_to(16)[..] != expected[..] {
                    return Err(Error::Url("hixie-76 challenge answered wrongly".into()));
                }
            }
            Ok::<_, Error>((buf.freeze(), protocol))
        };
        let (rest, protocol): (Bytes, Option<String>) =
            tokio::time::timeout(self.config.handshake_timeout, exchange)
                .await
                .map_err(|_| Error::Timeout("handshake"))??;
        let socket = WebSocket::from_raw(stream, rest, self.version, Role::Client, &self.config);
        Ok((socket, protocol))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("ws://example.com/chat?x=1").unwrap();
        assert!(!t.secure);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("example.com", 80, "/chat?x=1")
        );
        let t = parse_url("wss://127.0.0.1:8443").unwrap();
        assert!(t.secure);
        assert_eq!(
            (t.port, t.path.as_str(), t.authority.as_str()),
            (8443, "/", "127.0.0.1:8443")
        );
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("not a url").is_err());
    }
}
