//! `hunchensocket-bench`: hunchensocket side by side with its peers.
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml -- compare [--quick|--smoke]
//!     [--only WORKLOAD,...] [--peers PEER,...] [--extra]
//! ```
//!
//! The harness starts each server as its own process pinned to CPU 0 (`serve-KIND`, or Node),
//! drives it from this process (one thread, pinned to CPU 1), reads the server's CPU time and
//! RSS from /proc, and writes `target/bench/results.json` and `target/bench/ratios.svg`. The
//! cluster workload starts a redis-server (CPU 1) and two servers (both on CPU 0) on it.
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml -- soak [--seconds 600] [--sessions 10000] ...
//! ```
//!
//! runs our Socket.IO server (`serve-soak`) for minutes under acked events, room broadcasts and
//! clients that leave and come back, and checks that nothing is lost or duplicated, that its heap
//! and RSS stay flat and that it returns to its baseline (`target/bench/soak-results.json`,
//! `soak-rss.svg`). The soak's server runs on mimalloc unless `--allocator glibc` says otherwise;
//! every other server of this binary runs on the system allocator (src/alloc.rs says why and how).
//! See bench/README.md.

mod alloc;
mod client;
mod procs;
mod report;
mod servers;
mod soak;
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use client::Proto;
use procs::{Launch, Redis, Server};
use workloads::{Metrics, Timing};

const USAGE: &str = "usage:
  hunchensocket-bench compare [--quick|--smoke] [--only WORKLOAD,...] [--peers PEER,...] [--extra]
  hunchensocket-bench serve-KIND [--workers N] [--redis URL]
      (KIND: io, echo, sioxide, fws, soak; 0 workers = current_thread; --redis: io and sioxide)
  hunchensocket-bench list
  hunchensocket-bench soak [--seconds 600] [--sessions 10000] [--rooms 100] [--ack-rate 5000]
      [--bcast-rate 100] [--churn 1] [--seed 1] [--out DIR] [--rss-advisory]";

/// How thorough a comparison is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Seconds: proves every step runs and moves messages; asserts no speed.
    Smoke,
    /// Under a minute: one short run of each peer.
    Quick,
    /// Minutes: five interleaved runs of each peer, medians.
    Full,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Smoke => "smoke",
            Mode::Quick => "quick",
            Mode::Full => "full",
        }
    }
    fn runs(self) -> usize {
        match self {
            Mode::Smoke | Mode::Quick => 1,
            Mode::Full => 5,
        }
    }
    fn timing(self) -> Timing {
        let (w, m) = match self {
            Mode::Smoke => (50, 200),
            Mode::Quick => (200, 800),
            Mode::Full => (500, 2000),
        };
        Timing {
            warmup: Duration::from_millis(w),
            measure: Duration::from_millis(m),
        }
    }
    /// Session counts: the workload's own in quick and full, small ones in smoke.
    fn sessions(self, n: usize) -> usize {
        match self {
            Mode::Smoke => n.min(20),
            Mode::Quick | Mode::Full => n,
        }
    }
}

/// A server under test and how the load generator talks to it.
#[derive(Clone, Debug)]
pub struct Peer {
    pub name: &'static str,
    pub launch: Launch,
    pub proto: Proto,
}

/// Which kind of server a workload is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    SocketIo,
    Raw,
}

fn peers(family: Family, extra: bool) -> Vec<Peer> {
    let rust = |name, kind, workers, proto| Peer {
        name,
        launch: Launch::Rust { kind, workers },
        proto,
    };
    match family {
        Family::SocketIo => {
            let mut v = vec![
                rust("hunchensocket", "io", 1, Proto::SocketIo),
                rust("socketioxide", "sioxide", 1, Proto::SocketIo),
                Peer {
                    name: "node-socketio",
                    launch: Launch::Node,
                    proto: Proto::SocketIo,
                },
            ];
            if extra {
                v.push(rust("hunchensocket-ct", "io", 0, Proto::SocketIo));
                v.push(rust("hunchensocket-2t", "io", 2, Proto::SocketIo));
                v.push(rust("socketioxide-2t", "sioxide", 2, Proto::SocketIo));
            }
            v
        }
        Family::Raw => {
            let mut v = vec![
                rust("hunchensocket", "echo", 1, Proto::Rfc6455),
                rust("hunchensocket-hixie76", "echo", 1, Proto::Hixie76),
                rust("fastwebsockets", "fws", 1, Proto::Rfc6455),
            ];
            if extra {
                v.push(rust("hunchensocket-ct", "echo", 0, Proto::Rfc6455));
                v.push(rust("fastwebsockets-ct", "fws", 0, Proto::Rfc6455));
            }
            v
        }
    }
}

