//! The signals that stop the daemon.

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::DaemonError;

/// SIGTERM and SIGINT, installed before the daemon says it is ready.
pub(super) struct Shutdown {
    term: Signal,
    int: Signal,
}

impl Shutdown {
    pub(super) fn install() -> Result<Self, DaemonError> {
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(DaemonError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?,
        })
    }

    /// Waits for either signal and names it.
    pub(super) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
