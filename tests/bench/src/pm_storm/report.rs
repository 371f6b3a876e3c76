//! The storm's table and JSON, with the targets beside the figures.

use std::{fmt::Write as _, time::Duration};

use serde::Serialize;

use super::{Config, Kind, Lab, Outcome, Run};
use crate::{churn::stats, netlink::median};

/// RSS growth from the end of the first run (the first full-size burst sets the daemon's
/// high-water marks: table capacities, buffers) to the end of the last still counted flat:
/// the larger of this share and [`FLAT_KIB`] (allocators keep some freed pages).
const FLAT_SHARE: f64 = 0.05;
const FLAT_KIB: f64 = 128.0;

/// One subject's figures.
#[derive(Debug, Serialize)]
struct Figures {
    name: &'static str,
    connections_per_s: f64,
    subflows_per_s: f64,
    /// ESTABLISHED to the first `SUB_ESTABLISHED`, pooled over the runs.
    join_ms_median: f64,
    join_ms_p99: f64,
    /// Timed connections (both events heard).
    timed: usize,
    /// Held for their second subflow and left without it (`null`: not held for one).
    without_subflow: Option<usize>,
    /// Not held for anything they reached (the C daemon's: not ESTABLISHED).
    missed: usize,
    /// Connections the server served to the end, all runs.
    served: usize,
    /// Second subflows the listener did not hear (it lost events) but `MPTCP_INFO` showed.
    unheard: usize,
    listener_overruns: u64,
    daemon_overruns: Option<usize>,
    daemon_cpu_ms_per_1000: Option<f64>,
    daemon_cpu_percent: Option<f64>,
    client_cpu_ms_per_1000: f64,
    server_cpu_ms_per_1000: f64,
    /// `ANNOUNCED` events on the server, all runs.
    announced: u64,
    /// Lines the daemon logged per 1000 connections.
    daemon_log_lines_per_1000: Option<f64>,
    rss_kib_after_warm_up: Option<u64>,
    rss_kib_after_run_1: Option<u64>,
    rss_kib_max: Option<u64>,
    rss_kib_end: Option<u64>,
    rss_flat: Option<bool>,
    events: std::collections::BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize)]
struct Targets {
    subflows_per_s_vs_kernel: f64,
    subflows_per_s_min_ratio: f64,
    join_p99_vs_kernel: f64,
    join_p99_max_ratio: f64,
    without_subflow: Option<usize>,
    rss_flat: Option<bool>,
    met: bool,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    benchmark: &'static str,
    connections: usize,
    runs: usize,
    c_mptcpd: &'a str,
    load_average: String,
    subjects: Vec<Figures>,
    targets: Targets,
}

#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn per_1000(value: f64, connections: usize) -> f64 {
    value * 1000.0 / connections as f64
}

