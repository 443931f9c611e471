//! Shared bits of the example binaries: command-line flags and start-up.

use std::collections::HashMap;

pub mod conformance;

/// Command-line flags of the form `--name value` (and bare `--flag`).
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses the process arguments; `usage` is printed on `--help`. The flags are those that
    /// `usage` names (`--listen`, ...): a stray argument or a flag it does not name is refused
    /// with the usage line and exit status 2, so that a typo never runs the wrong server.
    pub fn parse(usage: &str) -> Args {
        match Args::from_iter(usage, std::env::args().skip(1)) {
            Ok(Some(args)) => args,
            Ok(None) => {
                println!("{usage}");
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("{e}\n{usage}");
                std::process::exit(2);
            }
        }
    }

    /// Parses `args` against the flags `usage` names: `None` for `--help`.
    pub fn from_iter(
        usage: &str,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Option<Args>, String> {
        let known: Vec<&str> = usage
            .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
            .filter_map(|w| w.strip_prefix("--"))
            .collect();
        let mut values = HashMap::new();
        let mut it = args.into_iter().peekable();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            if name == "help" {
                return Ok(None);
            }
            if !known.contains(&name) {
                return Err(format!("unknown flag --{name}"));
            }
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().unwrap_or_default(),
                _ => String::new(),
            };
            values.insert(name.to_string(), value);
        }
        Ok(Some(Args { values }))
    }

    /// The value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `--name`, or `default`.
    pub fn get_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }
}

/// Sends the libraries' log lines (warnings and errors: a Redis outage, a message dropped) to
/// stderr.
pub fn init_logs() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Binds `addr` and prints `listening on ADDR` (scripts wait for that line).
pub async fn bind(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::Args;

    const USAGE: &str = "usage: x [--listen ADDR] [--redis URL [--redis-sharded]]";

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        Args::from_iter(USAGE, args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn known_flags_only() {
        let args = parse(&["--listen", "1.2.3.4:5", "--redis-sharded"])
            .unwrap()
            .unwrap();
        assert_eq!(args.get("listen"), Some("1.2.3.4:5"));
        assert_eq!(args.get("redis-sharded"), Some(""));
        assert_eq!(
            parse(&["--bogus"]).err().as_deref(),
            Some("unknown flag --bogus")
        );
        assert_eq!(
            parse(&["--lisen", "x"]).err().as_deref(),
            Some("unknown flag --lisen")
        );
        assert!(parse(&["stray"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}