/// What a workload does (`ClusterBroadcast`: two servers on one Redis, the sessions half on each,
/// broadcasts from the first).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Echo { sessions: usize, inflight: usize },
    AckLatency { sessions: usize, rate: f64 },
    Broadcast { sessions: usize },
    ClusterBroadcast { sessions: usize },
    IdleMemory { sessions: usize },
    ConnectStorm { sessions: usize },
}

/// A workload: what runs, against which family, and its headline figure.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: &'static str,
    family: Family,
    kind: Kind,
    pub metric: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub about: &'static str,
}

#[rustfmt::skip] // a table: one workload to two lines reads better than rustfmt's eight
fn all_workloads() -> Vec<Workload> {
    use Family::*;
    use Kind::*;
    let w = |name, family, kind, metric, unit, higher_is_better, about| Workload {
        name, family, kind, metric, unit, higher_is_better, about,
    };
    vec![
        w("echo-1", SocketIo, Echo { sessions: 1, inflight: 1 }, "ops_per_s", "ops/s", true,
          "1 session, 1 echo event in flight, ack round trip"),
        w("echo-100", SocketIo, Echo { sessions: 100, inflight: 1 }, "ops_per_s", "ops/s", true,
          "100 sessions, 1 echo event in flight each, ack round trip"),
        w("echo-100x16", SocketIo, Echo { sessions: 100, inflight: 16 }, "ops_per_s", "ops/s", true,
          "100 sessions, 16 echo events in flight each"),
        w("echo-1000", SocketIo, Echo { sessions: 1000, inflight: 1 }, "ops_per_s", "ops/s", true,
          "1000 sessions, 1 echo event in flight each"),
        w("ack-latency", SocketIo, AckLatency { sessions: 100, rate: 5000.0 }, "p99_us", "µs", false,
          "open loop, 5000 acks/s over 100 sessions: ack latency p50/p99/p99.9"),
        w("broadcast-1000", SocketIo, Broadcast { sessions: 1000 }, "server_cpu_us_per_delivery", "µs", false,
          "1000 sessions in a room, 10 room emits/s: server CPU per delivery, last-delivery latency"),
        w("broadcast-10000", SocketIo, Broadcast { sessions: 10_000 }, "server_cpu_us_per_delivery", "µs", false,
          "10 000 sessions in a room, 10 room emits/s"),
        w("cluster-broadcast", SocketIo, ClusterBroadcast { sessions: 1000 }, "server_cpu_us_per_delivery", "µs", false,
          "2 servers on 1 Redis, 1000 sessions half on each in a room, 10 emits/s from node 1: CPU of both per delivery"),
        w("idle-memory", SocketIo, IdleMemory { sessions: 10_000 }, "rss_per_session_bytes", "B/session", false,
          "RSS growth per idle Socket.IO session at 10 000 sessions"),
        w("connect-storm", SocketIo, ConnectStorm { sessions: 10_000 }, "sessions_per_s", "sessions/s", true,
          "64 concurrent connectors open 10 000 sessions (upgrade, open, 40)"),
        w("raw-echo", Raw, Echo { sessions: 100, inflight: 1 }, "ops_per_s", "ops/s", true,
          "raw WebSocket echo, 100 sessions, 1 message in flight each"),
        w("raw-echo-x16", Raw, Echo { sessions: 100, inflight: 16 }, "ops_per_s", "ops/s", true,
          "raw WebSocket echo, 100 sessions, 16 messages in flight each"),
        w("raw-idle-memory", Raw, IdleMemory { sessions: 10_000 }, "rss_per_session_bytes", "B/session", false,
          "RSS growth per idle raw WebSocket session at 10 000 sessions"),
    ]
}

/// The median of each figure over the runs.
fn medians(runs: &[Metrics]) -> Metrics {
    let mut out = Metrics::new();
    if let Some(first) = runs.first() {
        for key in first.keys() {
            let mut v: Vec<f64> = runs.iter().filter_map(|m| m.get(key).copied()).collect();
            v.sort_by(f64::total_cmp);
            let mid = v.len() / 2;
            let med = if v.len() % 2 == 1 {
                v[mid]
            } else {
                (v[mid - 1] + v[mid]) / 2.0
            };
            out.insert(key.clone(), med);
        }
    }
    out
}

