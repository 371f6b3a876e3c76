//! Running iproute2's `ip` (and other tools) for the guards.

use std::process::Command;

use anyhow::{Context as _, bail};

/// Runs `program args...`; fails with its stderr unless it exits 0.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS...`.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    run("ip", args)
}

/// `ip -n NETNS ARGS...`.
pub fn ip_in(netns: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut all = vec!["-n", netns];
    all.extend_from_slice(args);
    ip(&all)
}
