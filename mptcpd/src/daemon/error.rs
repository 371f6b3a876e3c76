//! Errors that stop the daemon. Each is one line: `main` prints it whatever `--log` says.

use std::{io, path::PathBuf};

fn pid_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"))
}

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The kernel has no MPTCP.
    #[error(
        "MPTCP is not available: {} is missing (kernel without CONFIG_MPTCP)",
        "/proc/sys/net/mptcp/enabled"
    )]
    MptcpAbsent,
    /// MPTCP is switched off in this network namespace.
    #[error(
        "MPTCP is disabled in this network namespace (net.mptcp.enabled = 0); \
         enable it with: sysctl -w net.mptcp.enabled=1"
    )]
    MptcpDisabled,
    /// The path manager cannot be changed without `CAP_NET_ADMIN`.
    #[error(
        "CAP_NET_ADMIN is not in the effective capability set: the path manager cannot be \
         configured without it (run as root or grant CAP_NET_ADMIN)"
    )]
    NoNetAdmin,
    /// The network namespace cannot be identified: its state would be shared with others.
    #[error("cannot identify this network namespace (is /proc mounted?)")]
    NetnsUnknown(#[source] io::Error),
    /// Another daemon runs in this network namespace.
    #[error(
        "another mptcpd ({}) already runs in this network namespace (it holds {}); \
         stop it first",
        pid_text(*.pid),
        .lock.display()
    )]
    AlreadyRunning {
        /// The other daemon's pid, as it wrote it in the lock file.
        pid: Option<u32>,
        /// The lock file.
        lock: PathBuf,
    },
    /// The state directory or the lock in it cannot be used.
    #[error("state directory {} (see --state-dir)", .path.display())]
    StateDir {
        /// The directory or file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A prerequisite could not be checked.
    #[error("checking prerequisites")]
    Prerequisite(#[source] io::Error),
    /// The async runtime could not be built.
    #[error("starting the runtime")]
    Runtime(#[source] io::Error),
    /// Logging could not be set up.
    #[error("logging to the {target} ({})", path.display())]
    Logging {
        /// `journal` or `syslog`.
        target: crate::config::LogTarget,
        /// The socket.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The network monitor could not start.
    #[error("network monitor")]
    Netmon(#[source] mptcpd_netmon::NetmonError),
    /// The network monitor stopped while the daemon ran.
    #[error("network monitor stopped")]
    NetmonStopped(#[source] Option<mptcpd_netmon::NetmonError>),
    /// The `mptcp_pm` generic-netlink family could not be used.
    #[error("mptcp_pm")]
    Pm(#[source] mptcp_pm::PmError),
    /// The plugins could not start (an unknown name, say).
    #[error("plugins")]
    Plugins(#[source] crate::plugins::PluginError),
    /// A signal handler could not be installed.
    #[error("installing signal handlers")]
    Signals(#[source] io::Error),
}
