//! Running the `mptcpize` binary in tests, with a pin directory of the test's own.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::bins;

/// A pin directory for one test; on drop the upgrade pinned there is removed (`reset`).
#[derive(Debug)]
pub struct PinDir(PathBuf);

impl PinDir {
    /// `/sys/fs/bpf/mptcpd-test-PID-NAME` (not created: mptcpize does that when it pins).
    #[must_use]
    pub fn new(test: &str) -> Self {
        Self(PathBuf::from(format!(
            "/sys/fs/bpf/mptcpd-test-{}-{test}",
            std::process::id()
        )))
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `mptcpize --bpf-pin-dir DIR ARGS...`, not started.
    pub fn command<I, S>(&self, args: I) -> anyhow::Result<Command>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(bins::path("mptcpize")?);
        cmd.arg("--bpf-pin-dir").arg(&self.0).args(args);
        Ok(cmd)
    }

    /// Runs `mptcpize --bpf-pin-dir DIR ARGS...` to completion.
    pub fn run<I, S>(&self, args: I) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Ok(self.command(args)?.output()?)
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Ok(mut cmd) = self.command(["reset"]) {
            let _done = cmd.output();
        }
        let _removed = std::fs::remove_dir(&self.0);
    }
}

/// The `SO_PROTOCOL` that `mptcp-xfer socket ...` printed.
#[must_use]
pub fn printed_protocol(out: &Output) -> Option<i32> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("protocol ")?.trim().parse().ok())
}
