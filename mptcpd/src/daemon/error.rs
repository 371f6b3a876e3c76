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
    /// A signal handler could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] io::Error),
}