#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn figures(lab: &Lab, connections: usize) -> Figures {
    let runs = &lab.runs;
    let wall = |r: &Run| r.client.wall.as_secs_f64();
    let total = connections * runs.len();
    let mut join_ms = Vec::new();
    for run in runs {
        for seen in run.heard.connections.values() {
            if let (Some(est), Some(joined)) = (seen.established, seen.joined) {
                join_ms.push(joined.saturating_duration_since(est).as_secs_f64() * 1e3);
            }
        }
    }
    let (join_ms_median, join_ms_p99) = if join_ms.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        stats(&join_ms)
    };
    let missed = runs.iter().map(|r| r.client.missed).sum();
    let daemon_cpu: Option<Vec<f64>> = runs.iter().map(|r| r.daemon_cpu_ms).collect();
    let after_warm_up = lab
        .warm_up
        .as_ref()
        .and_then(|w| w.memory.last())
        .map(|m| m.rss_kib);
    let rss_kib_max = runs
        .iter()
        .flat_map(|r| r.memory.iter().map(|m| m.rss_kib))
        .max();
    let rss_kib_end = runs.last().and_then(|r| r.memory.last()).map(|m| m.rss_kib);
    let after_run_1 = runs
        .first()
        .and_then(|r| r.memory.last())
        .map(|m| m.rss_kib);
    // One run says nothing about growth.
    let rss_flat = (runs.len() > 1)
        .then_some(after_run_1.zip(rss_kib_end))
        .flatten()
        .map(|(base, end)| {
            let base = base as f64;
            end as f64 - base <= (base * FLAT_SHARE).max(FLAT_KIB)
        });
    let mut events = std::collections::BTreeMap::new();
    for run in runs {
        for (kind, n) in &run.heard.by_kind {
            *events.entry(*kind).or_default() += n;
        }
    }
    Figures {
        name: lab.kind.name(),
        connections_per_s: median(runs.iter().map(|r| connections as f64 / wall(r)).collect()),
        subflows_per_s: median(
            runs.iter()
                .map(|r| r.heard.count("SUB_ESTABLISHED") as f64 / wall(r))
                .collect(),
        ),
        join_ms_median,
        join_ms_p99,
        timed: join_ms.len(),
        without_subflow: (lab.kind != Kind::C).then_some(missed),
        missed,
        served: runs.iter().map(|r| r.served).sum(),
        unheard: runs.iter().map(|r| r.client.unheard).sum(),
        listener_overruns: runs.iter().map(|r| r.heard.overruns).sum(),
        daemon_overruns: runs.iter().map(|r| r.overruns).sum(),
        daemon_cpu_ms_per_1000: daemon_cpu
            .as_ref()
            .map(|ms| per_1000(ms.iter().sum(), total)),
        daemon_cpu_percent: daemon_cpu.as_ref().map(|ms| {
            let wall_ms: f64 = runs.iter().map(wall).sum::<f64>() * 1e3;
            ms.iter().sum::<f64>() * 100.0 / wall_ms
        }),
        client_cpu_ms_per_1000: per_1000(cpu_ms(runs.iter().map(|r| r.client.cpu)), total),
        server_cpu_ms_per_1000: per_1000(cpu_ms(runs.iter().map(|r| r.server_cpu)), total),
        announced: runs.iter().map(|r| r.announced).sum(),
        daemon_log_lines_per_1000: runs
            .iter()
            .map(|r| r.log_lines)
            .sum::<Option<usize>>()
            .map(|n| per_1000(n as f64, total)),
        rss_kib_after_warm_up: after_warm_up,
        rss_kib_after_run_1: after_run_1,
        rss_kib_max,
        rss_kib_end,
        rss_flat,
        events,
    }
}

fn cpu_ms(times: impl Iterator<Item = Duration>) -> f64 {
    times.map(|t| t.as_secs_f64() * 1e3).sum()
}

fn targets(kernel: &Figures, ours: &Figures) -> Targets {
    let subflows = ours.subflows_per_s / kernel.subflows_per_s;
    let p99 = ours.join_ms_p99 / kernel.join_ms_p99;
    let met = subflows >= 0.8
        && p99 <= 2.0
        && ours.without_subflow == Some(0)
        && ours.rss_flat == Some(true);
    Targets {
        subflows_per_s_vs_kernel: subflows,
        subflows_per_s_min_ratio: 0.8,
        join_p99_vs_kernel: p99,
        join_p99_max_ratio: 2.0,
        without_subflow: ours.without_subflow,
        rss_flat: ours.rss_flat,
        met,
    }
}

/// The table and the JSON.
pub(super) fn outcome(labs: &[Lab], config: Config, c_version: &str) -> anyhow::Result<Outcome> {
    let all: Vec<Figures> = labs
        .iter()
        .map(|lab| figures(lab, config.connections))
        .collect();
    let [kernel, ours, c] = all.as_slice() else {
        anyhow::bail!("three subjects expected");
    };
    let targets = targets(kernel, ours);
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let table = table(kernel, ours, c, &targets, config, &load_average);
    let report = Report {
        benchmark: "storm",
        connections: config.connections,
        runs: config.runs,
        c_mptcpd: c_version,
        load_average,
        subjects: all,
        targets,
    };
    Ok(Outcome {
        table,
        json: crate::report::json(&report)?,
    })
}

