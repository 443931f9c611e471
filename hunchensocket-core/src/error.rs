//! Errors: what went wrong, and what the peer is told about it.

use http::StatusCode;

use crate::message::CloseCode;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can end or refuse a WebSocket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the framing protocol; the socket has already sent the matching close.
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The opening handshake was refused or malformed.
    #[error("handshake: {0}")]
    Handshake(#[from] Box<Refusal>),
    /// The close handshake has completed; nothing more can be sent or received.
    #[error("connection closed")]
    ConnectionClosed,
    /// A message was sent after a close frame had been sent.
    #[error("a close frame has already been sent")]
    AlreadyClosed,
    /// Binary messages cannot travel over hixie-75/76.
    #[error("binary messages are not supported by this protocol version")]
    BinaryUnsupported,
    /// A close code that may not be sent (1005, 1006, or a reserved code: see
    /// [`CloseCode::is_allowed_on_wire`]); nothing was sent.
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(CloseCode),
    /// A message too large to send under the configured limit.
    #[error("message of {0} bytes is over the configured limit")]
    MessageTooLarge(usize),
    /// The peer did not answer in time (handshake, key3, close).
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// TLS configuration or handshake failed.
    #[error("tls: {0}")]
    Tls(String),
    /// A URL or request that cannot be used.
    #[error("invalid url or request: {0}")]
    Url(String),
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::Handshake(Box::new(r))
    }
}

/// A violation of the framing rules by the peer, with the close code it earns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client frame without a mask (servers require it).
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server frame with a mask (clients refuse it).
    #[error("server frame is masked")]
    MaskedFrame,
    /// RSV1-3 set without a negotiated extension.
    #[error("reserved bits set without an extension")]
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A control frame with FIN clear.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload.
    #[error("control frame payload over 125 bytes")]
    ControlTooLong,
    /// A continuation frame with no message to continue.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new data frame while a fragmented message was still open.
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A 64-bit length with its most significant bit set, or a non-minimal length encoding.
    #[error("invalid payload length")]
    InvalidLength,
    /// Text that is not UTF-8 (RFC 6455 only; hixie substitutes U+FFFD).
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// A close payload of exactly one byte.
    #[error("close payload of one byte")]
    InvalidClosePayload,
    /// A close code that may not appear on the wire.
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A frame over the configured frame limit.
    #[error("frame of {0} bytes is over the limit")]
    FrameTooLarge(u64),
    /// A message over the configured message limit (hixie: a frame without its terminator).
    #[error("message over the size limit")]
    MessageTooLarge,
    /// A message in more frames than the configured cap.
    #[error("message in more than {0} frames")]
    TooManyFragments(usize),
    /// Data after the close frame.
    #[error("data received after the close frame")]
    DataAfterClose,
}

impl ProtocolError {
    /// The close code the peer is sent for this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooLarge(_) | ProtocolError::MessageTooLarge => {
                CloseCode::MESSAGE_TOO_BIG
            }
            ProtocolError::TooManyFragments(_) => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// A refused opening handshake: the HTTP status the client gets, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {reason}")]
pub struct Refusal {
    /// The status of the refusal response (400, 403, 426, ...).
    pub status: StatusCode,
    /// A short reason, sent as the response body.
    pub reason: String,
}

impl Refusal {
    /// A refusal with `status` and `reason`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }

    /// `400 Bad Request` with a reason.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Refusal::new(StatusCode::BAD_REQUEST, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes() {
        assert_eq!(
            ProtocolError::InvalidUtf8.close_code(),
            CloseCode::INVALID_PAYLOAD
        );
        assert_eq!(
            ProtocolError::MessageTooLarge.close_code(),
            CloseCode::MESSAGE_TOO_BIG
        );
        assert_eq!(
            ProtocolError::FrameTooLarge(9).close_code(),
            CloseCode::MESSAGE_TOO_BIG
        );
        assert_eq!(
            ProtocolError::TooManyFragments(3).close_code(),
            CloseCode::POLICY_VIOLATION
        );
        assert_eq!(
            ProtocolError::UnmaskedFrame.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
        assert_eq!(
            ProtocolError::InvalidCloseCode(1005).close_code(),
            CloseCode::PROTOCOL_ERROR
        );
    }
}
