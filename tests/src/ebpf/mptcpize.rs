//! Running the `mptcpize` binary in tests, with a pin directory of the test's own.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::bins;

/// A pin directory and a systemd drop-in directory for one test; on drop the upgrade pinned
/// there is removed (`reset`), and so are the drop-ins.
#[derive(Debug)]
pub struct PinDir {
    pins: PathBuf,
    systemd: PathBuf,
}

impl PinDir {
    /// `/sys/fs/bpf/mptcpd-test-PID-NAME` and `$TMPDIR/mptcpd-test-PID-NAME-systemd` (neither
    /// created: mptcpize makes them when it pins or writes a drop-in).
    #[must_use]
    pub fn new(test: &str) -> Self {
        let name = format!("mptcpd-test-{}-{test}", std::process::id());
        Self {
            pins: PathBuf::from("/sys/fs/bpf").join(&name),
            systemd: std::env::temp_dir().join(format!("{name}-systemd")),
        }
    }

    /// The pin directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.pins
    }

    /// The drop-in directory every command gets (`--systemd-dir`): a test never writes to the
    /// real `/etc/systemd/system`.
    #[must_use]
    pub fn systemd_dir(&self) -> &Path {
        &self.systemd
    }

    /// `mptcpize --bpf-pin-dir DIR --systemd-dir DIR ARGS...`, not started.
    pub fn command<I, S>(&self, args: I) -> anyhow::Result<Command>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(bins::path("mptcpize")?);
        cmd.arg("--bpf-pin-dir")
            .arg(&self.pins)
            .arg("--systemd-dir")
            .arg(&self.systemd)
            .args(args);
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

    /// `mptcpize VERB --cgroup CGROUP` (`enable`, `disable`), which must succeed; its stdout
    /// (what it says it did).
    ///
    /// # Panics
    /// If it cannot run or fails (the message carries its stderr).
    #[expect(
        clippy::must_use_candidate,
        reason = "most callers only need the success this asserts"
    )]
    pub fn on_cgroup(&self, verb: &str, cgroup: &Path) -> String {
        let out = self
            .command([verb.as_ref(), "--cgroup".as_ref(), cgroup.as_os_str()])
            .and_then(|mut cmd| Ok(cmd.output()?))
            .unwrap_or_else(|e| panic!("mptcpize {verb} --cgroup: {e:#}"));
        assert!(
            out.status.success(),
            "mptcpize {verb} --cgroup {}: {}",
            cgroup.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Ok(mut cmd) = self.command(["reset"]) {
            let _done = cmd.output();
        }
        let _removed = std::fs::remove_dir(&self.pins);
        let _removed = std::fs::remove_dir_all(&self.systemd);
    }
}

/// The `SO_PROTOCOL` that `mptcp-xfer socket ...` printed.
#[must_use]
pub fn printed_protocol(out: &Output) -> Option<i32> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("protocol ")?.trim().parse().ok())
}
