//! `cargo xtask lab`: builds the daemon and the lab, then runs the lab as root.

use anyhow::bail;

use crate::{cmd, workspace};

#[derive(Debug, clap::Args)]
pub(crate) struct LabArgs {
    /// Arguments for the lab (see `--help` after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub(crate) fn run(args: &LabArgs) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the lab needs root (network namespaces, cgroups, BPF): run it as root");
    }
    cmd::run(cmd::cargo().args([
        "build",
        "-p",
        "mptcpd",
        "-p",
        "mptcpctl",
        "-p",
        "mptcpize",
        "-p",
        "mptcpd-tests",
        "--bins",
    ]))?;
    let lab = workspace::target_dir().join("debug").join("mptcpd-lab");
    cmd::run(std::process::Command::new(lab).args(&args.args))
}
