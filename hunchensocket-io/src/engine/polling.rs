//! The HTTP long-polling transport: a GET waits for packets, a POST delivers them.

use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use hunchensocket_core::Body;

use super::packet::{self, Packet};
use super::session::{CloseReason, Session, Transport};
use super::{EngineError, EngineInner, Handler, body, error, text_response};

/// Clears a session's "request in progress" flag however the request ends (the client may go
/// away while a GET waits, which drops this future).
struct InProgress<'a, D: Send + Sync + 'static> {
    session: &'a Session<D>,
    post: bool,
}

impl<D: Send + Sync + 'static> Drop for InProgress<'_, D> {
    fn drop(&mut self) {
        let mut st = self.session.lock();
        if self.post {
            st.posting = false;
        } else {
            st.polling = false;
        }
    }
}

/// A GET: answers with the queued packets, waiting for some if there are none; says whether
/// the answer ended the session (it carried the close packet).
pub(crate) async fn poll<D: Send + Sync + 'static>(
    session: &Arc<Session<D>>,
) -> (Response<Body>, bool) {
    {
        let mut st = session.lock();
        if st.polling {
            drop(st);
            // Two GETs at once: the client is broken; so is the session.
            session.close(CloseReason::BadRequest);
            return (error(EngineError::BadRequest), true);
        }
        st.polling = true;
    }
    let _in_progress = InProgress {
        session: session.as_ref(),
        post: false,
    };
    loop {
        let notified = session.poll_wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let st = session.lock();
            let upgraded = !matches!(st.transport, Transport::Polling);
            if st.upgrading || upgraded {
                // A WebSocket is taking over: release this poll; queued packets go over it.
                return (
                    text_response(packet::encode_payload(&[Packet::Noop])),
                    false,
                );
            }
            if st.closed.is_some() || !st.queue.is_empty() {
                break;
            }
        }
        notified.await;
    }
    if session.lock().aborted {
        // Cut off (Session::abort): an error and a closed connection, as a broken network
        // leaves a poll, never the close packet.
        let mut res = error(EngineError::UnknownSid);
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return (res, true);
    }
    let mut packets = session.drain();
    let ended = match session.lock().closed {
        // The client closed the session itself: its waiting poll is just released.
        Some(CloseReason::TransportClose) => {
            if packets.is_empty() {
                packets.push(Packet::Noop);
            }
            true
        }
        None => false,
        // The server ended it: tell the client, once what it sent last is delivered (clients
        // handle a close in the same payload before its messages, as engine.io never sends).
        Some(reason) if reason.delivered_on_next_poll() && !packets.is_empty() => false,
        Some(_) => {
            packets.push(Packet::Close);
            true
        }
    };
    (text_response(packet::encode_payload(&packets)), ended)
}

/// A POST: reads a payload (at most `max_payload` bytes, within `post_timeout`) and hands its
/// packets to the session.
pub(crate) async fn post<H: Handler, B>(
    engine: &EngineInner<H>,
    session: &Arc<Session<H::Data>>,
    incoming: B,
) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<hunchensocket_core::BoxError>,
{
    {
        let mut st = session.lock();
        if st.posting {
            drop(st);
            session.close(CloseReason::BadRequest);
            return error(EngineError::BadRequest);
        }
        st.posting = true;
    }
    let _in_progress = InProgress {
        session: session.as_ref(),
        post: true,
    };
    let limited = http_body_util::Limited::new(incoming, engine.config.max_payload);
    let Ok(collected) = tokio::time::timeout(engine.config.post_timeout, limited.collect()).await
    else {
        // A body that stalls or trickles: its packets are lost, and so is the session.
        session.close(CloseReason::TransportError);
        let mut res = Response::new(body("request timeout"));
        *res.status_mut() = StatusCode::REQUEST_TIMEOUT;
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    };
    let bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            session.close(if too_large {
                CloseReason::BadRequest
            } else {
                CloseReason::TransportError
            });
            if too_large {
                let mut res = Response::new(body("payload too large"));
                *res.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                return res;
            }
            return error(EngineError::BadRequest);
        }
    };
    let packets = match packet::decode_payload(bytes) {
        Ok(packets) => packets,
        Err(_) => {
            session.close(CloseReason::ParseError);
            return error(EngineError::BadRequest);
        }
    };
    for packet in packets {
        session.on_packet(&engine.handler, packet);
        if session.is_closed() {
            break;
        }
    }
    let mut res = Response::new(body("ok"));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    res
}