async fn run_one(
    w: &Workload,
    peer: &Peer,
    mode: Mode,
    nodes: &[Server],
    redis: Option<&Redis>,
) -> Result<Metrics, String> {
    let timing = mode.timing();
    let server = &nodes[0];
    match w.kind {
        Kind::Echo { sessions, inflight } => {
            workloads::echo(
                server,
                peer.proto,
                mode.sessions(sessions),
                inflight,
                timing,
            )
            .await
        }
        Kind::AckLatency { sessions, rate } => {
            let rate = if mode == Mode::Smoke { 200.0 } else { rate };
            workloads::ack_latency(server, mode.sessions(sessions), rate, timing).await
        }
        Kind::Broadcast { sessions } | Kind::ClusterBroadcast { sessions } => {
            let nodes: Vec<&Server> = nodes.iter().collect();
            workloads::broadcast(&nodes, redis, mode.sessions(sessions), timing).await
        }
        Kind::IdleMemory { sessions } => {
            let settle = match mode {
                Mode::Smoke => Duration::from_millis(100),
                Mode::Quick => Duration::from_millis(500),
                Mode::Full => Duration::from_secs(2),
            };
            workloads::idle_memory(server, peer.proto, mode.sessions(sessions), settle).await
        }
        Kind::ConnectStorm { sessions } => {
            workloads::connect_storm(server, peer.proto, mode.sessions(sessions)).await
        }
    }
}

/// In smoke mode: every step ran and moved messages (no speed is asserted).
fn smoke_check(w: &Workload, peer: &Peer, m: &Metrics) -> Result<(), String> {
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
    if get("ops") <= 0.0 {
        return Err(format!("{} / {}: no messages moved", w.name, peer.name));
    }
    if get("errors") > 0.0 {
        return Err(format!(
            "{} / {}: {} sessions failed",
            w.name,
            peer.name,
            get("errors")
        ));
    }
    if matches!(
        w.kind,
        Kind::Broadcast { .. } | Kind::ClusterBroadcast { .. }
    ) && get("complete_ticks") < 1.0
    {
        return Err(format!(
            "{} / {}: a tick missed some members",
            w.name, peer.name
        ));
    }
    Ok(())
}

/// Where each process runs: the servers on one CPU, the load generator and Redis on another
/// (`None`: not pinned).
#[derive(Clone, Copy)]
struct Cpus {
    server: Option<usize>,
    loadgen: Option<usize>,
}

/// One step: start the peer's server (a fresh one; for a cluster workload, a fresh redis-server
/// and two servers on it), run the workload, check that everything it started is still alive,
/// and stop it all (by PID, when the handles drop).
fn run_step(
    rt: &tokio::runtime::Runtime,
    w: &Workload,
    p: &Peer,
    mode: Mode,
    cpus: Cpus,
    out_dir: &std::path::Path,
) -> Result<Metrics, String> {
    let log = |part: &str| out_dir.join(format!("logs/{}-{}{part}.log", w.name, p.name));
    if !matches!(w.kind, Kind::ClusterBroadcast { .. }) {
        let log = log("");
        let mut server = Server::start(&p.launch, cpus.server, None, &log)?;
        let r = rt.block_on(run_one(w, p, mode, std::slice::from_ref(&server), None));
        if !server.alive() {
            return Err(format!("server died; see {}", log.display()));
        }
        return r;
    }
    let redis_log = log("-redis");
    let mut redis = Redis::start(cpus.loadgen, &redis_log)?;
    let url = redis.url();
    let logs = [log("-node1"), log("-node2")];
    let mut nodes = Vec::with_capacity(2);
    for log in &logs {
        nodes.push(Server::start(&p.launch, cpus.server, Some(&url), log)?);
    }
    let r = rt.block_on(run_one(w, p, mode, &nodes, Some(&redis)));
    for (server, log) in nodes.iter_mut().zip(&logs) {
        if !server.alive() {
            return Err(format!("server died; see {}", log.display()));
        }
    }
    if !redis.alive() {
        return Err(format!("redis-server died; see {}", redis_log.display()));
    }
    r
}

fn target_dir() -> PathBuf {
    procs::bench_dir().join("../target/bench")
}

