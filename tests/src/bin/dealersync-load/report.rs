//! Percentiles and the small formatting helpers of the printed report.

use crate::*;

pub(crate) fn pct(sorted: &[u32], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i] as f64 / 1000.0)
}

pub(crate) fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1} ms"))
}

pub(crate) fn mib(s: Option<ProcSample>) -> String {
    s.map_or("-".into(), |s| {
        format!("{:.1} MiB", s.rss_kib as f64 / 1024.0)
    })
}

pub(crate) fn cpu_secs(a: Option<ProcSample>, b: Option<ProcSample>) -> Option<f64> {
    Some(b?.cpu_ticks.saturating_sub(a?.cpu_ticks) as f64 / 100.0)
}

pub(crate) fn summarize_errors(errors: &[String]) -> String {
    if errors.is_empty() {
        return "0".into();
    }
    format!("{} (first: {})", errors.len(), errors[0])
}

/// The 1-minute load average: other work on the machine skews every figure.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "-".into())
}

pub(crate) fn command_line() -> String {
    std::env::args()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints one propagation run's figures.
pub(crate) fn print_propagation(cli: &Cli, kind: ClientKind, p: &PropagationFigures) {
    let n = p.samples.len() as u64;
    let achieved = p.written as f64 / p.elapsed.as_secs_f64();
    let p99 = pct(&p.samples, 0.99);
    println!();
    println!(
        "propagation ({}): {} docs x {} connections/doc = {} connections, target rate {} changes/s for {} s",
        kind.label(),
        cli.docs,
        cli.conns_per_doc,
        cli.docs * cli.conns_per_doc,
        cli.rate,
        cli.duration
    );
    println!("  {:<28} {}", "changes written", p.written);
    println!("  {:<28} {achieved:.1} changes/s", "achieved rate");
    println!(
        "  {:<28} {n} of {} expected ({} missing after {} s drain)",
        "observations (other clients)", p.expected, p.missing, cli.drain
    );
    println!("  {:<28} {}", "p50", ms(pct(&p.samples, 0.50)));
    println!("  {:<28} {}", "p90", ms(pct(&p.samples, 0.90)));
    println!("  {:<28} {}", "p99", ms(p99));
    println!("  {:<28} {}", "max", ms(pct(&p.samples, 1.0)));
    if let Some(p99) = p99 {
        println!(
            "  {:<28} {:.2}x the 50 ms target ({})",
            "p99 / target",
            p99 / 50.0,
            if p99 < 50.0 { "met" } else { "missed" }
        );
    }
    if let Some(cpu) = cpu_secs(p.cpu_before_run, p.rss_after) {
        println!(
            "  {:<28} {cpu:.1} s ({:.0}% of one core, {:.2} ms per change written)",
            "relay CPU during run",
            100.0 * cpu / (p.elapsed.as_secs_f64() + cli.drain.min(1.0)),
            1000.0 * cpu / p.written.max(1) as f64
        );
    }
    println!("  {:<28} {}", "errors", summarize_errors(&p.errors));
    // Whether latency grows with history or comes in bursts shows per window.
    if let Some(first) = p.timeline.iter().map(|t| t.0).min() {
        println!("  by send time (5 s windows): p50 / p99 / observations");
        let mut windows: std::collections::BTreeMap<i64, Vec<u32>> = Default::default();
        for (sent, lat) in &p.timeline {
            windows
                .entry((sent - first) / 5_000_000)
                .or_default()
                .push(*lat);
        }
        for (w, mut v) in windows {
            v.sort_unstable();
            println!(
                "    {:>3}-{:<3} s  {:>10} {:>10} {:>7}",
                w * 5,
                w * 5 + 5,
                ms(pct(&v, 0.5)),
                ms(pct(&v, 0.99)),
                v.len()
            );
        }
    }
}
