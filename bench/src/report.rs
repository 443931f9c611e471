//! The outputs: a markdown table (stdout), results.json, and ratios.svg (hand-written SVG).

use std::fmt::Write;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::workloads::Metrics;
use crate::{Peer, Workload};

/// The reference peer: every ratio is a peer's figure over this one's.
pub const OURS: &str = "hunchensocket";

/// A one-line description of this machine.
pub fn machine(cpus: usize, pinned: bool) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let pin = if pinned {
        "server CPU 0, load generator CPU 1"
    } else {
        "not pinned"
    };
    format!("{model}, {cpus} CPUs, Linux {} ({pin})", kernel.trim())
}

/// A number for people: thousands separated, few decimals.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v);
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push('\u{202f}');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn ratio(w: &Workload, ours: Option<&Metrics>, theirs: &Metrics) -> Option<f64> {
    let o = ours?.get(w.metric).copied()?;
    let t = theirs.get(w.metric).copied()?;
    (o > 0.0 && t.is_finite()).then(|| t / o)
}

type Results = [(Workload, Vec<(Peer, Metrics)>)];

fn ours(peers: &[(Peer, Metrics)]) -> Option<&Metrics> {
    peers.iter().find(|(p, _)| p.name == OURS).map(|(_, m)| m)
}

/// results.json.
pub fn json(machine: &str, mode: &str, runs: usize, results: &Results, elapsed: Duration) -> Value {
    let workloads: Vec<Value> = results
        .iter()
        .map(|(w, peers)| {
            let reference = ours(peers);
            let mut by_peer = Map::new();
            let mut ratios = Map::new();
            for (p, m) in peers {
                let mut fig: Map<String, Value> =
                    m.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                if let Some(r) = ratio(w, reference, m) {
                    fig.insert("ratio".into(), json!(r));
                    ratios.insert(p.name.into(), json!(r));
                }
                by_peer.insert(p.name.into(), Value::Object(fig));
            }
            json!({
                "name": w.name,
                "about": w.about,
                "unit": w.unit,
                "metric": w.metric,
                "higher_is_better": w.higher_is_better,
                "peers": by_peer,
                "ratios_to_hunchensocket": ratios,
            })
        })
        .collect();
    json!({
        "machine": machine,
        "mode": mode,
        "runs_per_peer": runs,
        "elapsed_s": elapsed.as_secs_f64(),
        "reference": OURS,
        "workloads": workloads,
    })
}

/// The secondary figures shown under each workload's headline.
fn secondary(w: &Workload) -> &'static [&'static str] {
    match w.metric {
        "ops_per_s" => &[
            "server_cpu_us_per_op",
            "server_cpu_util",
            "loadgen_cpu_util",
        ],
        "p99_us" => &["p50_us", "p999_us", "server_cpu_us_per_op"],
        "server_cpu_us_per_delivery" => &[
            "last_delivery_p50_ms",
            "last_delivery_p99_ms",
            "complete_ticks",
            "redis_cpu_us_per_delivery", // cluster workloads only
        ],
        "rss_per_session_bytes" => &["rss_base_mib", "rss_loaded_mib"],
        "sessions_per_s" => &["server_cpu_us_per_session"],
        _ => &[],
    }
}

