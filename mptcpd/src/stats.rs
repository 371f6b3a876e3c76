//! The daemon's own counters, incremented where it handles events and read by the metrics
//! (`crate::metrics`). Plain atomics: counting costs the same whether metrics are served or not.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one daemon, shared (`Arc`) by the event loop, the plugin host and the metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pm_events: AtomicU64,
    overruns: AtomicU64,
    plugin_errors: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// `mptcp_pm` events handled (decoded and passed on).
    pub pm_events: u64,
    /// Receive-buffer overruns of the `mptcp_pm` event socket (events the kernel dropped).
    pub overruns: u64,
    /// Events a plugin failed to handle (it panicked; the host logged it and went on).
    pub plugin_errors: u64,
}

impl Stats {
    /// An `mptcp_pm` event was handled.
    pub fn pm_event(&self) {
        self.pm_events.fetch_add(1, Ordering::Relaxed);
    }

    /// The event socket overran; returns how many overruns so far (for the log line).
    pub fn overrun(&self) -> u64 {
        self.overruns.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A plugin failed to handle an event.
    pub fn plugin_error(&self) {
        self.plugin_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            pm_events: self.pm_events.load(Ordering::Relaxed),
            overruns: self.overruns.load(Ordering::Relaxed),
            plugin_errors: self.plugin_errors.load(Ordering::Relaxed),
        }
    }
}
