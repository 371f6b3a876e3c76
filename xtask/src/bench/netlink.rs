//! `cargo xtask bench netlink`: builds `mptcpd-bench` (release) and runs its `netlink`
//! benchmark, which prints the table and writes `target/bench/netlink.json`.

use std::{fs, process::Command};

use crate::{cmd, workspace};

#[derive(Debug, clap::Args)]
pub(crate) struct NetlinkArgs {
    /// Short MPTCP connections per storm.
    #[arg(long, default_value_t = 500)]
    connections: usize,
    /// Repetitions of each measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub(crate) fn run(args: &NetlinkArgs) -> anyhow::Result<()> {
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "-p",
        "mptcpd-tests",
        "--bin",
        "mptcpd-bench",
    ]))?;
    let target = workspace::target_dir();
    let out_dir = target.join("bench");
    fs::create_dir_all(&out_dir)?;
    let json = out_dir.join("netlink.json");
    cmd::run(
        Command::new(target.join("release").join("mptcpd-bench"))
            .arg("netlink")
            .args(["--connections", &args.connections.to_string()])
            .args(["--rounds", &args.rounds.to_string()])
            .arg("--json")
            .arg(&json),
    )
}
