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

/// `cargo build` of what the integration tests run (the daemon, the harness's binaries, the
/// `LD_PRELOAD` wrapper), debug profile.
pub(crate) fn build_test_binaries() -> Command {
    let mut cmd = cargo();
    cmd.arg("build")
        .args(crate::workspace::TESTED_PACKAGES)
        .args(["--bins", "--lib"]);
    cmd
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