fn num(value: f64) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn yes(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

#[expect(
    clippy::too_many_lines,
    reason = "one row per figure, in the order shown"
)]
fn table(
    kernel: &Figures,
    ours: &Figures,
    c: &Figures,
    targets: &Targets,
    config: Config,
    load: &str,
) -> String {
    let mut out = format!(
        "storm: {} connections x {} runs per subject, each held until its second subflow \
         (C sspi: until ESTABLISHED), interleaved; load average at the end: {load}\n\
         {:<40} {:>16} {:>22} {:>22}  target\n",
        config.connections, config.runs, "measure", "kernel PM", "ours", "C sspi"
    );
    let mut row = |label: &str, f: &dyn Fn(&Figures) -> String, target: String| {
        let _infallible = writeln!(
            out,
            "{label:<40} {:>16} {:>22} {:>22}  {target}",
            f(kernel),
            f(ours),
            f(c)
        );
    };
    row(
        "connections/s",
        &|f: &Figures| num(f.connections_per_s),
        String::new(),
    );
    row(
        "subflows established/s",
        &|f: &Figures| num(f.subflows_per_s),
        format!(
            ">= 0.8x kernel: {:.2}x, {}",
            targets.subflows_per_s_vs_kernel,
            yes(targets.subflows_per_s_vs_kernel >= 0.8)
        ),
    );
    row(
        "ESTABLISHED -> 2nd subflow, median (ms)",
        &|f: &Figures| num(f.join_ms_median),
        String::new(),
    );
    row(
        "ESTABLISHED -> 2nd subflow, p99 (ms)",
        &|f: &Figures| num(f.join_ms_p99),
        format!(
            "<= 2x kernel: {:.2}x, {}",
            targets.join_p99_vs_kernel,
            yes(targets.join_p99_vs_kernel <= 2.0)
        ),
    );
    row(
        "left without their subflow",
        &|f: &Figures| opt(f.without_subflow),
        format!("0: {}", yes(ours.without_subflow == Some(0))),
    );
    row(
        "served to the end by the server",
        &|f: &Figures| f.served.to_string(),
        String::new(),
    );
    row(
        "missed (C: never ESTABLISHED)",
        &|f: &Figures| f.missed.to_string(),
        String::new(),
    );
    row(
        "listener overruns / unheard joins",
        &|f: &Figures| format!("{}/{}", f.listener_overruns, f.unheard),
        String::new(),
    );
    row(
        "daemon overruns",
        &|f: &Figures| opt(f.daemon_overruns),
        String::new(),
    );
    row(
        "daemon CPU per 1000 connections (ms)",
        &|f: &Figures| opt(f.daemon_cpu_ms_per_1000.map(num)),
        String::new(),
    );
    row(
        "daemon CPU (% of one core, runs)",
        &|f: &Figures| opt(f.daemon_cpu_percent.map(num)),
        String::new(),
    );
    row(
        "client CPU per 1000 connections (ms)",
        &|f: &Figures| num(f.client_cpu_ms_per_1000),
        String::new(),
    );
    row(
        "server CPU per 1000 connections (ms)",
        &|f: &Figures| num(f.server_cpu_ms_per_1000),
        String::new(),
    );
    row(
        "VmRSS warm-up / run 1 / max / end (KiB)",
        &|f: &Figures| match (
            f.rss_kib_after_warm_up,
            f.rss_kib_after_run_1,
            f.rss_kib_max,
            f.rss_kib_end,
        ) {
            (Some(warm), Some(run1), Some(max), Some(end)) => {
                format!("{warm}/{run1}/{max}/{end}")
            }
            _ => "-".to_owned(),
        },
        format!("flat: {}", yes(ours.rss_flat == Some(true))),
    );
    row(
        "ANNOUNCED heard by the server",
        &|f: &Figures| f.announced.to_string(),
        String::new(),
    );
    row(
        "daemon log lines per 1000 connections",
        &|f: &Figures| opt(f.daemon_log_lines_per_1000.map(num)),
        String::new(),
    );
    let _infallible = writeln!(
        out,
        "targets (ours beside the in-kernel PM): {}",
        if targets.met {
            "all met"
        } else {
            "NOT all met"
        }
    );
    out
}
