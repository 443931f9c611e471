//! The soak's clients: every session's task (acked events, broadcasts counted, leaving and
//! coming back), the control session that asks for the broadcasts, the admin session that reads
//! the server's `stats`, and the counters they share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use super::{Plan, mib};
use crate::client::{self, Conn, Proto, TEXT};
use crate::workloads::Hist;

/// Where the run is: every session follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Events, broadcasts, leaving and coming back.
    Run,
    /// Nothing new is sent and nobody leaves: answers and broadcasts still in flight arrive.
    Drain,
    /// Each session checks its broadcasts one last time and closes its connection.
    Leave,
}

/// Counters of every session together.
#[derive(Default)]
pub(super) struct Tally {
    /// Acked events sent, each with a number of its own.
    pub(super) sent: AtomicU64,
    /// Answered once with the event's own number.
    pub(super) acked: AtomicU64,
    /// Answers to an ack id that was not waiting (answered twice, or never asked).
    pub(super) duplicate_acks: AtomicU64,
    /// Answers carrying another event's number.
    pub(super) wrong_acks: AtomicU64,
    /// In flight when the client itself left: failed on the client side (never answered later).
    pub(super) failed_on_leave: AtomicU64,
    /// Never answered although the client kept its connection (or the server closed it).
    pub(super) lost_acks: AtomicU64,
    /// Events waiting for their answer right now.
    pub(super) inflight: AtomicU64,
    /// Broadcast numbers received by members.
    pub(super) deliveries: AtomicU64,
    /// A broadcast number a member had already received.
    pub(super) tick_duplicates: AtomicU64,
    /// Broadcast numbers a member should have received (sent after it joined) and did not.
    pub(super) tick_gaps: AtomicU64,
    /// Sessions that left on purpose and came back.
    pub(super) reconnects: AtomicU64,
    /// Connections closed by the other side (or broken) while the client kept them.
    pub(super) unexpected_closes: AtomicU64,
    pub(super) connect_failures: AtomicU64,
    /// Sessions connected and in their room right now.
    pub(super) joined: AtomicU64,
    /// Sessions that have joined their room at least once (the ramp is over at all of them).
    pub(super) ever_joined: AtomicU64,
}

/// What the session tasks share.
pub(super) struct Shared {
    pub(super) plan: Plan,
    pub(super) addr: std::net::SocketAddr,
    pub(super) tally: Tally,
    /// Per room: how many broadcasts were requested (the next number).
    pub(super) bsent: Vec<AtomicU64>,
    pub(super) connectors: Semaphore,
    pub(super) latency: Hist,
}

/// xorshift64*: the sessions' dice (reproducible with `--seed`).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Exponentially distributed with this mean (the wait to the next leave at a constant rate).
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// `43ID[N]`: the ack id and the number it carries.
fn parse_ack(payload: &[u8]) -> Option<(u64, Option<u64>)> {
    let id = client::ack_id(payload)? as u64;
    let rest = &payload[payload.iter().position(|&b| b == b'[')? + 1..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let n = (digits > 0 && rest.get(digits) == Some(&b']'))
        .then(|| std::str::from_utf8(&rest[..digits]).ok()?.parse().ok())
        .flatten();
    Some((id, n))
}

/// One member's view of its room's broadcasts since it last joined.
struct Member {
    /// Broadcasts requested before the join was acknowledged: those may or may not arrive.
    from: u64,
    /// The last number received.
    last: Option<u64>,
}

impl Member {
    /// Counts a received broadcast number: duplicates and the numbers skipped since the last
    /// one (only those requested after the join).
    fn receive(&mut self, n: u64, tally: &Tally) {
        tally.deliveries.fetch_add(1, Relaxed);
        match self.last {
            Some(l) if n <= l => {
                tally.tick_duplicates.fetch_add(1, Relaxed);
                return;
            }
            _ => {}
        }
        let expected = self.last.map_or(self.from, |l| (l + 1).max(self.from));
        tally
            .tick_gaps
            .fetch_add(n.saturating_sub(expected), Relaxed);
        self.last = Some(n);
    }

    /// At the end: every number requested after the join up to the last one must have come.
    fn finish(&self, requested: u64, tally: &Tally) {
        let expected = self.last.map_or(self.from, |l| (l + 1).max(self.from));
        tally
            .tick_gaps
            .fetch_add(requested.saturating_sub(expected), Relaxed);
    }
}

/// Opens a session and joins `room` (ack id 0).
async fn connect_and_join(shared: &Shared, i: usize, room: &str) -> std::io::Result<Conn> {
    let _permit = shared.connectors.acquire().await;
    let open = async {
        let mut conn = Conn::open(shared.addr, Proto::SocketIo, i).await?;
        let join = client::encode(
            Proto::SocketIo,
            TEXT,
            format!("420[\"join\",\"{room}\"]").as_bytes(),
        );
        conn.send(&join).await?;
        loop {
            let f = conn.read_data().await?;
            if client::ack_id(conn.payload(f)) == Some(0) {
                return Ok(conn);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), open)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("connect and join took over 30 s")))
}

