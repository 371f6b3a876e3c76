//! Running commands, echoing what runs.

use std::{
    ffi::OsStr,
    process::{Command, Output},
};

use anyhow::{Context as _, bail};

/// A command line for messages.
pub(crate) fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` with inherited stdio; fails unless it exits 0.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("+ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("running {}", display(cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", display(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its output, whatever its exit status.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<Output> {
    cmd.output()
        .with_context(|| format!("running {}", display(cmd)))
}

/// Runs `cmd` quietly; its stdout if it exits 0.
pub(crate) fn stdout(cmd: &mut Command) -> anyhow::Result<String> {
    let out = output(cmd)?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo` from the toolchain that runs xtask (the pinned stable).
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(crate::workspace::root());
    cmd
}

/// `cargo build -p P...` of `packages`.
pub(crate) fn build<'a>(packages: impl IntoIterator<Item = &'a str>) -> Command {
    let mut cmd = cargo();
    cmd.arg("build");
    for package in packages {
        cmd.args(["-p", package]);
    }
    cmd
}

/// `cargo build` of what the integration tests run (the daemon, the harness's binaries, the
/// `LD_PRELOAD` wrapper), debug profile.
pub(crate) fn build_test_binaries() -> Command {
    let mut cmd = build(crate::workspace::TESTED_BINS);
    cmd.args(["-p", "mptcpwrap", "--bins", "--lib"]);
    cmd
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::build_test_binaries;

    #[test]
    fn the_test_binaries_build_names_each_package_once() {
        let cmd = build_test_binaries();
        let args: Vec<_> = cmd.get_args().filter_map(|a| a.to_str()).collect();
        assert_eq!(
            args,
            [
                "build",
                "-p",
                "mptcpd",
                "-p",
                "mptcpctl",
                "-p",
                "mptcpize",
                "-p",
                "mptcpd-tests",
                "-p",
                "mptcpwrap",
                "--bins",
                "--lib"
            ]
        );
    }
}
