//! The Redis Streams side of a namespace's adapter: entries from the log, and restoring a
//! session from Redis.

use std::sync::Arc;

use hunchensocket_io::adapter::{Adapter, Restored};
use serde_json::Value;

use super::{NsAdapter, lock};
use crate::wire::{self, Body, Message};

impl NsAdapter {
    /// An entry of the stream (streams mode), with its id.
    pub(crate) fn on_entry(&self, id: &str, fields: &[(Vec<u8>, Vec<u8>)]) {
        match wire::streams::from_entry(fields) {
            Ok(msg) => self.on_logged(msg, id),
            Err(e) => {
                self.bus.count_dropped();
                tracing::warn!(nsp = %self.nsp, id, "redis adapter: invalid stream entry dropped: {e}");
            }
        }
    }

    /// A message from the log: a broadcast reaches this node's sockets with its entry id as
    /// offset (this node's own ones too when recovery is on: the server left them to the
    /// log), the rest as from pub/sub.
    fn on_logged(&self, msg: Message, id: &str) {
        if msg.nsp != self.nsp {
            return;
        }
        let own = msg.uid.as_deref() == Some(self.uid.as_str());
        let Body::Broadcast {
            mut packet,
            opts,
            request_id: None,
        } = msg.body
        else {
            return self.on_message(msg);
        };
        let Some(local) = self.local() else { return };
        let o = opts.to_options();
        let keeps = local.keeps_sessions() && !o.volatile;
        if own && !keeps {
            return; // delivered here already
        }
        if keeps {
            packet.data.push(Value::String(id.to_string()));
        }
        let mut sids = self.rooms.sockets(&o);
        {
            let mut replayed = lock(&self.replayed);
            if !replayed.is_empty() {
                sids.retain(|sid| match replayed.get(sid) {
                    Some(upto) if wire::streams::cmp_offsets(id, upto).is_le() => false,
                    Some(_) => {
                        replayed.remove(sid);
                        true
                    }
                    None => true,
                });
            }
        }
        local.emit(&sids, &packet, o.volatile);
    }

    /// Streams: the session of `pid` (taken: a session is restored once) and the entries after
    /// `offset` that were for it. The reader waits meanwhile, and until the socket is back
    /// (the hold), so that no entry falls between the replay and live delivery.
    pub(super) async fn restore(self: Arc<Self>, pid: &str, offset: String) -> Option<Restored> {
        let turn = self.bus.reader_turn.clone().lock_owned().await;
        let key = format!("{}{pid}", self.bus.config.session_key_prefix);
        let mut take = redis::pipe();
        take.atomic().cmd("GET").arg(&key).cmd("DEL").arg(&key);
        let mut query = redis::cmd("XRANGE");
        query
            .arg(&self.bus.config.stream_name)
            .arg(&offset)
            .arg(&offset);
        let (taken, at) =
            futures_util::future::join(self.bus.query_pipe(&take), self.bus.query(&query)).await;
        let raw = match taken {
            Ok(redis::Value::Array(items)) => match items.first() {
                Some(redis::Value::BulkString(b)) => b.clone(),
                _ => return None,
            },
            _ => return None,
        };
        if crate::bus::entries(&at.ok()?).is_empty() {
            return None; // the offset is gone from the stream: packets may be missing
        }
        let state = match wire::streams::from_session(&raw) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!("redis adapter: unreadable session: {e}");
                return None;
            }
        };
        let mut missed = Vec::new();
        let mut last = offset.clone();
        for _ in 0..100 {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(&self.bus.config.stream_name)
                .arg(wire::streams::next_offset(&last)?)
                .arg("+")
                .arg("COUNT")
                .arg(1000);
            let batch = crate::bus::entries(&self.bus.query(&cmd).await.ok()?);
            if batch.is_empty() {
                break;
            }
            for (id, fields) in &batch {
                last = id.clone();
                let Ok(msg) = wire::streams::from_entry(fields) else {
                    continue;
                };
                let Body::Broadcast {
                    mut packet,
                    opts,
                    request_id: None,
                } = msg.body
                else {
                    continue;
                };
                let volatile = opts
                    .flags
                    .get("volatile")
                    .is_some_and(|v| v != &Value::Bool(false) && !v.is_null());
                if msg.nsp == self.nsp && !volatile && state.wants(&opts.rooms, &opts.except) {
                    packet.data.push(Value::String(id.clone()));
                    missed.push(packet);
                }
            }
        }
        lock(&self.replayed).insert(state.sid.clone(), last);
        Some(Restored::new(state, missed).holding(Box::new(turn)))
    }
}
