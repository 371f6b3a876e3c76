//! `mptcpd-lab`: the two-path lab (`cargo xtask lab` builds and runs it as root).

use std::process::ExitCode;

use clap::Parser;
use mptcpd_tests::lab::{LabConfig, run};

#[derive(Debug, Parser)]
#[command(name = "mptcpd-lab", about = "Two-path MPTCP lab with mptcpd (root)")]
struct Args {
    /// Bytes the client sends.
    #[arg(long, default_value_t = 24 << 20)]
    bytes: u64,
    /// Egress rate of each client link (tc tbf syntax).
    #[arg(long, default_value = "100mbit")]
    rate: String,
    /// The userspace path manager, the join opened by `plugins/examples/external_pm.py` over
    /// D-Bus (a private bus; needs python3-dbus-next).
    #[arg(long)]
    external_pm: bool,
}

fn main() -> ExitCode {
    let Args {
        bytes,
        rate,
        external_pm,
    } = Args::parse();
    match run(&LabConfig {
        bytes,
        rate,
        external_pm,
    }) {
        Ok(()) => {
            println!("lab: OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lab: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}
