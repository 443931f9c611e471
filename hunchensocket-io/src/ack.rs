//! Acknowledgements both ways: [`AckSender`] answers a client's event; [`AckError`] is what
//! waiting for a client's answer can end in.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::client::ClientData;
use crate::engine::{SendError, Session};
use crate::packet::Packet;

/// What a client sent back for an ack: arguments and binary attachments.
pub(crate) type AckPayload = (Vec<Value>, Vec<Bytes>);

/// Answers one event that asked for an acknowledgement. Dropping it without answering sends
/// nothing (as a Socket.IO handler that never calls its callback).
#[derive(Debug)]
pub struct AckSender {
    target: Option<(Arc<Session<ClientData>>, String, u64)>,
}

impl AckSender {
    pub(crate) fn new(session: Arc<Session<ClientData>>, nsp: String, id: Option<u64>) -> Self {
        AckSender {
            target: id.map(|id| (session, nsp, id)),
        }
    }

    /// Whether the client asked for an acknowledgement.
    pub fn is_requested(&self) -> bool {
        self.target.is_some()
    }

    /// Answers with `data` (a tuple gives several arguments, `()` none; `Bytes` anywhere go as
    /// binary attachments). Without a request for an ack this does nothing.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        let Some((session, nsp, id)) = self.target else {
            return Ok(());
        };
        let (args, attachments) = crate::args::to_args(data)?;
        let packet = if attachments.is_empty() {
            Packet::ack(nsp, id, args)
        } else {
            Packet::binary_ack(nsp, id, args, attachments.len())
        };
        crate::socket::send_packet(&session, &packet, attachments, false)
    }
}

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The data could not be serialized.
    #[error("serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The session could not take it (closed, or full: see [`SendError`]).
    #[error("send: {0}")]
    Send(#[from] SendError),
    /// The adapter that was to deliver it could not take it.
    #[error("adapter: {0}")]
    Adapter(String),
}

/// Why waiting for an acknowledgement failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No answer within the timeout.
    #[error("ack timed out")]
    Timeout,
    /// The client disconnected before answering.
    #[error("socket disconnected before the ack")]
    Disconnected,
    /// The answer did not deserialize into the expected type.
    #[error("ack does not fit the expected type: {0}")]
    Decode(#[from] serde_json::Error),
    /// The event could not be sent.
    #[error("{0}")]
    Emit(#[from] EmitError),
}

/// Waits for an ack on `rx` for at most `timeout`.
pub(crate) async fn wait(
    rx: tokio::sync::oneshot::Receiver<AckPayload>,
    timeout: std::time::Duration,
) -> Result<AckPayload, AckError> {
    match tokio::time::timeout(timeout, rx).await {
        Err(_) => Err(AckError::Timeout),
        Ok(Err(_)) => Err(AckError::Disconnected),
        Ok(Ok(payload)) => Ok(payload),
    }
}
