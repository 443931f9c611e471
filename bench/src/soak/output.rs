//! The soak's outputs: the line every 10 seconds, the summary on stdout, soak-results.json and
//! soak-rss.svg (hand-written SVG, like the bench's ratios.svg).

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::load::Stats;
use super::{Outcome, Plan, Sample, mib, num};
use crate::report::{fmt_num, xml_escape};

/// The line printed every 10 seconds.
pub(super) fn print_line(now: &Sample, before: Option<&Sample>) {
    let dt = before.map_or(now.t, |b| now.t - b.t).max(1e-9);
    let rate = |f: fn(&Sample) -> u64| {
        let prev = before.map_or(0, f);
        (f(now) - prev) as f64 / dt
    };
    eprintln!(
        "soak: t={:>4} s  RSS {:>7.1} MiB  heap {:>7.1} MiB  joined {:>6}  connections {:>6}  sockets {:>6}  \
         tasks {:>6}  acks {:>8}/s  deliveries {:>8}/s  reconnects {:>5}/s",
        now.t,
        mib(now.stats.rss),
        mib(now.stats.heap),
        now.joined,
        now.stats.connections,
        now.stats.sockets,
        now.stats.tasks,
        fmt_num(rate(|s| s.acked)),
        fmt_num(rate(|s| s.deliveries)),
        fmt_num(rate(|s| s.reconnects)),
    );
}

