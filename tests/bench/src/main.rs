//! `mptcpd-bench`: the benchmarks `cargo xtask bench` builds and runs (root): measurements
//! against the real kernel, each beside a floor or a peer measured in the same run where one
//! exists. Not tests: nothing here judges a timing. A binary only, so that `anyhow` stays out
//! of library crates.

mod churn;
mod dbus;
mod failover;
mod monitor;
mod netlink;
mod pm_storm;
mod report;
mod storm;
mod telemetry;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mptcpd-bench",
    about = "mptcpd benchmarks against the real kernel (root)"
)]
struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// The daemon's event signals under a connection storm, with 1 and 10 subscribers on a
    /// private system-like bus: counted against an independent `mptcp_pm` listener, and the
    /// daemon's added CPU.
    Dbus {
        /// Connections per storm.
        #[arg(long, default_value_t = 500)]
        connections: usize,
        /// Storms per subscriber count (medians are reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Where to write the JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Events decoded under a connection storm, and endpoint dump round trips.
    Netlink {
        /// Connections per storm.
        #[arg(long, default_value_t = 500)]
        connections: usize,
        /// Repetitions of each measurement (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Where to write the JSON results.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Endpoint-table convergence under address churn: ours, the C mptcpd, and the floor.
    Churn {
        /// Add-then-delete cycles of 8 addresses per subject.
        #[arg(long, default_value_t = 200)]
        cycles: usize,
        /// A build of our daemon as `FEATURE_SET=PATH` (repeatable; the first is judged against
        /// the targets; default: `default=` the `mptcpd` beside this program).
        #[arg(long = "daemon")]
        builds: Vec<churn::Build>,
        /// Where to write the JSON results.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The userspace path manager at scale: connections held until their second subflow,
    /// under the in-kernel PM, our daemon's `mesh` and the C mptcpd's `sspi`.
    Storm(pm_storm::Args),
    /// Subflow telemetry: RTT beside `tcpi_rtt`, RTO detection, overhead, memory, connect cost.
    Telemetry {
        /// Parts to run (comma-separated).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "rtt,detection,overhead,memory,connect-cost"
        )]
        parts: Vec<telemetry::Part>,
        /// Short MPTCP connections of the memory part.
        #[arg(long, default_value_t = 100_000)]
        connections: usize,
        /// Bulk transfers per mode (overhead), rounds per mode (connect cost); at least 5.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// MiB per bulk transfer.
        #[arg(long, default_value_t = 512)]
        mib: u64,
        /// Plain TCP connections per connect-cost round.
        #[arg(long, default_value_t = 5_000)]
        connects: usize,
        /// Blackholing rounds of the detection part.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Figures of another run (its JSON, e.g. the VM's) to show first and keep.
        #[arg(long)]
        merge: Option<PathBuf>,
        /// Where to write the JSON results.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Failover: the `health` plugin beside the kernel alone and path A alone, path B
    /// blackholed, lossy, slow or healthy.
    Failover {
        /// Scenarios (comma-separated), or `all`.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
        scenario: Vec<failover::Which>,
        /// Repetitions per subject and scenario; at least 5.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(5..))]
        runs: u64,
        /// Measured seconds per run (after the outage for the blackhole).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=600))]
        secs: u64,
        /// Seconds path B is blackholed.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
        outage: u64,
        /// The daemon's `health-hold`, seconds.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
        hold: u64,
        /// Another `health-*` key for the daemon, as KEY=VALUE (`rtt-percent=0`); repeatable.
        #[arg(long = "health", value_parser = health_arg)]
        health_args: Vec<String>,
        /// Where to write the JSON results.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// One blackhole run with `health`, plotted: bytes per path over time, the decisions
    /// marked (`failover.svg`, `failover.png`).
    FailoverLab {
        /// Where the SVG and the PNG go.
        #[arg(long)]
        out: PathBuf,
        /// Seconds path B is blackholed.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
        outage: u64,
        /// Seconds after the outage.
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=600))]
        after: u64,
        /// The daemon's `health-hold`, seconds.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
        hold: u64,
    },
    /// (Started by `failover` in the observed cgroup.) Sends for SECS seconds.
    #[command(hide = true)]
    FailoverSend {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long)]
        secs: f64,
        #[arg(long)]
        extra: u8,
    },
    /// (Started by `failover` in the observed cgroup.) 1 KiB exchanges for SECS seconds.
    #[command(hide = true)]
    FailoverEcho {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long)]
        secs: f64,
        #[arg(long)]
        extra: u8,
    },
    /// (Started by `telemetry` in the observed cgroup.) Sends over MPTCP, answering `info`.
    #[command(hide = true)]
    TelemetrySend {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long)]
        bytes: u64,
    },
    /// (Started by `telemetry` in the observed cgroup.) Makes short connections.
    #[command(hide = true)]
    ConnectStorm {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long)]
        connections: usize,
        #[arg(long, value_enum)]
        proto: storm::Proto,
    },
}

