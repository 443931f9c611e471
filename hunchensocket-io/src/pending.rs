//! Events that reach a socket before its connection handler is ready (while connect middleware
//! runs): queued in order, within a count and a byte limit, and the connection closed past them.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;

use crate::client::ClientData;
use crate::engine::{CloseReason, Session};
use crate::socket::lock;

/// One event: its name, arguments, attachments, and ack id.
pub(crate) type PendingEvent = (String, Vec<Value>, Vec<Bytes>, Option<u64>);

/// How much may wait for one socket (see `IoConfig::max_pending_events` and
/// `IoConfig::max_pending_bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) events: usize,
    pub(crate) bytes: usize,
}

impl Default for Limits {
    /// No bounds: what a `ClientData` made outside a server has.
    fn default() -> Self {
        Limits {
            events: usize::MAX,
            bytes: usize::MAX,
        }
    }
}

/// The events waiting for one socket, and the bytes they hold.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    events: Vec<PendingEvent>,
    bytes: usize,
}

impl Pending {
    /// Queues `event` unless that would pass `limits`; returns whether it was queued.
    fn push(&mut self, event: PendingEvent, limits: Limits) -> bool {
        let bytes = self.bytes.saturating_add(size(&event));
        if self.events.len() >= limits.events || bytes > limits.bytes {
            return false;
        }
        self.bytes = bytes;
        self.events.push(event);
        true
    }
}

impl IntoIterator for Pending {
    type Item = PendingEvent;
    type IntoIter = std::vec::IntoIter<PendingEvent>;

    fn into_iter(self) -> Self::IntoIter {
        self.events.into_iter()
    }
}

/// Holds `event` in `pending` if the socket still waits (`pending` is `Some`): it is queued, or,
/// past the limits, the connection is closed and the event dropped. Gives the event back when
/// the socket no longer waits, for the caller to handle it.
pub(crate) fn hold(
    pending: &Mutex<Option<Pending>>,
    session: &Arc<Session<ClientData>>,
    event: PendingEvent,
) -> Option<PendingEvent> {
    let mut pending = lock(pending);
    let waiting = match pending.as_mut() {
        Some(waiting) => waiting,
        None => return Some(event),
    };
    let limits = session.data().pending_limits;
    if !waiting.push(event, limits) {
        let (events, bytes) = (waiting.events.len(), waiting.bytes);
        drop(pending);
        tracing::debug!(
            sid = %session.id(),
            "{events} events ({bytes} bytes) already wait for admission: closing"
        );
        session.close(CloseReason::BadRequest);
    }
    None
}

/// The bytes an event holds: its name, its arguments as JSON, its attachments.
fn size((name, args, attachments, _ack): &PendingEvent) -> usize {
    /// Counts the bytes written to it.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut json = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut json, args);
    name.len() + json.0 + attachments.iter().map(Bytes::len).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(arg: Value, attachment: &'static [u8]) -> PendingEvent {
        (
            "e".into(),
            vec![arg],
            vec![Bytes::from_static(attachment)],
            None,
        )
    }

    #[test]
    fn sizes_count_name_json_and_attachments() {
        assert_eq!(size(&event(json!("abc"), b"12")), 1 + 7 + 2);
    }

    #[test]
    fn limits_bound_count_and_bytes() {
        let limits = Limits {
            events: 2,
            bytes: 20,
        };
        let mut pending = Pending::default();
        assert!(pending.push(event(json!(1), b""), limits));
        assert!(pending.push(event(json!(2), b""), limits));
        assert!(!pending.push(event(json!(3), b""), limits), "a third event");
        let mut pending = Pending::default();
        assert!(pending.push(event(json!(1), b"0123456789"), limits));
        assert!(
            !pending.push(event(json!(1), b"0123456789"), limits),
            "past 20 bytes"
        );
        let names: Vec<Value> = pending.into_iter().map(|e| e.1[0].clone()).collect();
        assert_eq!(names, [json!(1)]);
    }
}
