//! The soak run: hunchensocket-io (`serve-soak`: the bench events plus the admin events `stats`
//! and `trim`) under a steady mixed load for minutes: acked events, room broadcasts, and clients
//! that leave and come back. Every ack and every broadcast is accounted for, the server's RSS and
//! heap in use are sampled each second and must stay flat after the warm-up, and once everyone
//! has left its connections, sockets, rooms and tokio tasks must be back at their baseline. See
//! bench/README.md, "Soak".
//!
//! ```text
//! hunchensocket-bench soak [--seconds 600] [--sessions 10000] [--rooms 100] [--ack-rate 5000]
//!     [--bcast-rate 100] [--churn 1] [--seed 1] [--out DIR] [--rss-advisory]
//! ```

mod load;
mod output;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use crate::client::{Conn, Proto};
use crate::procs::{self, Launch, Server};
use crate::report::fmt_num;
use crate::workloads::{CONNECTORS, Hist};
use load::{Admin, Phase, Shared, Stats, Tally, control, session};
use output::{print_line, rss_svg};
pub use server::serve;

pub const USAGE: &str =
    "hunchensocket-bench soak [--seconds 600] [--sessions 10000] [--rooms 100] \
[--ack-rate 5000] [--bcast-rate 100] [--churn 1] [--seed 1] [--allocator mimalloc|glibc]
[--out DIR] [--rss-advisory]
      (rates per second over all sessions; --churn: percent of sessions that leave and come back
       each second; --allocator: the server's, default mimalloc; DIR: where soak-results.json and
       soak-rss.svg go, default target/bench; --rss-advisory: RSS growth after the warm-up is
       reported, only heap growth fails the run)";

/// What a soak run does.
#[derive(Clone, Debug)]
struct Plan {
    /// Length of the load phase (after every session has connected once).
    seconds: u64,
    sessions: usize,
    /// Session `i` is in room `r{i % rooms}`.
    rooms: usize,
    /// Acked `echo` events per second, all sessions together (each session at its own even pace).
    ack_rate: f64,
    /// Room broadcasts per second, all rooms together (round robin).
    bcast_rate: f64,
    /// Share of the sessions that leave and reconnect each second (0.01: 1 %/s).
    churn: f64,
    seed: u64,
    /// The server's allocator: one of [`crate::alloc::NAMES`].
    allocator: &'static str,
    out: PathBuf,
    /// RSS growth after the warm-up is printed but does not fail the run (the heap check does).
    rss_advisory: bool,
}

impl Plan {
    fn parse(args: &[String]) -> Result<Plan, String> {
        let mut plan = Plan {
            seconds: 600,
            sessions: 10_000,
            rooms: 100,
            ack_rate: 5000.0,
            bcast_rate: 100.0,
            churn: 0.01,
            seed: 1,
            allocator: crate::alloc::NAMES[0],
            out: crate::target_dir(),
            rss_advisory: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value\nusage: {USAGE}"))
            };
            let number = |name: &str, v: String| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| format!("{name}: {v:?} is not a number\nusage: {USAGE}"))
            };
            match a.as_str() {
                "--seconds" => plan.seconds = number(a, value(a)?)? as u64,
                "--sessions" => plan.sessions = number(a, value(a)?)? as usize,
                "--rooms" => plan.rooms = number(a, value(a)?)? as usize,
                "--ack-rate" => plan.ack_rate = number(a, value(a)?)?,
                "--bcast-rate" => plan.bcast_rate = number(a, value(a)?)?,
                "--churn" => plan.churn = number(a, value(a)?)? / 100.0,
                "--seed" => plan.seed = number(a, value(a)?)? as u64,
                "--allocator" => {
                    let v = value(a)?;
                    plan.allocator = crate::alloc::NAMES
                        .into_iter()
                        .find(|n| *n == v)
                        .ok_or_else(|| {
                            format!(
                                "--allocator: {v:?} is not one of {:?}\nusage: {USAGE}",
                                crate::alloc::NAMES
                            )
                        })?;
                }
                "--out" => plan.out = PathBuf::from(value(a)?),
                "--rss-advisory" => plan.rss_advisory = true,
                other => return Err(format!("unknown argument {other:?}\nusage: {USAGE}")),
            }
        }
        if plan.seconds < 5 || plan.sessions == 0 || plan.rooms == 0 {
            return Err(format!(
                "at least 5 seconds, 1 session and 1 room\nusage: {USAGE}"
            ));
        }
        plan.rooms = plan.rooms.min(plan.sessions);
        Ok(plan)
    }

    /// How many one-second samples make a level: a tenth of the run, at least 3 (a minute of
    /// the default 10). The level at the end of the warm-up is the median of the first
    /// `window_s` samples from it, the level at the end the median of the last `window_s`: one
    /// sample's swing (mimalloc's RSS moves by 2 MiB from one second to the next) is not growth.
    fn window_s(&self) -> u64 {
        (self.seconds / 10).max(3)
    }

    /// RSS must be flat from the end of the warm-up to the end of the load: 20 % of the run
    /// (minute 2 of the default 10 minutes), but at least 10 s (an allocator's caches take
    /// that long to fill after 10 000 sessions connect at once: mimalloc's RSS rises by 2-3 %
    /// in those seconds, heap flat) and at most half the run.
    fn warmup_s(&self) -> u64 {
        (self.seconds / 5).max(10).min(self.seconds / 2)
    }
}

