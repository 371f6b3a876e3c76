//! `mptcpd-bench telemetry`: what the subflow telemetry measures and what it costs, each
//! figure beside its target (issue 12). Parts: `rtt` (telemetry's smoothed RTT beside
//! `tcpi_rtt`, netem delays: the VM), `detection` (a blackholed path's RTO event against the
//! subflow's RTO), `overhead` (bulk transfers with and without the program), `memory` (many
//! short connections: entries and resident memory come back), `connect-cost` (plain TCP
//! connections with the program attached or not: the cost of attaching at the root).

mod bound;
mod connect_cost;
mod detection;
mod figure;
mod memory;
mod observer;
mod overhead;
pub(crate) mod peer;
mod rtt;

use std::{fmt::Write as _, net::SocketAddr, path::PathBuf, process::Stdio, time::Instant};

use anyhow::{Context as _, bail};
use mptcpd_tests::{
    ebpf::cgroup::TestCgroup,
    net::{
        netns::NetNs,
        sysctl,
        two_hosts::{IpVersion, SERVER, TwoHosts},
    },
};

use self::{
    figure::{Figure, Report},
    observer::Observer,
};

/// A part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Part {
    /// Telemetry's smoothed RTT beside `tcpi_rtt` (needs netem).
    Rtt,
    /// A blackholed path's RTO event against the subflow's RTO (needs tbf and nft).
    Detection,
    /// Bulk transfers with and without the program.
    Overhead,
    /// Many short connections: map entries and resident memory afterwards.
    Memory,
    /// Plain TCP connections with the program attached or not.
    ConnectCost,
}

/// What to run.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) parts: Vec<Part>,
    /// Short connections of the memory part.
    pub(crate) connections: usize,
    /// Bulk transfers per mode (overhead) and rounds per mode (connect cost).
    pub(crate) runs: usize,
    /// Bytes per bulk transfer.
    pub(crate) bytes: u64,
    /// Connections per connect-cost round.
    pub(crate) connects: usize,
    /// Blackholing rounds of the detection part.
    pub(crate) rounds: usize,
    /// Figures of another run (the VM's) to show first.
    pub(crate) merge: Option<PathBuf>,
}

/// The table and the JSON.
pub(crate) struct Outcome {
    pub(crate) table: String,
    pub(crate) json: String,
}

pub(crate) fn run(config: &Config) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut figures = match &config.merge {
        Some(path) => figure::read_figures(path)?,
        None => Vec::new(),
    };
    for part in &config.parts {
        let part_started = Instant::now();
        let measured = match part {
            Part::Rtt => rtt::run(),
            Part::Detection => detection::run(config.rounds),
            Part::Overhead => overhead::run(config.runs, config.bytes),
            Part::Memory => memory::run(config.connections),
            Part::ConnectCost => connect_cost::run(config.runs, config.connects),
        }
        .with_context(|| format!("part {part:?}"))?;
        eprintln!("bench: part {part:?} took {:.1?}", part_started.elapsed());
        figures.extend(measured);
    }
    let wall_s = started.elapsed().as_secs_f64();
    let mut table = figure::table(&figures);
    let _infallible = writeln!(table, "bench: this run took {wall_s:.1} s");
    let json = crate::report::json(&Report { figures, wall_s })?;
    Ok(Outcome { table, json })
}

/// The server's path-1 address, port `port`.
fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpVersion::V4.addr(1, SERVER), port)
}

/// Two hosts whose client's in-kernel PM opens a second subflow on path 2, with room for many
/// short connections from one address (ports reused from `TIME_WAIT`, a wide port range).
fn hosts(prefix: &str) -> anyhow::Result<TwoHosts> {
    let hosts = TwoHosts::new(prefix)?;
    hosts.join_path_2()?;
    sysctl::set_in(&hosts.client, "net.ipv4.ip_local_port_range", "1024 65000")?;
    sysctl::set_in(&hosts.client, "net.ipv4.tcp_tw_reuse", "1")?;
    Ok(hosts)
}

/// `tc ARGS` in `netns`; an error holding what tc said.
fn tc(netns: &NetNs, args: &[&str]) -> anyhow::Result<()> {
    let out = netns
        .command("tc")?
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running tc")?;
    if !out.status.success() {
        bail!(
            "tc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Two samples per measurement, by mode: `on` with the program attached, `off` without.
#[derive(Debug, Default)]
struct OnOff {
    on: [Vec<f64>; 2],
    off: [Vec<f64>; 2],
}

/// Runs `measure` `runs` times with the program attached to `cgroup` (observing `netns`) and as
/// often without, alternating which mode goes first. `measure` gets whether the program is
/// attached (and its observer) and returns two samples.
fn interleaved(
    runs: usize,
    cgroup: &TestCgroup,
    netns: &NetNs,
    mut measure: impl FnMut(Option<&Observer>) -> anyhow::Result<[f64; 2]>,
) -> anyhow::Result<OnOff> {
    let mut samples = OnOff::default();
    for run in 0..runs {
        for attached in [run % 2 == 0, run % 2 != 0] {
            let observer = attached
                .then(|| Observer::attach(cgroup, netns, false))
                .transpose()?;
            let measured = measure(observer.as_ref())?;
            drop(observer);
            let mode = if attached {
                &mut samples.on
            } else {
                &mut samples.off
            };
            for (sample, all) in measured.into_iter().zip(mode.iter_mut()) {
                all.push(sample);
            }
        }
    }
    Ok(samples)
}

/// Median of `values` (sorted here); NaN when empty.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Within `pct` percent of 1.
fn within(ratio: f64, pct: f64) -> bool {
    (ratio - 1.0).abs() <= pct / 100.0
}

/// Figures of one part that could not run here: one line each says why.
fn not_measured(part: &str, names: &[&str], why: &str) -> Vec<Figure> {
    names
        .iter()
        .map(|name| Figure::missing(part, name, why))
        .collect()
}