/// The markdown table: one row per workload figure, one column per peer; the headline figure
/// carries the ratio to ours.
pub fn markdown(results: &Results, machine: &str, mode: &str, runs: usize) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (_, peers) in results {
        for (p, _) in peers {
            if !names.contains(&p.name) {
                names.push(p.name);
            }
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n### hunchensocket vs peers ({mode}, {runs} run(s) per peer, medians)\n"
    );
    let _ = writeln!(
        s,
        "Machine: {machine}. Ratios are peer / hunchensocket on the headline figure.\n"
    );
    let _ = write!(s, "| workload | figure |");
    for n in &names {
        let _ = write!(s, " {n} |");
    }
    let _ = write!(s, "\n|---|---|");
    for _ in &names {
        let _ = write!(s, "---:|");
    }
    s.push('\n');
    for (w, peers) in results {
        let reference = ours(peers);
        let arrow = if w.higher_is_better { "↑" } else { "↓" };
        let mut rows: Vec<(String, &str, bool)> =
            vec![(format!("{} ({}) {arrow}", w.metric, w.unit), w.metric, true)];
        // A secondary figure gets a row when some peer has it.
        for k in secondary(w) {
            if peers.iter().any(|(_, m)| m.contains_key(*k)) {
                rows.push((k.to_string(), k, false));
            }
        }
        for (i, (label, key, headline)) in rows.iter().enumerate() {
            let wname = if i == 0 { w.name } else { "" };
            let _ = write!(s, "| {wname} | {label} |");
            for n in &names {
                let cell = peers.iter().find(|(p, _)| p.name == *n).and_then(|(_, m)| {
                    let v = m.get(*key)?;
                    let mut c = fmt_num(*v);
                    if *headline
                        && *n != OURS
                        && let Some(r) = ratio(w, reference, m)
                    {
                        let _ = write!(c, " ({r:.2}×)");
                    }
                    Some(c)
                });
                let _ = write!(s, " {} |", cell.unwrap_or_default());
            }
            s.push('\n');
        }
    }
    s
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal bar chart of every peer's ratio to ours (ours is the line at 1.0), one group
/// of bars per workload, on a log scale from 1/8 to 8.
pub fn svg(results: &Results, mode: &str) -> String {
    const PALETTE: [&str; 8] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    ];
    let (left, width, bar, gap) = (260.0, 520.0, 14.0, 12.0);
    let lo = (1.0f64 / 8.0).log2();
    let hi = 8.0f64.log2();
    let x_of = |r: f64| left + (r.clamp(1.0 / 8.0, 8.0).log2() - lo) / (hi - lo) * width;
    let mut peer_names: Vec<&str> = Vec::new();
    for (_, peers) in results {
        for (p, _) in peers {
            if p.name != OURS && !peer_names.contains(&p.name) {
                peer_names.push(p.name);
            }
        }
    }
    let color = |name: &str| {
        PALETTE[peer_names.iter().position(|n| *n == name).unwrap_or(0) % PALETTE.len()]
    };
    let mut body = String::new();
    let mut y = 60.0;
    for (w, peers) in results {
        let reference = ours(peers);
        let bars: Vec<(&str, f64)> = peers
            .iter()
            .filter(|(p, _)| p.name != OURS)
            .filter_map(|(p, m)| ratio(w, reference, m).map(|r| (p.name, r)))
            .collect();
        let arrow = if w.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let group_h = (bars.len().max(1) as f64) * bar;
        let _ = writeln!(
            body,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#666">{} ({})</text>"##,
            left - 8.0,
            y + group_h / 2.0 - 2.0,
            xml_escape(w.name),
            left - 8.0,
            y + group_h / 2.0 + 11.0,
            xml_escape(w.metric),
            arrow
        );
        for (i, (name, r)) in bars.iter().enumerate() {
            let by = y + i as f64 * bar;
            let (x0, x1) = (x_of(1.0).min(x_of(*r)), x_of(1.0).max(x_of(*r)));
            let _ = writeln!(
                body,
                r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {r:.3}×</title></rect><text x="{:.1}" y="{:.1}" font-size="10">{r:.2}×</text>"#,
                by + 1.0,
                (x1 - x0).max(1.0),
                bar - 2.0,
                color(name),
                xml_escape(name),
                x1 + 4.0,
                by + bar - 3.0
            );
        }
        y += group_h + gap;
    }
    let height = y + 40.0 + peer_names.len() as f64 * 16.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{height:.0}" font-family="sans-serif">"#,
        left + width + 80.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15">Peers / hunchensocket on each workload's headline figure ({mode}; log scale, 1 = ours)</text>"#
    );
    for r in [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0] {
        let x = x_of(r);
        let (stroke, w) = if r == 1.0 {
            ("#000", 1.5)
        } else {
            ("#ddd", 1.0)
        };
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="44" x2="{x:.1}" y2="{:.1}" stroke="{stroke}" stroke-width="{w}"/><text x="{x:.1}" y="40" font-size="10" text-anchor="middle">{r}</text>"##,
            y
        );
    }
    s.push_str(&body);
    for (i, name) in peer_names.iter().enumerate() {
        let ly = y + 24.0 + i as f64 * 16.0;
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            ly - 10.0,
            color(name),
            left + 18.0,
            ly,
            xml_escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}
