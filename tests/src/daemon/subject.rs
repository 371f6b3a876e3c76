//! Either daemon, ours or the C peer, started in a namespace with the same settings, for the
//! parity tests and the churn benchmark.

use std::{fmt, ops::Deref, path::Path};

use crate::{
    daemon::{c_peer::CPeer, process::Daemon},
    net::netns::NetNs,
};

/// Which daemon.
#[derive(Debug, Clone)]
pub enum Subject {
    /// Ours, at this path.
    Ours(std::path::PathBuf),
    /// Debian's C mptcpd.
    C(CPeer),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ours(_) => f.write_str("mptcpd (ours)"),
            Self::C(peer) => write!(f, "C mptcpd {}", peer.version()),
        }
    }
}

/// The settings both daemons get; `None` leaves the option out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings<'a> {
    /// `--addr-flags`.
    pub addr_flags: Option<&'a str>,
    /// `--notify-flags`.
    pub notify_flags: Option<&'a str>,
}

/// A started daemon and what it needs to keep (our daemon's configuration file).
#[derive(Debug)]
pub struct Running {
    daemon: Daemon,
    _config: Option<tempfile::NamedTempFile>,
}

impl Running {
    /// The daemon itself (to stop it and read its whole log).
    #[must_use]
    pub fn into_daemon(self) -> Daemon {
        self.daemon
    }
}

impl Deref for Running {
    type Target = Daemon;

    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl Subject {
    /// Starts the daemon in `netns` and waits until it is ready: `READY=1` from ours, the
    /// plugin's init line from the C daemon (it has no `sd_notify`).
    pub fn start(&self, netns: &NetNs, settings: Settings<'_>) -> anyhow::Result<Running> {
        self.start_with(netns, settings, State::Temporary)
    }

    /// As [`Subject::start`], our daemon's state in `state_dir` (the C daemon keeps none):
    /// a benchmark puts it on a tmpfs, as `/run/mptcpd` is in production.
    pub fn start_with_state_dir(
        &self,
        netns: &NetNs,
        settings: Settings<'_>,
        state_dir: &Path,
    ) -> anyhow::Result<Running> {
        self.start_with(netns, settings, State::Dir(state_dir))
    }

    fn start_with(
        &self,
        netns: &NetNs,
        settings: Settings<'_>,
        state: State<'_>,
    ) -> anyhow::Result<Running> {
        match self {
            Self::Ours(binary) => start_ours(binary, netns, settings, state),
            Self::C(peer) => Ok(Running {
                daemon: peer.start(netns, settings.addr_flags, settings.notify_flags)?,
                _config: None,
            }),
        }
    }
}

/// Where our daemon keeps its state and its pins.
#[derive(Debug, Clone, Copy)]
enum State<'a> {
    /// The harness's temporary directory; pinned under `/sys/fs/bpf/NETNS`.
    Temporary,
    /// This directory; pinned under `/sys/fs/bpf/NETNS`.
    Dir(&'a Path),
    /// This directory, pins included (they fail there: nothing outlives a killed daemon).
    Restartable(&'a Path),
}

/// Our daemon in `netns`, restartable after a `kill -9`: it keeps its state in `state_dir`
/// (pass the same one to the next start) and pins nothing (a pin outlives a killed daemon),
/// so its socket observer runs unpinned.
pub fn start_ours_with_state(
    binary: &Path,
    netns: &NetNs,
    settings: Settings<'_>,
    state_dir: &Path,
) -> anyhow::Result<Running> {
    start_ours(binary, netns, settings, State::Restartable(state_dir))
}

fn start_ours(
    binary: &Path,
    netns: &NetNs,
    settings: Settings<'_>,
    state: State<'_>,
) -> anyhow::Result<Running> {
    // An empty configuration file of its own: /etc/mptcpd/mptcpd.conf must not count.
    let config = tempfile::Builder::new()
        .prefix("mptcpd-parity-")
        .suffix(".conf")
        .tempfile()?;
    let mut cmd = netns.command(binary)?;
    cmd.args(["--log", "stderr", "--config"])
        .arg(config.path())
        .args(["--path-manager", "addr_adv"]);
    match state {
        State::Restartable(dir) => {
            // Not on bpffs: pinning fails with a warning and leaves nothing behind.
            cmd.arg("--state-dir")
                .arg(dir)
                .arg("--bpf-pin-dir")
                .arg(dir.join("pins"));
        }
        State::Dir(dir) => {
            cmd.arg("--state-dir").arg(dir);
            cmd.arg(format!("--bpf-pin-dir=/sys/fs/bpf/{}", netns.name()));
        }
        State::Temporary => {
            cmd.arg(format!("--bpf-pin-dir=/sys/fs/bpf/{}", netns.name()));
        }
    }
    if let Some(flags) = settings.addr_flags {
        cmd.arg(format!("--addr-flags={flags}"));
    }
    if let Some(flags) = settings.notify_flags {
        cmd.arg(format!("--notify-flags={flags}"));
    }
    Ok(Running {
        daemon: Daemon::start(cmd)?,
        _config: Some(config),
    })
}