/// One client for the whole run: connects, joins its room, sends acked events at its pace,
/// counts answers and broadcasts, now and then leaves and comes back.
pub(super) async fn session(i: usize, shared: Arc<Shared>, mut phase: watch::Receiver<Phase>) {
    let plan = &shared.plan;
    let tally = &shared.tally;
    let room_index = i % plan.rooms;
    let room = format!("r{room_index}");
    let mut rng = Rng::new(plan.seed ^ (i as u64).wrapping_mul(0x1000_0000_01b3));
    let period = Duration::from_secs_f64(plan.sessions as f64 / plan.ack_rate.max(1e-9));
    let stay_mean = if plan.churn > 0.0 {
        1.0 / plan.churn
    } else {
        f64::INFINITY
    };
    // Ack ids never repeat over the session's life (0 is the join's).
    let mut next_id: u64 = 1;
    // (ack id, number, sent at)
    let mut pending: Vec<(u64, u64, Instant)> = Vec::new();
    let mut mode = *phase.borrow_and_update();
    let mut first = true;
    loop {
        if mode == Phase::Leave {
            return;
        }
        let mut conn = match connect_and_join(&shared, i, &room).await {
            Ok(c) => c,
            Err(e) => {
                if tally.connect_failures.fetch_add(1, Relaxed) < 5 {
                    eprintln!("soak: session {i}: {e}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut member = Member {
            from: shared.bsent[room_index].load(Relaxed),
            last: None,
        };
        tally.joined.fetch_add(1, Relaxed);
        if first {
            tally.ever_joined.fetch_add(1, Relaxed);
            first = false;
        }
        let start = tokio::time::Instant::now() + period.mul_f64(rng.unit());
        let mut tick = tokio::time::interval_at(start, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stay = Duration::from_secs_f64(rng.exp(stay_mean).min(1e7));
        let leave = tokio::time::sleep(stay);
        tokio::pin!(leave);
        // Why the inner loop ended: Some(true) when the client left on purpose.
        let left_on_purpose = loop {
            tokio::select! {
                _ = tick.tick(), if mode == Phase::Run && plan.ack_rate > 0.0 => {
                    let n = tally.sent.fetch_add(1, Relaxed);
                    let id = next_id;
                    next_id += 1;
                    let frame = client::encode(
                        Proto::SocketIo,
                        TEXT,
                        format!("42{id}[\"echo\",{n}]").as_bytes(),
                    );
                    pending.push((id, n, Instant::now()));
                    tally.inflight.fetch_add(1, Relaxed);
                    if conn.send(&frame).await.is_err() {
                        break false;
                    }
                }
                _ = &mut leave, if mode == Phase::Run && plan.churn > 0.0 => {
                    // Half say goodbye (Socket.IO DISCONNECT), half just close the TCP stream.
                    if rng.unit() < 0.5 {
                        let bye = client::encode(Proto::SocketIo, TEXT, b"41");
                        let _ = conn.send(&bye).await;
                    }
                    break true;
                }
                f = conn.read_data() => {
                    let Ok(f) = f else { break false };
                    let payload = conn.payload(f);
                    if let Some(n) = client::tick_number(payload) {
                        member.receive(n as u64, tally);
                    } else if let Some((id, n)) = parse_ack(payload) {
                        match pending.iter().position(|p| p.0 == id) {
                            None => {
                                tally.duplicate_acks.fetch_add(1, Relaxed);
                            }
                            Some(at) => {
                                let (_, want, sent_at) = pending.swap_remove(at);
                                tally.inflight.fetch_sub(1, Relaxed);
                                if n == Some(want) {
                                    tally.acked.fetch_add(1, Relaxed);
                                    shared.latency.record(sent_at.elapsed().as_micros() as u64);
                                } else {
                                    tally.wrong_acks.fetch_add(1, Relaxed);
                                }
                            }
                        }
                    }
                }
                changed = phase.changed() => {
                    mode = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Leave };
                    if mode == Phase::Leave {
                        member.finish(shared.bsent[room_index].load(Relaxed), tally);
                        tally.lost_acks.fetch_add(pending.len() as u64, Relaxed);
                        tally.inflight.fetch_sub(pending.len() as u64, Relaxed);
                        tally.joined.fetch_sub(1, Relaxed);
                        return;
                    }
                }
            }
        };
        drop(conn);
        tally.joined.fetch_sub(1, Relaxed);
        tally.inflight.fetch_sub(pending.len() as u64, Relaxed);
        if left_on_purpose {
            // The client's own disconnect fails what it still waits for, once.
            tally
                .failed_on_leave
                .fetch_add(pending.len() as u64, Relaxed);
            tally.reconnects.fetch_add(1, Relaxed);
        } else {
            tally.lost_acks.fetch_add(pending.len() as u64, Relaxed);
            if tally.unexpected_closes.fetch_add(1, Relaxed) < 5 {
                eprintln!("soak: session {i}: connection closed by the server or broken");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pending.clear();
    }
}

/// The control session: not in any room, it asks for the room broadcasts (round robin) while
/// the run is on.
pub(super) async fn control(
    mut conn: Conn,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) {
    let plan = &shared.plan;
    let mut tick = if plan.bcast_rate > 0.0 {
        tokio::time::interval(Duration::from_secs_f64(1.0 / plan.bcast_rate))
    } else {
        tokio::time::interval(Duration::from_secs(3600))
    };
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut k = 0usize;
    let mut mode = *phase.borrow_and_update();
    loop {
        tokio::select! {
            _ = tick.tick(), if mode == Phase::Run && plan.bcast_rate > 0.0 => {
                let r = k % plan.rooms;
                k += 1;
                let n = shared.bsent[r].fetch_add(1, Relaxed);
                let req = client::encode(
                    Proto::SocketIo,
                    TEXT,
                    format!("42[\"bcast\",\"r{r}\",{n}]").as_bytes(),
                );
                if conn.send(&req).await.is_err() {
                    eprintln!("soak: the control session lost its connection");
                    return;
                }
            }
            f = conn.read_data() => {
                if f.is_err() {
                    eprintln!("soak: the control session lost its connection");
                    return;
                }
            }
            changed = phase.changed() => {
                mode = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Leave };
                if mode == Phase::Leave {
                    // Kept open to the end: it is part of the baseline.
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// What `stats` answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Stats {
    pub(super) connections: u64,
    pub(super) sockets: u64,
    pub(super) rooms: u64,
    pub(super) tasks: u64,
    pub(super) rss: u64,
    pub(super) heap: u64,
}

impl Stats {
    pub(super) fn json(&self) -> Value {
        json!({
            "connections": self.connections,
            "sockets": self.sockets,
            "rooms": self.rooms,
            "tasks": self.tasks,
            "rss_mib": mib(self.rss),
            "heap_mib": mib(self.heap),
        })
    }
}

/// The admin session: asks `stats` and waits for its answer (ack ids from 1).
pub(super) struct Admin {
    pub(super) conn: Conn,
    pub(super) next_id: u64,
}

impl Admin {
    /// Emits `event` (no arguments) with an ack id and returns the ack's arguments.
    pub(super) async fn ask(&mut self, event: &str) -> Result<Vec<Value>, String> {
        let id = self.next_id;
        self.next_id += 1;
        let req = client::encode(
            Proto::SocketIo,
            TEXT,
            format!("42{id}[\"{event}\"]").as_bytes(),
        );
        let ask = async {
            self.conn.send(&req).await?;
            loop {
                let f = self.conn.read_data().await?;
                let p = self.conn.payload(f);
                if client::ack_id(p) == Some(id as usize) {
                    let at = p.iter().position(|&b| b == b'[').unwrap_or(p.len());
                    return serde_json::from_slice(&p[at..])
                        .map_err(|e| std::io::Error::other(e.to_string()));
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), ask)
            .await
            .map_err(|_| format!("{event}: no answer within 10 s"))?
            .map_err(|e| format!("{event}: {e}"))
    }

    pub(super) async fn stats(&mut self) -> Result<Stats, String> {
        let v = self.ask("stats").await?;
        let get = |k: &str| v.first().and_then(|o| o[k].as_u64()).unwrap_or(0);
        Ok(Stats {
            connections: get("connections"),
            sockets: get("sockets"),
            rooms: get("rooms"),
            tasks: get("tasks"),
            rss: get("rss"),
            heap: get("heap"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_acks() {
        assert_eq!(parse_ack(b"4312[345]"), Some((12, Some(345))));
        assert_eq!(parse_ack(b"4312[\"x\"]"), Some((12, None)));
        assert_eq!(parse_ack(b"42[\"tick\",1]"), None);
    }

    #[test]
    fn members_count_gaps_and_duplicates() {
        let tally = Tally::default();
        let mut m = Member {
            from: 5,
            last: None,
        };
        // Numbers before the join may or may not come; 5 and on must.
        m.receive(3, &tally);
        m.receive(5, &tally);
        m.receive(5, &tally);
        m.receive(8, &tally);
        assert_eq!(tally.tick_duplicates.load(Relaxed), 1);
        assert_eq!(tally.tick_gaps.load(Relaxed), 2); // 6, 7
        m.finish(10, &tally); // 9 never came
        assert_eq!(tally.tick_gaps.load(Relaxed), 3);
        let mut late = Member {
            from: 4,
            last: None,
        };
        late.receive(6, &tally); // 4, 5 missing
        assert_eq!(tally.tick_gaps.load(Relaxed), 5);
    }
}