/// One sample a second.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Seconds since the load started (negative: before).
    t: f64,
    phase: Phase,
    stats: Stats,
    joined: u64,
    acked: u64,
    deliveries: u64,
    reconnects: u64,
}

/// The median of one figure over a window of samples.
fn level(window: &[Sample], figure: fn(&Stats) -> u64) -> u64 {
    let mut values: Vec<u64> = window.iter().map(|s| figure(&s.stats)).collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// A count or a rate for people: no decimals when it is whole.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1000.0 {
        format!("{v:.0}")
    } else {
        fmt_num(v)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// `soak ...`: the whole run; an error when it could not run or an invariant failed.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut plan = Plan::parse(args)?;
    let nofile = procs::raise_nofile_limit();
    if (nofile as usize) < plan.sessions + 500 {
        return Err(format!(
            "open-files limit {nofile} is below what {} sessions need",
            plan.sessions
        ));
    }
    let cpus = procs::cpus();
    let (server_cpu, pinned) = if cpus >= 2 {
        (Some(0), procs::pin_to_cpu(1))
    } else {
        (None, false)
    };
    let machine = crate::report::machine(cpus, pinned);
    let logs = crate::target_dir().join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let logs = logs.canonicalize().unwrap_or(logs);
    std::fs::create_dir_all(&plan.out).map_err(|e| format!("{}: {e}", plan.out.display()))?;
    plan.out = plan.out.canonicalize().unwrap_or(plan.out);
    let log = logs.join("soak-hunchensocket.log");
    eprintln!(
        "soak: {} s, {} sessions in {} rooms, {} acked events/s, {} broadcasts/s, {} %/s leave and \
         come back; the server on {}; {machine}",
        plan.seconds,
        num(plan.sessions as f64),
        plan.rooms,
        num(plan.ack_rate),
        num(plan.bcast_rate),
        plan.churn * 100.0,
        plan.allocator
    );
    let launch = Launch::Soak {
        allocator: plan.allocator,
    };
    let mut server = Server::start(&launch, server_cpu, None, &log)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let outcome = rt.block_on(drive(&plan, &server));
    let alive = server.alive();
    let mut outcome = outcome?;
    if !alive {
        outcome.checks.push(Check::new(
            "server alive at the end",
            false,
            format!("it died; see {}", log.display()),
        ));
    }
    let json_path = plan.out.join("soak-results.json");
    std::fs::write(&json_path, outcome.json_text(&plan, &machine))
        .map_err(|e| format!("{}: {e}", json_path.display()))?;
    let svg_path = plan.out.join("soak-rss.svg");
    std::fs::write(&svg_path, rss_svg(&plan, &outcome))
        .map_err(|e| format!("{}: {e}", svg_path.display()))?;
    println!("{}", outcome.summary(&plan));
    eprintln!(
        "soak: wrote {} and {} (server log {})",
        json_path.display(),
        svg_path.display(),
        log.display()
    );
    let failed: Vec<&str> = outcome
        .checks
        .iter()
        .filter(|c| c.fails_run())
        .map(|c| c.name)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("soak: FAILED: {}", failed.join("; ")))
    }
}

/// An invariant and whether it held.
struct Check {
    name: &'static str,
    /// Whether the invariant held.
    ok: bool,
    /// Whether a failure fails the run (all but RSS under `--rss-advisory`).
    enforced: bool,
    detail: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, detail: String) -> Check {
        Check {
            name,
            ok,
            enforced: true,
            detail,
        }
    }

    fn fails_run(&self) -> bool {
        !self.ok && self.enforced
    }
}

