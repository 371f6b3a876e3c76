//! `cargo xtask lab`: builds the daemon and the lab, then runs the lab as root.
//! `cargo xtask lab --scenario failover`: path B blackholed under `health`, plotted
//! (`mptcpd-bench failover-lab`: SVG and PNG under `target/lab/`).

use anyhow::bail;

use crate::{cmd, workspace};

#[derive(Debug, clap::Args)]
pub(crate) struct LabArgs {
    /// `failover`: the blackhole scenario with `health`, plotted to `target/lab/`.
    #[arg(long, value_parser = ["failover"])]
    scenario: Option<String>,
    /// Arguments for the lab (see `--help` after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub(crate) fn run(args: &LabArgs) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the lab needs root (network namespaces, cgroups, BPF): run it as root");
    }
    if args.scenario.is_some() {
        cmd::run(cmd::build(["mptcpd", "mptcpd-bench"]).arg("--bins"))?;
        let bench = workspace::target_dir().join("debug").join("mptcpd-bench");
        let out = workspace::target_dir().join("lab");
        return cmd::run(
            std::process::Command::new(bench)
                .arg("failover-lab")
                .arg("--out")
                .arg(out)
                .args(&args.args),
        );
    }
    cmd::run(cmd::build(workspace::TESTED_BINS).arg("--bins"))?;
    let lab = workspace::target_dir().join("debug").join("mptcpd-lab");
    cmd::run(std::process::Command::new(lab).args(&args.args))
}