fn compare(args: &[String]) -> Result<(), String> {
    let mut mode = Mode::Full;
    let mut only: Option<Vec<String>> = None;
    let mut only_peers: Option<Vec<String>> = None;
    let mut extra = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => mode = Mode::Smoke,
            "--quick" => mode = Mode::Quick,
            "--full" => mode = Mode::Full,
            "--extra" => extra = true,
            "--only" => {
                only = Some(
                    it.next()
                        .ok_or("--only needs a list")?
                        .split(',')
                        .map(String::from)
                        .collect(),
                )
            }
            "--peers" => {
                only_peers = Some(
                    it.next()
                        .ok_or("--peers needs a list")?
                        .split(',')
                        .map(String::from)
                        .collect(),
                )
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let mut selected: Vec<Workload> = all_workloads();
    if let Some(only) = &only {
        for name in only {
            if !selected.iter().any(|w| w.name == name) {
                return Err(format!("unknown workload {name:?} (see `list`)"));
            }
        }
        selected.retain(|w| only.iter().any(|n| n == w.name));
    }

    let nofile = procs::raise_nofile_limit();
    let cpus = procs::cpus();
    // Servers on CPU 0, load generator (and Redis) on CPU 1; with fewer CPUs, nothing is pinned.
    let (server_cpu, pinned) = if cpus >= 2 {
        (Some(0), procs::pin_to_cpu(1))
    } else {
        (None, false)
    };
    let placement = Cpus {
        server: server_cpu,
        loadgen: pinned.then_some(1),
    };
    let out_dir = target_dir();
    std::fs::create_dir_all(out_dir.join("logs")).map_err(|e| e.to_string())?;
    let out_dir = out_dir.canonicalize().unwrap_or(out_dir);
    let machine = report::machine(cpus, pinned);
    eprintln!(
        "bench: mode {}, {} workload(s), open-files limit {nofile}, {machine}",
        mode.name(),
        selected.len()
    );
    if nofile < 10_500 && mode != Mode::Smoke {
        eprintln!("bench: warning: open-files limit {nofile} is below what 10 000 sessions need");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut results: Vec<(Workload, Vec<(Peer, Metrics)>)> = Vec::new();
    let mut failures = Vec::new();
    for w in &selected {
        let mut ps = peers(w.family, extra);
        if let Some(keep) = &only_peers {
            ps.retain(|p| keep.iter().any(|k| k == p.name) || p.name == "hunchensocket");
        }
        let mut runs: BTreeMap<&str, Vec<Metrics>> = BTreeMap::new();
        // Peers interleaved: A B C, A B C, ...
        for run in 0..mode.runs() {
            for p in &ps {
                let t = Instant::now();
                let outcome = run_step(&rt, w, p, mode, placement, &out_dir);
                // Let the closed sockets drain before the next server starts.
                std::thread::sleep(Duration::from_millis(50));
                match outcome {
                    Ok(m) => {
                        let headline = m.get(w.metric).copied().unwrap_or(f64::NAN);
                        eprintln!(
                            "  {:<17} {:<22} run {} {:>12} {:<10} ({:.1} s)",
                            w.name,
                            p.name,
                            run + 1,
                            report::fmt_num(headline),
                            w.unit,
                            t.elapsed().as_secs_f64()
                        );
                        if mode == Mode::Smoke
                            && let Err(e) = smoke_check(w, p, &m)
                        {
                            failures.push(e);
                        }
                        runs.entry(p.name).or_default().push(m);
                    }
                    Err(e) => {
                        eprintln!(
                            "  {:<17} {:<22} run {} FAILED: {e}",
                            w.name,
                            p.name,
                            run + 1
                        );
                        failures.push(format!("{} / {}: {e}", w.name, p.name));
                    }
                }
            }
        }
        let per_peer: Vec<(Peer, Metrics)> = ps
            .iter()
            .filter_map(|p| runs.get(p.name).map(|r| (p.clone(), medians(r))))
            .collect();
        results.push((w.clone(), per_peer));
    }
    let elapsed = started.elapsed();

    let json = report::json(&machine, mode.name(), mode.runs(), &results, elapsed);
    let json_path = out_dir.join("results.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", json_path.display()))?;
    let svg_path = out_dir.join("ratios.svg");
    std::fs::write(&svg_path, report::svg(&results, mode.name()))
        .map_err(|e| format!("{}: {e}", svg_path.display()))?;
    println!(
        "{}",
        report::markdown(&results, &machine, mode.name(), mode.runs())
    );
    eprintln!(
        "bench: {} in {:.1} s; wrote {} and {}",
        mode.name(),
        elapsed.as_secs_f64(),
        json_path.display(),
        svg_path.display()
    );
    if failures.is_empty() {
        if mode == Mode::Smoke {
            println!(
                "bench-smoke: ok ({} peer results, every step moved messages)",
                results.iter().map(|(_, p)| p.len()).sum::<usize>()
            );
        }
        Ok(())
    } else {
        Err(format!(
            "{} step(s) failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ))
    }
}

/// `serve-KIND [--workers N] [--redis URL]`.
fn serve(kind: &str, args: &[String]) -> Result<(), String> {
    let mut workers = 1;
    let mut redis = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--workers" => {
                workers = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--workers needs a number")?
            }
            "--redis" => redis = Some(it.next().ok_or("--redis needs a URL")?.as_str()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if kind == "soak" {
        if redis.is_some() {
            return Err("serve-soak takes no --redis".into());
        }
        return soak::serve(workers);
    }
    servers::serve(kind, workers, redis)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("compare") => compare(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("list") => {
            for w in all_workloads() {
                println!("{:<17} {}", w.name, w.about);
            }
            Ok(())
        }
        Some(cmd) if cmd.starts_with("serve-") => serve(&cmd["serve-".len()..], &args[1..]),
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}
