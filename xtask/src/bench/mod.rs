//! `cargo xtask bench ...`: benchmarks against the real kernel (root). Each builds what it
//! needs in release mode and runs it; nothing here is a test and no timing is judged.

mod churn;
mod dbus;
mod failover;
mod netlink;
mod storm;
mod telemetry;
mod upgrade;

use std::{fs, process::Command};

use anyhow::bail;

use crate::{cmd, workspace};

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, clap::Subcommand)]
enum Bench {
    /// The `mptcp_pm` layer: events decoded under a connection storm between two namespaces
    /// (beside `ip mptcp monitor`), endpoint dump round trips (beside `ip mptcp endpoint show`).
    Netlink(netlink::NetlinkArgs),
    /// The daemon's D-Bus event signals under a connection storm: every event reaches 1 and 10
    /// subscribers (against an independent `mptcp_pm` listener), events/s, the daemon's added CPU.
    Dbus(dbus::DbusArgs),
    /// Endpoint-table convergence under address churn: ours beside the C mptcpd 0.12 and the
    /// `ip mptcp endpoint` floor, with each daemon's memory.
    Churn(churn::ChurnArgs),
    /// The userspace path manager at scale: N connections held until their second subflow,
    /// under the in-kernel PM (reference), our daemon's `mesh` and the C mptcpd's `sspi`.
    Storm(storm::StormArgs),
    /// `socket()+close()`: native TCP, native MPTCP, `LD_PRELOAD` (host), eBPF upgrade (VM 6.12).
    Upgrade(upgrade::UpgradeArgs),
    /// Subflow telemetry: RTT beside `tcpi_rtt` (VM 6.12, netem), RTO detection, transfer
    /// overhead, memory after 100,000 connections, per-connection cost (host).
    Telemetry(telemetry::TelemetryArgs),
    /// Failover: the `health` plugin beside the kernel alone and path A alone while path B is
    /// blackholed, lossy, slow or healthy (host).
    Failover(failover::FailoverArgs),
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("benchmarks need root (network namespaces, mptcp_pm events): run them as root");
    }
    match &args.bench {
        Bench::Churn(churn) => churn::run(churn),
        Bench::Netlink(netlink) => netlink::run(netlink),
        Bench::Dbus(dbus) => dbus::run(dbus),
        Bench::Storm(storm) => storm::run(storm),
        Bench::Upgrade(upgrade) => upgrade::run(upgrade),
        Bench::Telemetry(telemetry) => telemetry::run(telemetry),
        Bench::Failover(failover) => failover::run(failover),
    }
}

/// Builds `mptcpd-bench` (release; with `build`'s extra packages and binaries) and runs its
/// benchmark `name` with `args`, its JSON going to `target/bench/NAME.json`.
fn mptcpd_bench(name: &str, build: &[&str], args: &[&str]) -> anyhow::Result<()> {
    cmd::run(
        cmd::cargo()
            .args([
                "build",
                "--release",
                "-p",
                "mptcpd-bench",
                "--bin",
                "mptcpd-bench",
            ])
            .args(build),
    )?;
    let target = workspace::target_dir();
    let out_dir = target.join("bench");
    fs::create_dir_all(&out_dir)?;
    cmd::run(
        Command::new(target.join("release").join("mptcpd-bench"))
            .arg(name)
            .args(args)
            .arg("--json")
            .arg(out_dir.join(format!("{name}.json"))),
    )
}
