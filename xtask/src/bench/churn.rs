//! `cargo xtask bench churn`: builds our daemon and `mptcpd-bench` (release) and runs its
//! `churn` benchmark (ours, the C mptcpd fetched by the harness, and the `ip` floor), which
//! prints the table and writes `target/bench/churn.json`.

use std::{fs, process::Command};

use crate::{cmd, workspace};

#[derive(Debug, clap::Args)]
pub(crate) struct ChurnArgs {
    /// Add-then-delete cycles of 8 addresses per subject (each ~0.1 s: deletes are slow in the
    /// kernel).
    #[arg(long, default_value_t = 200)]
    cycles: usize,
}

pub(crate) fn run(args: &ChurnArgs) -> anyhow::Result<()> {
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "-p",
        "mptcpd",
        "-p",
        "mptcpd-tests",
        "--bin",
        "mptcpd",
        "--bin",
        "mptcpd-bench",
    ]))?;
    let target = workspace::target_dir();
    let out_dir = target.join("bench");
    fs::create_dir_all(&out_dir)?;
    cmd::run(
        Command::new(target.join("release").join("mptcpd-bench"))
            .arg("churn")
            .args(["--cycles", &args.cycles.to_string()])
            .arg("--json")
            .arg(out_dir.join("churn.json")),
    )
}