impl Outcome {
    fn total(&self, name: &str) -> u64 {
        self.totals
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// The RSS at each whole minute of the load (every 10 s for runs under 2 minutes).
    fn curve(&self, plan: &Plan) -> Vec<(u64, f64)> {
        let step = if plan.seconds >= 120 { 60 } else { 10 };
        let mut out: Vec<(u64, f64)> = (0..=plan.seconds)
            .step_by(step)
            .map(|t| (t, mib(self.samples[t as usize].stats.rss)))
            .collect();
        if !plan.seconds.is_multiple_of(step as u64) {
            out.push((
                plan.seconds,
                mib(self.samples[plan.seconds as usize].stats.rss),
            ));
        }
        out
    }

    pub(super) fn summary(&self, plan: &Plan) -> String {
        let mut s = String::new();
        let n = |name| num(self.total(name) as f64);
        let secs = plan.seconds as f64;
        let _ = writeln!(
            s,
            "\n### soak: {} s, {} sessions in {} rooms, the server on {}\n",
            plan.seconds,
            num(plan.sessions as f64),
            plan.rooms,
            plan.allocator
        );
        let _ = writeln!(
            s,
            "- load: {} acked events/s, {} room broadcasts/s, {} %/s of the sessions leave and \
             come back (ramp {:.1} s, drain {:.1} s)",
            num(plan.ack_rate),
            num(plan.bcast_rate),
            plan.churn * 100.0,
            self.ramp_s,
            self.drain_s
        );
        let _ = writeln!(
            s,
            "- events: {} sent, {} acked ({}/s), {} failed on the client's own leave, {} lost, \
             {} duplicated, {} wrong",
            n("events_sent"),
            n("acks"),
            fmt_num(self.total("acks") as f64 / secs),
            n("failed_on_leave"),
            n("lost_acks"),
            n("duplicate_acks"),
            n("wrong_acks")
        );
        let _ = writeln!(
            s,
            "- ack latency: p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
            num(self.latency_us[0]),
            num(self.latency_us[1]),
            num(self.latency_us[2]),
            num(self.latency_us[3])
        );
        let _ = writeln!(
            s,
            "- broadcasts: {} requested, {} deliveries ({}/s), {} duplicates, {} missing",
            num(self.broadcasts as f64),
            n("deliveries"),
            fmt_num(self.total("deliveries") as f64 / secs),
            n("tick_duplicates"),
            n("tick_gaps")
        );
        let _ = writeln!(
            s,
            "- reconnects: {} ({}/s); unexpected closes {}, failed connects {}",
            n("reconnects"),
            fmt_num(self.total("reconnects") as f64 / secs),
            n("unexpected_closes"),
            n("connect_failures")
        );
        let _ = writeln!(
            s,
            "- RSS: baseline {:.1} MiB, from t={} s {:.1} MiB, over the last {} s {:.1} MiB \
             ({:+.2} %; medians), max after warm-up {:.1} MiB, after everyone left {:.1} MiB \
             ({:.1} MiB after the allocator's trim; heap in use {:.1} MiB)",
            mib(self.baseline.rss),
            plan.warmup_s(),
            mib(self.warm_rss),
            plan.window_s(),
            mib(self.end_rss),
            (self.end_rss as f64 / self.warm_rss.max(1) as f64 - 1.0) * 100.0,
            mib(self.max_rss_after_warm),
            mib(self.after_leave.rss),
            mib(self.after_trim.rss),
            mib(self.after_trim.heap)
        );
        let curve: Vec<String> = self
            .curve(plan)
            .iter()
            .map(|(t, m)| format!("{t} s {m:.1}"))
            .collect();
        let _ = writeln!(s, "- RSS curve (MiB): {}", curve.join(", "));
        let _ = writeln!(s, "\ninvariants:");
        for c in &self.checks {
            let _ = writeln!(
                s,
                "  {} {}: {}",
                match (c.ok, c.enforced) {
                    (true, _) => "ok    ",
                    (false, true) => "FAILED",
                    (false, false) => "WARN  ",
                },
                c.name,
                c.detail
            );
        }
        s
    }

    /// soak-results.json: pretty, but one line per sample (`sample_columns` names the fields).
    pub(super) fn json_text(&self, plan: &Plan, machine: &str) -> String {
        let head = serde_json::to_string_pretty(&self.json(plan, machine)).unwrap_or_default();
        let columns = [
            "t",
            "phase",
            "rss_mib",
            "heap_mib",
            "connections",
            "sockets",
            "tasks",
            "joined",
            "acks",
            "deliveries",
            "reconnects",
        ];
        let rows: Vec<String> = self
            .samples
            .iter()
            .map(|s| {
                json!([
                    (s.t * 100.0).round() / 100.0,
                    format!("{:?}", s.phase).to_lowercase(),
                    (mib(s.stats.rss) * 100.0).round() / 100.0,
                    (mib(s.stats.heap) * 100.0).round() / 100.0,
                    s.stats.connections,
                    s.stats.sockets,
                    s.stats.tasks,
                    s.joined,
                    s.acked,
                    s.deliveries,
                    s.reconnects,
                ])
                .to_string()
            })
            .collect();
        let body = head.trim_end().trim_end_matches('}').trim_end();
        format!(
            "{body},\n  \"sample_columns\": {},\n  \"samples\": [\n    {}\n  ]\n}}\n",
            json!(columns),
            rows.join(",\n    ")
        )
    }

    fn json(&self, plan: &Plan, machine: &str) -> Value {
        let totals: serde_json::Map<String, Value> = self
            .totals
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({
            "machine": machine,
            "plan": {
                "seconds": plan.seconds,
                "sessions": plan.sessions,
                "rooms": plan.rooms,
                "ack_rate_per_s": plan.ack_rate,
                "bcast_rate_per_s": plan.bcast_rate,
                "churn_per_s": plan.churn,
                "warmup_s": plan.warmup_s(),
                "seed": plan.seed,
                "allocator": plan.allocator,
                "server": "hunchensocket-bench serve-soak --workers 1 (CPU 0), load generator on CPU 1",
            },
            "ramp_s": self.ramp_s,
            "drain_s": self.drain_s,
            "totals": totals,
            "ack_latency_us": {
                "p50": self.latency_us[0], "p99": self.latency_us[1],
                "p999": self.latency_us[2], "max": self.latency_us[3],
            },
            "rss_mib": {
                "baseline": mib(self.baseline.rss),
                "window_s": plan.window_s(),
                "at_warmup": mib(self.warm_rss),
                "end": mib(self.end_rss),
                "growth_pct": (self.end_rss as f64 / self.warm_rss.max(1) as f64 - 1.0) * 100.0,
                "max_after_warmup": mib(self.max_rss_after_warm),
                "after_leave": mib(self.after_leave.rss),
                "after_leave_and_trim": mib(self.after_trim.rss),
                "curve": self.curve(plan).iter().map(|(t, m)| json!([t, m])).collect::<Vec<_>>(),
            },
            "baseline": self.baseline.json(),
            "after_leave": self.after_leave.json(),
            "after_trim": self.after_trim.json(),
            "back_to_baseline_s": self.back_after_s,
            "invariants": self.checks.iter().map(|c| json!({
                "name": c.name, "ok": c.ok, "enforced": c.enforced, "detail": c.detail,
            })).collect::<Vec<_>>(),
            "ok": self.checks.iter().all(|c| !c.fails_run()),
        })
    }
}

/// A curve of the chart: its label, colour, and value of each sample.
type Line = (&'static str, &'static str, fn(&Stats) -> u64);

/// The RSS over the run, one point a second: the warm-up, the ±5 % band around the RSS at its
/// end, and the leave phase marked.
pub(super) fn rss_svg(plan: &Plan, o: &Outcome) -> String {
    let (left, top, width, height) = (70.0, 50.0, 760.0, 300.0);
    let t_max = o.samples.iter().map(|s| s.t).fold(1.0, f64::max);
    let r_max = o
        .samples
        .iter()
        .map(|s| mib(s.stats.rss))
        .fold(1.0, f64::max)
        * 1.15;
    let x = |t: f64| left + t.max(0.0) / t_max * width;
    let y = |m: f64| top + height - m / r_max * height;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{:.0}" font-family="sans-serif">"#,
        left + width + 30.0,
        top + height + 84.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!(
        "hunchensocket-io server RSS under soak ({}): {} sessions, {} s ({} acks/s, {} broadcasts/s, {} %/s reconnect)",
        plan.allocator,
        num(plan.sessions as f64),
        plan.seconds,
        num(plan.ack_rate),
        num(plan.bcast_rate),
        plan.churn * 100.0
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="14">{}</text>"#,
        xml_escape(&title)
    );
    // The ±5 % band from the end of the warm-up to the end of the load.
    let warm_t = plan.warmup_s() as f64;
    let warm = mib(o.warm_rss);
    let _ = writeln!(
        s,
        r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2ca02c" fill-opacity="0.12"><title>±5 % of the RSS at the end of the warm-up</title></rect>"##,
        x(warm_t),
        y(warm * 1.05),
        x(plan.seconds as f64) - x(warm_t),
        y(warm * 0.95) - y(warm * 1.05)
    );
    // The leave phase.
    let _ = writeln!(
        s,
        r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="{height}" fill="#999" fill-opacity="0.15"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#555">leave</text>"##,
        x(plan.seconds as f64),
        (x(t_max) - x(plan.seconds as f64)).max(0.0),
        x(plan.seconds as f64) + 3.0,
        top + 12.0
    );
    // Grid and axes.
    let y_step = nice_step(r_max / 5.0);
    let mut m = 0.0;
    while m <= r_max {
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
            y(m),
            left + width,
            y(m),
            left - 6.0,
            y(m) + 3.0,
            num(m)
        );
        m += y_step;
    }
    let x_step = nice_step(t_max / 8.0);
    let mut t = 0.0;
    while t <= t_max {
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{top}" x2="{:.1}" y2="{:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"##,
            x(t),
            x(t),
            top + height,
            x(t),
            top + height + 14.0,
            num(t)
        );
        t += x_step;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{:.1}" y1="{top}" x2="{:.1}" y2="{:.1}" stroke="#2ca02c" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#2ca02c">end of warm-up</text>"##,
        x(warm_t),
        x(warm_t),
        top + height,
        x(warm_t) + 3.0,
        top + 24.0
    );
    // RSS, and the bytes the program holds on the heap: the gap is what the allocator keeps.
    let lines: [Line; 2] = [
        ("RSS", "#1f77b4", |st| st.rss),
        ("heap in use (counted)", "#ff7f0e", |st| st.heap),
    ];
    for (i, (label, color, value)) in lines.iter().enumerate() {
        if o.samples.iter().all(|p| value(&p.stats) == 0) {
            continue;
        }
        let points: Vec<String> = o
            .samples
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.t), y(mib(value(&p.stats)))))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"/>"##,
            points.join(" ")
        );
        let ly = top + height + 50.0 + 14.0 * i as f64;
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"##,
            left + width - 200.0,
            ly - 4.0,
            left + width - 184.0,
            ly,
            xml_escape(label)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#000"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">seconds since the sessions connected</text>"#,
        left + width / 2.0,
        top + height + 34.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" font-size="12" transform="rotate(-90 16 {:.1})" text-anchor="middle">RSS (MiB)</text>"#,
        top + height / 2.0,
        top + height / 2.0
    );
    let verdict = o
        .checks
        .iter()
        .find(|c| c.name.starts_with("RSS"))
        .map_or(String::new(), |c| c.detail.clone());
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{:.1}" font-size="11" fill="#333">{}</text>"##,
        top + height + 56.0,
        xml_escape(&verdict)
    );
    s.push_str("</svg>\n");
    s
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(13.0), 20.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(100.0), 100.0);
    }
}
