//! `mptcpd-bench`: the benchmarks `cargo xtask bench` builds and runs (root): measurements
//! against the real kernel, each beside a floor or a peer measured in the same run where one
//! exists. Not tests: nothing here judges a timing. A binary only, so that `anyhow` stays out
//! of library crates.

mod churn;
mod monitor;
mod netlink;
mod report;
mod storm;

use std::{path::PathBuf, process::ExitCode};

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
        /// Where to write the JSON results.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let Args { bench } = Args::parse();
    let result = match bench {
        Bench::Netlink {
            connections,
            rounds,
            json,
        } => netlink::run(netlink::Config {
            connections,
            rounds,
        })
        .and_then(|outcome| report(&outcome.table, &outcome.json, json)),
        Bench::Churn { cycles, json } => churn::run(churn::Config { cycles })
            .and_then(|outcome| report(&outcome.table, &outcome.json, json)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
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
