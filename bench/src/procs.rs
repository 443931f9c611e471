//! The server processes (pinned to CPU 0) and the redis-server of the cluster workloads: start,
//! address, CPU time and RSS from /proc, stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Raises this process's soft limit of open files to its hard limit (children inherit it).
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        lim.rlim_cur
    }
}

/// Pins the calling thread (and threads and processes it starts later) to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the pointer is to a local.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// How many CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Clock ticks per second of /proc/PID/stat's times.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// CPU time of process `pid`, in microseconds: the sum of its threads' run time from
/// /proc/PID/task/*/schedstat (nanoseconds), or utime + stime from /proc/PID/stat (clock ticks,
/// 10 ms) where schedstat is missing. (Threads that already exited count only in the latter.)
pub fn cpu_us(pid: u32) -> u64 {
    schedstat_us(pid).unwrap_or_else(|| stat_cpu_us(pid))
}

fn schedstat_us(pid: u32) -> Option<u64> {
    let mut total_ns = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        let Ok(text) = std::fs::read_to_string(path) else {
            continue; // the thread just exited
        };
        total_ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total_ns / 1000)
}

/// utime + stime of process `pid` (all its threads), in microseconds.
pub fn stat_cpu_us(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11).and_then(|s| s.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (utime + stime) * 1_000_000 / clock_ticks()
}

/// Resident set size of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// How a peer's server is started.
#[derive(Clone, Debug)]
pub enum Launch {
    /// This binary, `serve-KIND --workers N`.
    Rust { kind: &'static str, workers: usize },
    /// `node --expose-gc bench/node/server.js`.
    Node,
    /// This binary, `serve-soak --workers 1`, on the allocator named (see [`crate::alloc`]).
    Soak { allocator: &'static str },
}

/// In the child before exec: die with the harness (no server outlives an interrupted run), and,
/// like `taskset -c CPU`, run on `cpu` only.
fn pin_child(cmd: &mut Command, cpu: Option<usize>) {
    // SAFETY: prctl and sched_setaffinity are async-signal-safe; nothing is allocated here.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if let Some(cpu) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// A running server.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
}

/// The bench/ directory (node/ lives there).
pub fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Server {
    /// Starts a server pinned to `cpu` (when given) and waits for its `listening on ADDR` line.
    /// With `redis` (a URL), the server joins the cluster of every server on that Redis.
    pub fn start(
        launch: &Launch,
        cpu: Option<usize>,
        redis: Option<&str>,
        log: &Path,
    ) -> Result<Server, String> {
        let mut cmd = match launch {
            Launch::Rust { kind, workers } => {
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let mut c = Command::new(exe);
                c.arg(format!("serve-{kind}"))
                    .arg("--workers")
                    .arg(workers.to_string());
                c
            }
            Launch::Soak { allocator } => {
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let mut c = Command::new(exe);
                c.args(["serve-soak", "--workers", "1"])
                    .env(crate::alloc::ENV, allocator);
                c
            }
            Launch::Node => {
                let mut c = Command::new("node");
                c.arg("--expose-gc").arg(bench_dir().join("node/server.js"));
                c
            }
        };
        if let Some(url) = redis {
            cmd.arg("--redis").arg(url);
        }
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        pin_child(&mut cmd, cpu);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {launch:?}: {e}"))?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(None);
                        return;
                    }
                    Ok(_) => {
                        if let Some(addr) = line.trim().strip_prefix("listening on ") {
                            let _ = tx.send(addr.parse::<SocketAddr>().ok());
                            // Keep draining so the server never blocks on a full pipe.
                            let mut sink = Vec::new();
                            let _ = std::io::Read::read_to_end(&mut reader, &mut sink);
                            return;
                        }
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(addr)) => break addr,
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{launch:?} exited before listening; see {}",
                        log.display()
                    ));
                }
                Err(_) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{launch:?} did not listen within 30 s"));
                }
                Err(_) => {}
            }
        };
        Ok(Server { child, pid, addr })
    }

    pub fn cpu_us(&self) -> u64 {
        cpu_us(self.pid)
    }

    pub fn rss(&self) -> u64 {
        rss_bytes(self.pid)
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Kill exactly the process we started (by its PID, via the Child handle).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A redis-server of the harness's own for the cluster workloads: Debian's `redis-server` on a
/// free loopback port, nothing saved (`--save '' --appendonly no`), pinned like the load
/// generator, and killed by its PID when dropped. It holds only what its step's servers publish.
pub struct Redis {
    child: Child,
    pub pid: u32,
    pub port: u16,
}

impl Redis {
    /// Starts one and waits (up to 5 s) until it answers `PING`. A port found free may be taken
    /// before redis binds it: then it tries another, three times at most.
    pub fn start(cpu: Option<usize>, log: &Path) -> Result<Redis, String> {
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("finding a free port: {e}"))?
                .port();
            let log_file =
                std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--logfile", ""]) // its log to stdout: the step's redis log
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
                .stderr(log_file);
            pin_child(&mut cmd, cpu);
            let child = cmd.spawn().map_err(|e| {
                format!("starting redis-server: {e} (Debian: apt-get install redis-server)")
            })?;
            let mut redis = Redis {
                pid: child.id(),
                child,
                port,
            };
            match redis.wait_ready(Duration::from_secs(5)) {
                Ok(()) => return Ok(redis),
                Err(e) => last_err = e, // dropping `redis` kills it
            }
        }
        Err(format!(
            "redis-server did not start: {last_err}; see {}",
            log.display()
        ))
    }

    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}"));
            }
            if self.ping().is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no PONG on port {} within {within:?}", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> std::io::Result<()> {
        let mut s = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_millis(200),
        )?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        s.write_all(b"PING\r\n")?;
        let mut answer = [0u8; 7];
        s.read_exact(&mut answer)?;
        if &answer == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(std::io::Error::other("not a PONG"))
        }
    }

    /// The URL the servers connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn cpu_us(&self) -> u64 {
        cpu_us(self.pid)
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // Exactly the redis-server we started, by its PID (via the Child handle); nothing is
        // flushed or saved, and no other Redis is touched.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
