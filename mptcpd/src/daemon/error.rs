//! Errors that stop the daemon.

use std::io;

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The async runtime could not be built.
    #[error("starting the runtime: {0}")]
    Runtime(#[source] io::Error),
    /// Logging could not be set up.
    #[error("logging to the journal: {0}")]
    Journal(#[source] io::Error),
    /// The network monitor could not start.
    #[error("network monitor: {0}")]
    Netmon(#[source] crate::netmon::NetmonError),
    /// The network monitor stopped while the daemon ran.
    #[error("network monitor stopped{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NetmonStopped(Option<crate::netmon::NetmonError>),
    /// The `mptcp_pm` generic-netlink family could not be used.
    #[error("mptcp_pm: {0}")]
    Pm(#[source] crate::pm::PmError),
    /// A signal handler could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] io::Error),
}