/// Everything a run measured.
struct Outcome {
    samples: Vec<Sample>,
    baseline: Stats,
    after_leave: Stats,
    after_trim: Stats,
    back_after_s: Option<f64>,
    ramp_s: f64,
    drain_s: f64,
    totals: Vec<(&'static str, u64)>,
    broadcasts: u64,
    latency_us: [f64; 4],
    warm_rss: u64,
    end_rss: u64,
    max_rss_after_warm: u64,
    checks: Vec<Check>,
}

async fn drive(plan: &Plan, server: &Server) -> Result<Outcome, String> {
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        addr: server.addr,
        tally: Tally::default(),
        bsent: (0..plan.rooms).map(|_| AtomicU64::new(0)).collect(),
        connectors: Semaphore::new(CONNECTORS),
        latency: Hist::new(),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let open = |source| async move {
        Conn::open(server.addr, Proto::SocketIo, source)
            .await
            .map_err(|e| format!("admin/control session: {e}"))
    };
    let control_conn = open(plan.sessions).await?;
    let mut admin = Admin {
        conn: open(plan.sessions + 1).await?,
        next_id: 1,
    };
    let control_task = tokio::spawn(control(control_conn, shared.clone(), phase_rx.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = admin.stats().await?;
    eprintln!(
        "soak: baseline (admin and control sessions): {} connections, {} sockets, {} rooms, {} \
         tasks, RSS {:.1} MiB",
        baseline.connections,
        baseline.sockets,
        baseline.rooms,
        baseline.tasks,
        mib(baseline.rss)
    );
    let mut samples = vec![Sample {
        t: 0.0,
        phase: Phase::Run,
        stats: baseline,
        joined: 0,
        acked: 0,
        deliveries: 0,
        reconnects: 0,
    }];

    // Every session connects (64 at a time) and starts its load as soon as it has joined.
    let ramp_start = Instant::now();
    let tasks: Vec<_> = (0..plan.sessions)
        .map(|i| tokio::spawn(session(i, shared.clone(), phase_rx.clone())))
        .collect();
    let ramp_deadline = ramp_start + Duration::from_secs(120);
    while (shared.tally.ever_joined.load(Relaxed) as usize) < plan.sessions {
        if Instant::now() > ramp_deadline {
            let _ = phase_tx.send(Phase::Leave);
            return Err(format!(
                "only {} of {} sessions connected within 120 s",
                shared.tally.ever_joined.load(Relaxed),
                plan.sessions
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp_s = ramp_start.elapsed().as_secs_f64();
    eprintln!(
        "soak: {} sessions connected and joined in {ramp_s:.1} s",
        num(plan.sessions as f64)
    );

    let t0 = tokio::time::Instant::now();
    let sample = |admin_stats: Stats, t: f64, phase: Phase| {
        let tally = &shared.tally;
        Sample {
            t,
            phase,
            stats: admin_stats,
            joined: tally.joined.load(Relaxed),
            acked: tally.acked.load(Relaxed),
            deliveries: tally.deliveries.load(Relaxed),
            reconnects: tally.reconnects.load(Relaxed),
        }
    };
    let mut last_print: Option<Sample> = None;
    for s in 1..=plan.seconds {
        tokio::time::sleep_until(t0 + Duration::from_secs(s)).await;
        let st = admin.stats().await?;
        let now = sample(st, s as f64, Phase::Run);
        if s % 10 == 0 || s == plan.seconds {
            print_line(&now, last_print.as_ref());
            last_print = Some(now);
        }
        samples.push(now);
    }

    // Drain: nothing new; wait (up to 10 s) until every answer is in and the last broadcasts
    // (1 s after the last request) have arrived.
    let _ = phase_tx.send(Phase::Drain);
    let drain_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    while shared.tally.inflight.load(Relaxed) > 0 && drain_start.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain_s = drain_start.elapsed().as_secs_f64();
    let st = admin.stats().await?;
    samples.push(sample(st, t0.elapsed().as_secs_f64(), Phase::Drain));

    // Everyone leaves; the server must come back to its baseline.
    let _ = phase_tx.send(Phase::Leave);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let leave_start = Instant::now();
    let mut after_leave;
    let mut back_after_s = None;
    loop {
        after_leave = admin.stats().await?;
        samples.push(sample(
            after_leave,
            t0.elapsed().as_secs_f64(),
            Phase::Leave,
        ));
        let counts = |s: Stats| Stats {
            rss: 0,
            heap: 0,
            ..s
        };
        let same = counts(after_leave) == counts(baseline);
        if same {
            back_after_s = Some(leave_start.elapsed().as_secs_f64());
            break;
        }
        if leave_start.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A few seconds more of the curve after the sessions left.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let st = admin.stats().await?;
        samples.push(sample(st, t0.elapsed().as_secs_f64(), Phase::Leave));
        after_leave = st;
    }
    // What RSS still holds once the allocator returns its free pages.
    admin.ask("trim").await?;
    let after_trim = admin.stats().await?;
    control_task.abort();

    let tally = &shared.tally;
    let load = |c: &AtomicU64| c.load(Relaxed);
    let warm = plan.warmup_s() as usize;
    let (end, window) = (plan.seconds as usize, plan.window_s() as usize);
    let at_warm = &samples[warm..warm + window];
    let at_end = &samples[end + 1 - window..=end];
    let warm_rss = level(at_warm, |st| st.rss);
    let end_rss = level(at_end, |st| st.rss);
    let max_rss_after_warm = samples[warm..=plan.seconds as usize]
        .iter()
        .map(|s| s.stats.rss)
        .max()
        .unwrap_or(0);
    let growth = end_rss as f64 / warm_rss.max(1) as f64 - 1.0;
    let (warm_heap, end_heap) = (level(at_warm, |st| st.heap), level(at_end, |st| st.heap));
    let (warm_span, end_span) = (
        format!("t={warm}-{} s", warm + window - 1),
        format!("t={}-{end} s", end + 1 - window),
    );
    let heap_growth = end_heap as f64 / warm_heap.max(1) as f64 - 1.0;
    let broadcasts: u64 = shared.bsent.iter().map(|b| b.load(Relaxed)).sum();
    let lat = &shared.latency;
    let latency_us = [
        lat.quantile(0.5),
        lat.quantile(0.99),
        lat.quantile(0.999),
        lat.quantile(1.0),
    ];
    let lost = load(&tally.lost_acks);
    let (dup, wrong) = (load(&tally.duplicate_acks), load(&tally.wrong_acks));
    let sent = load(&tally.sent);
    let accounted = load(&tally.acked) + load(&tally.failed_on_leave) + lost + wrong;
    let (tdup, tgap) = (load(&tally.tick_duplicates), load(&tally.tick_gaps));
    let (unexpected, cfail) = (
        load(&tally.unexpected_closes),
        load(&tally.connect_failures),
    );
    let checks = vec![
        Check {
            name: "acks: none lost, duplicated or wrong",
            ok: lost == 0 && dup == 0 && wrong == 0 && accounted == sent,
            enforced: true,
            detail: format!(
                "{sent} sent = {} acked + {} failed on the client's own leave + {lost} lost + \
                 {wrong} wrong; {dup} duplicated",
                load(&tally.acked),
                load(&tally.failed_on_leave)
            ),
        },
        Check {
            name: "broadcasts: no duplicate, no gap",
            ok: tdup == 0 && tgap == 0,
            enforced: true,
            detail: format!(
                "{} delivered; {tdup} duplicates, {tgap} missing",
                load(&tally.deliveries)
            ),
        },
        Check {
            name: "sessions: none dropped by the server, none refused",
            ok: unexpected == 0 && cfail == 0,
            enforced: true,
            detail: format!("{unexpected} unexpected closes, {cfail} failed connects"),
        },
        Check {
            name: "heap in use flat after warm-up (< 5 %)",
            ok: heap_growth < 0.05 || warm_heap == 0,
            enforced: true,
            detail: if warm_heap == 0 {
                "not measured".to_string()
            } else {
                format!(
                    "{:.1} MiB at {warm_span}, {:.1} MiB at {end_span} (medians; {:+.2} %)",
                    mib(warm_heap),
                    mib(end_heap),
                    heap_growth * 100.0
                )
            },
        },
        Check {
            name: "RSS flat after warm-up (< 5 %)",
            ok: growth < 0.05,
            enforced: !plan.rss_advisory,
            detail: format!(
                "{:.1} MiB at {warm_span}, {:.1} MiB at {end_span} (medians; {:+.2} %), max {:.1} \
                 MiB",
                mib(warm_rss),
                mib(end_rss),
                growth * 100.0,
                mib(max_rss_after_warm)
            ),
        },
        Check {
            name: "connections, sockets, rooms and tasks back to baseline",
            ok: back_after_s.is_some(),
            enforced: true,
            detail: format!(
                "baseline {}/{}/{}/{}, after everyone left {}/{}/{}/{}{}",
                baseline.connections,
                baseline.sockets,
                baseline.rooms,
                baseline.tasks,
                after_leave.connections,
                after_leave.sockets,
                after_leave.rooms,
                after_leave.tasks,
                back_after_s.map_or(" (not within 30 s)".to_string(), |s| format!(
                    " (in {s:.2} s)"
                ))
            ),
        },
    ];
    let totals = vec![
        ("sessions", plan.sessions as u64),
        ("events_sent", sent),
        ("acks", load(&tally.acked)),
        ("failed_on_leave", load(&tally.failed_on_leave)),
        ("lost_acks", lost),
        ("duplicate_acks", dup),
        ("wrong_acks", wrong),
        ("broadcasts", broadcasts),
        ("deliveries", load(&tally.deliveries)),
        ("tick_duplicates", tdup),
        ("tick_gaps", tgap),
        ("reconnects", load(&tally.reconnects)),
        ("unexpected_closes", unexpected),
        ("connect_failures", cfail),
    ];
    Ok(Outcome {
        samples,
        baseline,
        after_leave,
        after_trim,
        back_after_s,
        ramp_s,
        drain_s,
        totals,
        broadcasts,
        latency_us,
        warm_rss,
        end_rss,
        max_rss_after_warm,
        checks,
    })
}
