//! Path-health judgements that plugins report to the daemon, which shows them to operators
//! (metrics, D-Bus, `mptcpctl connections`: why a subflow is backup).

use std::{fmt, net::IpAddr};

/// How a local address's paths are doing, as a plugin judged them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathHealth {
    /// Nothing wrong.
    #[default]
    Healthy,
    /// Lossy or slow: worth moving traffic away (backup).
    Degraded,
    /// No progress over repeated RTOs.
    Dead,
}

impl PathHealth {
    /// The lower-case name (`healthy`, `degraded`, `dead`): logs, metrics labels, D-Bus.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Dead => "dead",
        }
    }
}

impl fmt::Display for PathHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plugin's judgement of a local address and what it did about it
/// ([`crate::PathManager::report_decision`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathDecision {
    /// The plugin that decided.
    pub plugin: &'static str,
    /// The local address judged.
    pub addr: IpAddr,
    /// Its state before.
    pub from: PathHealth,
    /// Its state now.
    pub to: PathHealth,
    /// The figures that caused it, one line (never a connection's token).
    pub reason: String,
    /// What was done, one line (e.g. `endpoint 3 set backup`, or why nothing was).
    pub action: String,
}
