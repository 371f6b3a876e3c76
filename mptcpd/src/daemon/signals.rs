//! The signals the daemon acts on: SIGTERM and SIGINT stop it, SIGHUP reloads the
//! configuration.

use std::fmt;

use tokio::signal::unix::{Signal as Stream, SignalKind, signal};

use super::DaemonError;

/// A signal the daemon received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    /// Stop.
    Term,
    /// Stop (Ctrl-C).
    Int,
    /// Re-read the configuration.
    Hup,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Term => "SIGTERM",
            Self::Int => "SIGINT",
            Self::Hup => "SIGHUP",
        })
    }
}

/// The handlers, installed before the daemon says it is ready.
pub(super) struct Signals {
    term: Stream,
    int: Stream,
    hup: Stream,
}

impl Signals {
    pub(super) fn install() -> Result<Self, DaemonError> {
        let install = |kind| signal(kind).map_err(DaemonError::Signals);
        Ok(Self {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal.
    pub(super) async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Term,
            _ = self.int.recv() => Signal::Int,
            _ = self.hup.recv() => Signal::Hup,
        }
    }
}
