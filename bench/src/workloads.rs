//! The workloads, each run against one server process (or, cluster-broadcast, two on one
//! Redis). Every figure is taken on this process's side (the load generator, one thread on
//! CPU 1) and from /proc for the servers (CPU 0) and Redis.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::client::{self, Conn, Proto, TEXT};
use crate::procs::{Redis, Server};

/// The figures of one run: name → value.
pub type Metrics = BTreeMap<String, f64>;

/// How long to warm up and to measure.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub warmup: Duration,
    pub measure: Duration,
}

/// How many connectors open sessions at once.
pub const CONNECTORS: usize = 64;

fn io_err(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Opens `n` sessions with `CONNECTORS` concurrent connectors; Socket.IO sessions join room
/// `bench` first when `join` is set (acked).
pub async fn connect_many(
    addr: SocketAddr,
    proto: Proto,
    n: usize,
    join: bool,
) -> Result<Vec<Conn>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let join_frame = Arc::new(client::encode(proto, TEXT, br#"420["join","bench"]"#));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTORS.min(n.max(1)) {
        let next = next.clone();
        let join_frame = join_frame.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= n {
                    return Ok::<_, String>(mine);
                }
                let mut conn = Conn::open(addr, proto, i)
                    .await
                    .map_err(io_err("connect"))?;
                if join {
                    conn.send(&join_frame).await.map_err(io_err("join"))?;
                    loop {
                        let f = conn.read_data().await.map_err(io_err("join ack"))?;
                        if client::ack_id(conn.payload(f)) == Some(0) {
                            break;
                        }
                    }
                }
                mine.push(conn);
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    let deadline = Duration::from_secs(120);
    for t in tasks {
        let part = tokio::time::timeout(deadline, t)
            .await
            .map_err(|_| "connecting took over 120 s".to_string())?
            .map_err(|e| e.to_string())??;
        all.extend(part);
    }
    Ok(all)
}

/// Counters shared by the session tasks of a run.
#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

fn abort_all(tasks: &[JoinHandle<()>]) {
    for t in tasks {
        t.abort();
    }
}

/// Closed loop: each session keeps `inflight` messages outstanding (Socket.IO: `echo` events
/// with ack ids 0..inflight, answered by acks; raw: text messages answered by their echo).
pub async fn echo(
    server: &Server,
    proto: Proto,
    sessions: usize,
    inflight: usize,
    timing: Timing,
) -> Result<Metrics, String> {
    let conns = connect_many(server.addr, proto, sessions, false).await?;
    let counters = Arc::new(Counters::default());
    // Pre-encoded, masked once: frame i is the message with ack id i.
    let frames: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..inflight)
            .map(|i| match proto {
                Proto::SocketIo => client::echo_event(i),
                _ => client::encode(proto, TEXT, client::EVENT_JSON.as_bytes()),
            })
            .collect(),
    );
    let burst: Arc<Vec<u8>> = Arc::new(frames.concat());
    let mut tasks = Vec::with_capacity(sessions);
    for mut conn in conns {
        let (counters, frames, burst) = (counters.clone(), frames.clone(), burst.clone());
        tasks.push(tokio::spawn(async move {
            let run = async {
                conn.send(&burst).await?;
                let mut seen = conn.bytes_in;
                loop {
                    let f = conn.read_data().await?;
                    let id = if proto == Proto::SocketIo {
                        match client::ack_id(conn.payload(f)) {
                            Some(id) if id < frames.len() => id,
                            _ => continue,
                        }
                    } else {
                        0
                    };
                    conn.send(&frames[id]).await?;
                    counters.ops.fetch_add(1, Relaxed);
                    counters.bytes.fetch_add(conn.bytes_in - seen, Relaxed);
                    seen = conn.bytes_in;
                }
            };
            let r: std::io::Result<()> = run.await;
            if r.is_err() {
                counters.errors.fetch_add(1, Relaxed);
            }
        }));
    }
    tokio::time::sleep(timing.warmup).await;
    let (ops0, bytes0, cpu0, gen0, t0) = (
        counters.ops.load(Relaxed),
        counters.bytes.load(Relaxed),
        server.cpu_us(),
        crate::procs::cpu_us(std::process::id()),
        Instant::now(),
    );
    tokio::time::sleep(timing.measure).await;
    let (ops1, bytes1, cpu1, gen1, t1) = (
        counters.ops.load(Relaxed),
        counters.bytes.load(Relaxed),
        server.cpu_us(),
        crate::procs::cpu_us(std::process::id()),
        Instant::now(),
    );
    abort_all(&tasks);
    let secs = (t1 - t0).as_secs_f64();
    let ops = (ops1 - ops0) as f64;
    let cpu = (cpu1 - cpu0) as f64;
    let mut m = Metrics::new();
    m.insert("ops_per_s".into(), ops / secs);
    m.insert(
        "server_cpu_us_per_op".into(),
        if ops > 0.0 { cpu / ops } else { 0.0 },
    );
    m.insert("server_cpu_util".into(), cpu / (secs * 1e6));
    // Near 1.0, the load generator (one thread) and not the server is the limit.
    m.insert(
        "loadgen_cpu_util".into(),
        (gen1 - gen0) as f64 / (secs * 1e6),
    );
    m.insert(
        "mib_in_per_s".into(),
        (bytes1 - bytes0) as f64 / secs / (1 << 20) as f64,
    );
    m.insert("ops".into(), ops);
    m.insert("errors".into(), counters.errors.load(Relaxed) as f64);
    Ok(m)
}

