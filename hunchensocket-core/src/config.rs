//! Limits and timeouts of a WebSocket: one struct, set before the socket exists.

use std::time::Duration;

/// Limits and timeouts, shared by the handshake, the codecs and the socket.
///
/// ```
/// use std::time::Duration;
/// use hunchensocket_core::Config;
///
/// let config = Config::default()
///     .with_max_message_size(1 << 20)
///     .with_handshake_timeout(Duration::from_secs(5));
/// assert_eq!(config.max_message_size, 1 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest single frame accepted, in bytes (RFC 6455). Default 64 MiB, the same as the
    /// message limit: outgoing messages are never fragmented, so a peer with equal limits
    /// accepts every message it may be sent back.
    pub max_frame_size: usize,
    /// Largest message accepted, in bytes: reassembled fragments (RFC 6455), or one frame
    /// without its terminator and its text after U+FFFD substitution (hixie). A larger one
    /// closes the connection with 1009. Default 64 MiB.
    pub max_message_size: usize,
    /// Most frames one message may arrive in (RFC 6455): its first frame and its
    /// continuations, empty ones included. One more closes the connection with 1008 (policy
    /// violation), as `ws`'s `maxFragments` does; without a cap, a peer could keep one
    /// message open forever with empty continuation frames. `usize::MAX` for no cap.
    /// Default 16 384, as `ws`.
    pub max_fragments: usize,
    /// Time allowed for the request line and headers of the opening handshake (slowloris guard).
    /// Default 10 s.
    pub handshake_timeout: Duration,
    /// Time allowed for the 8 key3 bytes of a hixie-76 handshake. Default 5 s.
    pub key3_timeout: Duration,
    /// After sending a close frame, how long to wait for the peer's before dropping the TCP
    /// connection. Default 5 s.
    pub close_timeout: Duration,
    /// Bytes queued for writing beyond which senders wait for the queue to drain. Default 4 MiB.
    pub write_buffer_high_water: usize,
    /// How long one write to the transport may make no progress (a peer that stopped reading,
    /// a zero TCP window) before the connection is dropped: the writer ends, its buffers are
    /// freed, and waiting [`flush`](crate::Sender::flush) and [`close`](crate::Sender::close)
    /// calls fail with an I/O error of kind `TimedOut`. Default 30 s.
    pub write_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 64 << 20,
            max_message_size: 64 << 20,
            max_fragments: 16 * 1024,
            handshake_timeout: Duration::from_secs(10),
            key3_timeout: Duration::from_secs(5),
            close_timeout: Duration::from_secs(5),
            write_buffer_high_water: 4 << 20,
            write_timeout: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// Sets [`Config::max_frame_size`].
    pub fn with_max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`Config::max_message_size`].
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Config::max_fragments`].
    pub fn with_max_fragments(mut self, frames: usize) -> Self {
        self.max_fragments = frames;
        self
    }

    /// Sets [`Config::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`Config::key3_timeout`].
    pub fn with_key3_timeout(mut self, timeout: Duration) -> Self {
        self.key3_timeout = timeout;
        self
    }

    /// Sets [`Config::close_timeout`].
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`Config::write_buffer_high_water`].
    pub fn with_write_buffer_high_water(mut self, bytes: usize) -> Self {
        self.write_buffer_high_water = bytes;
        self
    }

    /// Sets [`Config::write_timeout`].
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }
}