#[expect(clippy::too_many_lines, reason = "one arm per benchmark")]
fn main() -> ExitCode {
    let Args { bench } = Args::parse();
    let result = match bench {
        Bench::Dbus {
            connections,
            rounds,
            json,
        } => dbus::run(dbus::Config {
            connections,
            rounds,
        })
        .and_then(|outcome| report(&outcome.table, &outcome.json, json)),
        Bench::Netlink {
            connections,
            rounds,
            json,
        } => netlink::run(netlink::Config {
            connections,
            rounds,
        })
        .and_then(|outcome| report(&outcome.table, &outcome.json, json)),
        Bench::Churn {
            cycles,
            builds,
            json,
        } => churn::run(churn::Config { cycles, builds })
            .and_then(|outcome| report(&outcome.table, &outcome.json, json)),
        Bench::Storm(args) => storm(args),
        Bench::Telemetry {
            parts,
            connections,
            runs,
            mib,
            connects,
            rounds,
            merge,
            json,
        } => telemetry::run(&telemetry::Config {
            parts,
            connections,
            runs,
            bytes: mib << 20,
            connects,
            rounds,
            merge,
        })
        .and_then(|outcome| report(&outcome.table, &outcome.json, json)),
        Bench::Failover {
            scenario,
            runs,
            secs,
            outage,
            hold,
            health_args,
            json,
        } => usize::try_from(runs)
            .map_err(anyhow::Error::from)
            .and_then(|runs| {
                failover::run(&failover::Config {
                    which: scenario,
                    runs,
                    secs,
                    outage,
                    hold,
                    health_args,
                })
            })
            .and_then(|outcome| report(&outcome.table, &outcome.json, json)),
        Bench::FailoverLab {
            out,
            outage,
            after,
            hold,
        } => failover_lab(
            &failover::plot::LabConfig {
                outage,
                after,
                hold,
            },
            &out,
        ),
        Bench::FailoverSend {
            connect,
            secs,
            extra,
        } => failover::peer::send(connect, secs, extra),
        Bench::FailoverEcho {
            connect,
            secs,
            extra,
        } => failover::peer::echo(connect, secs, extra),
        Bench::TelemetrySend { connect, bytes } => telemetry::peer::send(connect, bytes),
        Bench::ConnectStorm {
            connect,
            connections,
            proto,
        } => telemetry::peer::connect_storm(connect, connections, proto),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The storm benchmark, its figures printed and written.
fn storm(args: pm_storm::Args) -> anyhow::Result<()> {
    let pm_storm::Args {
        connections,
        runs,
        json,
    } = args;
    let config = pm_storm::Config {
        connections: usize::try_from(connections)?,
        runs: usize::try_from(runs)?,
    };
    let outcome = pm_storm::run(config)?;
    report(&outcome.table, &outcome.json, json)
}

/// The failover lab's plot, and where it was written.
fn failover_lab(config: &failover::plot::LabConfig, out: &std::path::Path) -> anyhow::Result<()> {
    for path in failover::plot::lab(config, out)? {
        println!("lab: wrote {}", path.display());
    }
    Ok(())
}

/// `--health KEY=VALUE`: a `health-*` key of the daemon (the daemon checks the value).
fn health_arg(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        Some((key, value))
            if !key.is_empty()
                && !value.is_empty()
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '-') =>
        {
            Ok(format!("{key}={value}"))
        }
        _ => Err(format!(
            "{text:?} is not KEY=VALUE of a health-* key (e.g. rtt-percent=0)"
        )),
    }
}

/// Prints the table and writes the JSON where asked.
fn report(table: &str, json: &str, path: Option<PathBuf>) -> anyhow::Result<()> {
    print!("{table}");
    if let Some(path) = path {
        std::fs::write(&path, json)?;
        println!("bench: wrote {}", path.display());
    }
    Ok(())
}