/// A latency histogram in microseconds: exact below 1024 µs, then 512 sub-buckets per power of
/// two (under 0.2 % error).
pub struct Hist {
    buckets: Vec<AtomicU64>,
}

impl Hist {
    pub fn new() -> Hist {
        Hist {
            buckets: (0..1024 + 54 * 512).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn index(us: u64) -> usize {
        if us < 1024 {
            return us as usize;
        }
        let e = 63 - us.leading_zeros() as usize; // >= 10
        let m = ((us >> (e - 9)) & 511) as usize;
        1024 + (e - 10) * 512 + m
    }

    fn value(i: usize) -> u64 {
        if i < 1024 {
            return i as u64;
        }
        let e = (i - 1024) / 512 + 10;
        let m = ((i - 1024) % 512) as u64;
        (512 + m) << (e - 9)
    }

    pub fn record(&self, us: u64) {
        self.buckets[Self::index(us)].fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// The value at quantile `q` (0..=1), in µs.
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Relaxed);
            if seen >= rank {
                return Self::value(i) as f64;
            }
        }
        0.0
    }
}

/// Open loop: `sessions` sessions send `echo` events at `rate` per second in all, whatever the
/// answers; the latency of each ack (from the scheduled send) goes into a histogram.
pub async fn ack_latency(
    server: &Server,
    sessions: usize,
    rate: f64,
    timing: Timing,
) -> Result<Metrics, String> {
    const IDS: usize = 256;
    let conns = connect_many(server.addr, Proto::SocketIo, sessions, false).await?;
    let frames: Arc<Vec<Vec<u8>>> = Arc::new((0..IDS).map(client::echo_event).collect());
    let hist = Arc::new(Hist::new());
    let counters = Arc::new(Counters::default());
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + timing.warmup;
    let measure_until = measure_from + timing.measure;
    let period = Duration::from_secs_f64(sessions as f64 / rate);
    let mut tasks = Vec::new();
    for (n, mut conn) in conns.into_iter().enumerate() {
        let (frames, hist, counters) = (frames.clone(), hist.clone(), counters.clone());
        // Spread the sessions' send times evenly over one period.
        let first = start + period.mul_f64(n as f64 / sessions as f64);
        tasks.push(tokio::spawn(async move {
            let mut sent = [None::<Instant>; IDS];
            let mut seq = 0usize;
            let mut tick = tokio::time::interval_at(first.into(), period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let run = async {
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            let id = seq % IDS;
                            seq += 1;
                            // The actual send time: tokio's timer is only 1 ms fine, so the
                            // scheduled time would add up to 1 ms of our own lag.
                            sent[id] = Some(Instant::now());
                            conn.send(&frames[id]).await?;
                        }
                        f = conn.read_data() => {
                            let f = f?;
                            let now = Instant::now();
                            if let Some(id) = client::ack_id(conn.payload(f)).filter(|&id| id < IDS)
                                && let Some(at) = sent[id].take()
                                && at >= measure_from
                                && at < measure_until
                            {
                                hist.record((now - at).as_micros() as u64);
                                counters.ops.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
            };
            let r: std::io::Result<()> = run.await;
            if r.is_err() {
                counters.errors.fetch_add(1, Relaxed);
            }
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu0 = server.cpu_us();
    tokio::time::sleep_until(measure_until.into()).await;
    let cpu1 = server.cpu_us();
    // Let the last answers come in (they count if sent within the window).
    tokio::time::sleep(Duration::from_millis(200)).await;
    abort_all(&tasks);
    let acks = counters.ops.load(Relaxed) as f64;
    let expected = rate * timing.measure.as_secs_f64();
    let mut m = Metrics::new();
    m.insert("rate".into(), rate);
    m.insert("p50_us".into(), hist.quantile(0.5));
    m.insert("p99_us".into(), hist.quantile(0.99));
    m.insert("p999_us".into(), hist.quantile(0.999));
    m.insert(
        "answered".into(),
        if expected > 0.0 { acks / expected } else { 0.0 },
    );
    m.insert(
        "server_cpu_us_per_op".into(),
        if acks > 0.0 {
            (cpu1 - cpu0) as f64 / acks
        } else {
            0.0
        },
    );
    m.insert("ops".into(), acks);
    m.insert("errors".into(), counters.errors.load(Relaxed) as f64);
    Ok(m)
}

/// The tick number of the probe broadcast that checks a cluster carries broadcasts between its
/// nodes (never a real tick).
const PROBE: usize = 999_999_999;

/// `sessions` sessions in room `bench`, spread evenly over the `nodes` (one server, or a cluster
/// of servers on one Redis: half on each of two); a session on the first node, not in the room,
/// asks it 10 times a second to emit `tick` N to the room. Figures: server CPU per delivery (all
/// nodes summed; with `redis`, Redis's CPU per delivery too), and the latency of the last
/// delivery of each tick (from the request's send), whichever node it came through.
pub async fn broadcast(
    nodes: &[&Server],
    redis: Option<&Redis>,
    sessions: usize,
    timing: Timing,
) -> Result<Metrics, String> {
    let warm_ticks = (timing.warmup.as_secs_f64() * 10.0).round() as usize;
    let ticks = warm_ticks + ((timing.measure.as_secs_f64() * 10.0).round() as usize).max(2);
    let cpu_us = || nodes.iter().map(|s| s.cpu_us()).sum::<u64>();
    let mut members = Vec::with_capacity(sessions);
    for (i, node) in nodes.iter().enumerate() {
        // Node i gets sessions i, i + len, i + 2 len, ...: an even split.
        let share = (sessions + nodes.len() - 1 - i) / nodes.len();
        let conns = connect_many(node.addr, Proto::SocketIo, share, true).await?;
        members.extend(conns.into_iter().map(|c| (i, c)));
    }
    let mut control = Conn::open(nodes[0].addr, Proto::SocketIo, sessions)
        .await
        .map_err(io_err("control session"))?;
    let count: Arc<Vec<AtomicU64>> = Arc::new((0..ticks).map(|_| AtomicU64::new(0)).collect());
    let last_ns: Arc<Vec<AtomicU64>> = Arc::new((0..ticks).map(|_| AtomicU64::new(0)).collect());
    let probed: Arc<Vec<AtomicBool>> =
        Arc::new(nodes.iter().map(|_| AtomicBool::new(false)).collect());
    let base = Instant::now();
    let counters = Arc::new(Counters::default());
    let mut tasks = Vec::new();
    for (node, mut conn) in members {
        let (count, last_ns, probed, counters) = (
            count.clone(),
            last_ns.clone(),
            probed.clone(),
            counters.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let run = async {
                loop {
                    let f = conn.read_data().await?;
                    match client::tick_number(conn.payload(f)) {
                        Some(n) if n < ticks => {
                            let at = base.elapsed().as_nanos() as u64;
                            count[n].fetch_add(1, Relaxed);
                            last_ns[n].fetch_max(at, Relaxed);
                        }
                        Some(PROBE) => probed[node].store(true, Relaxed),
                        _ => {}
                    }
                }
            };
            let r: std::io::Result<()> = run.await;
            if r.is_err() {
                counters.errors.fetch_add(1, Relaxed);
            }
        }));
    }
    if nodes.len() > 1 {
        // A cluster: wait (up to 5 s) until a broadcast from the first node reaches members on
        // every node, so that no node is still subscribing to Redis when the ticks start.
        let probe = client::encode(
            Proto::SocketIo,
            TEXT,
            format!("42[\"bcast\",\"bench\",{PROBE}]").as_bytes(),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        'probing: loop {
            control
                .send(&probe)
                .await
                .map_err(io_err("probe request"))?;
            let resend = Instant::now() + Duration::from_millis(100);
            while Instant::now() < resend {
                tokio::time::sleep(Duration::from_millis(2)).await;
                if probed.iter().all(|p| p.load(Relaxed)) {
                    break 'probing;
                }
            }
            if Instant::now() > deadline {
                abort_all(&tasks);
                return Err(
                    "a broadcast from node 1 reached no member on some node within 5 s".into(),
                );
            }
        }
    }
    let requests: Vec<Vec<u8>> = (0..ticks)
        .map(|n| {
            client::encode(
                Proto::SocketIo,
                TEXT,
                format!("42[\"bcast\",\"bench\",{n}]").as_bytes(),
            )
        })
        .collect();
    let mut sent_ns = vec![0u64; ticks];
    let first = Instant::now() + Duration::from_millis(10);
    let mut cpu0 = cpu_us();
    let mut redis0 = redis.map_or(0, Redis::cpu_us);
    for (n, req) in requests.iter().enumerate() {
        tokio::time::sleep_until((first + Duration::from_millis(100 * n as u64)).into()).await;
        if n == warm_ticks {
            cpu0 = cpu_us();
            redis0 = redis.map_or(0, Redis::cpu_us);
        }
        sent_ns[n] = base.elapsed().as_nanos() as u64;
        control.send(req).await.map_err(io_err("bcast request"))?;
    }
    // Wait (bounded) for the last tick to reach every member.
    let deadline = Instant::now() + Duration::from_secs(5);
    while (count[ticks - 1].load(Relaxed) as usize) < sessions && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu1 = cpu_us();
    let redis1 = redis.map_or(0, Redis::cpu_us);
    abort_all(&tasks);
    let measured = warm_ticks..ticks;
    let deliveries: u64 = measured.clone().map(|n| count[n].load(Relaxed)).sum();
    let complete = measured
        .clone()
        .filter(|&n| count[n].load(Relaxed) as usize == sessions)
        .count();
    let mut lat_ms: Vec<f64> = measured
        .clone()
        .filter(|&n| count[n].load(Relaxed) > 0)
        .map(|n| (last_ns[n].load(Relaxed).saturating_sub(sent_ns[n])) as f64 / 1e6)
        .collect();
    lat_ms.sort_by(f64::total_cmp);
    let pick = |q: f64| -> f64 {
        if lat_ms.is_empty() {
            return 0.0;
        }
        lat_ms[((q * lat_ms.len() as f64).ceil() as usize).clamp(1, lat_ms.len()) - 1]
    };
    let per_delivery = |us: u64| {
        if deliveries > 0 {
            us as f64 / deliveries as f64
        } else {
            0.0
        }
    };
    let mut m = Metrics::new();
    m.insert(
        "server_cpu_us_per_delivery".into(),
        per_delivery(cpu1 - cpu0),
    );
    if redis.is_some() {
        m.insert(
            "redis_cpu_us_per_delivery".into(),
            per_delivery(redis1 - redis0),
        );
    }
    m.insert("last_delivery_p50_ms".into(), pick(0.5));
    m.insert("last_delivery_p99_ms".into(), pick(0.99));
    m.insert(
        "complete_ticks".into(),
        complete as f64 / measured.len() as f64,
    );
    m.insert("deliveries".into(), deliveries as f64);
    m.insert("ops".into(), deliveries as f64);
    m.insert("errors".into(), counters.errors.load(Relaxed) as f64);
    Ok(m)
}

/// Asks a Socket.IO server to collect garbage (Node does; the Rust servers just ack) and waits.
async fn settle_gc(control: Option<&mut Conn>) -> Result<(), String> {
    if let Some(conn) = control {
        let req = client::encode(Proto::SocketIo, TEXT, br#"427["gc"]"#);
        conn.send(&req).await.map_err(io_err("gc"))?;
        let wait = async {
            loop {
                let f = conn.read_data().await?;
                if client::ack_id(conn.payload(f)) == Some(7) {
                    return Ok::<_, std::io::Error>(());
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .map_err(|_| "gc ack timed out".to_string())?
            .map_err(io_err("gc ack"))?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// RSS growth per session with `sessions` idle sessions open (after settling and, for Node, a
/// forced GC before each reading).
pub async fn idle_memory(
    server: &Server,
    proto: Proto,
    sessions: usize,
    settle: Duration,
) -> Result<Metrics, String> {
    let mut control = if proto == Proto::SocketIo {
        Some(
            Conn::open(server.addr, proto, 0)
                .await
                .map_err(io_err("control session"))?,
        )
    } else {
        None
    };
    settle_gc(control.as_mut()).await?;
    let rss0 = server.rss();
    let conns = connect_many(server.addr, proto, sessions, false).await?;
    tokio::time::sleep(settle).await;
    settle_gc(control.as_mut()).await?;
    let rss1 = server.rss();
    let open = conns.len();
    drop(conns);
    let mut m = Metrics::new();
    m.insert(
        "rss_per_session_bytes".into(),
        rss1.saturating_sub(rss0) as f64 / open.max(1) as f64,
    );
    m.insert("rss_base_mib".into(), rss0 as f64 / (1 << 20) as f64);
    m.insert("rss_loaded_mib".into(), rss1 as f64 / (1 << 20) as f64);
    m.insert("ops".into(), open as f64);
    m.insert("errors".into(), 0.0);
    Ok(m)
}

/// `CONNECTORS` concurrent connectors open `sessions` sessions (upgrade; Socket.IO: open and
/// `40`), all kept open to the end.
pub async fn connect_storm(
    server: &Server,
    proto: Proto,
    sessions: usize,
) -> Result<Metrics, String> {
    let cpu0 = server.cpu_us();
    let t0 = Instant::now();
    let conns = connect_many(server.addr, proto, sessions, false).await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = server.cpu_us();
    let open = conns.len();
    drop(conns);
    let mut m = Metrics::new();
    m.insert("sessions_per_s".into(), open as f64 / secs);
    m.insert(
        "server_cpu_us_per_session".into(),
        (cpu1 - cpu0) as f64 / open.max(1) as f64,
    );
    m.insert("ops".into(), open as f64);
    m.insert("errors".into(), 0.0);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::Hist;

    #[test]
    fn histogram_quantiles() {
        let h = Hist::new();
        for us in 1..=1000 {
            h.record(us);
        }
        h.record(50_000);
        assert_eq!(h.quantile(0.5), 501.0); // 1001 samples: the 501st
        let top = h.quantile(1.0);
        assert!((top - 50_000.0).abs() / 50_000.0 < 0.01, "{top}");
    }
}
