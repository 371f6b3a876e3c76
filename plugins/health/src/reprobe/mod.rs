//! The re-probe schedule of dead paths: pure, time an input (the caller passes `now`, a
//! monotonic duration since any origin).
//!
//! A path judged dead has its subflows closed; nothing then observes it, so it is re-opened
//! (re-probed) after a wait: the first after the hold time, each one after a failed re-probe
//! twice the previous, at most `max`. A re-probe succeeds when a subflow from the address
//! established and it stayed so for the hold time (the caller reports a dead verdict at once
//! through [`Reprobe::close`]); then the path is released and the next death starts again
//! from the hold time. A re-probe fails when no subflow established within the hold time.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

/// Where a dead path stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its subflows are closed; re-opened at `until`.
    Closed {
        /// When the re-probe is due.
        until: Duration,
    },
    /// Re-opened at `since`; judged at `since` + hold.
    Probing {
        /// When it was re-opened.
        since: Duration,
        /// A subflow from the address established since.
        established: bool,
    },
}

/// What is due for a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Re-open it (its wait is over): then call [`Reprobe::reopened`].
    Reopen(IpAddr),
    /// Its re-probe failed (nothing established within the hold time): close it again with
    /// [`Reprobe::close`].
    Failed(IpAddr),
    /// Its re-probe held for the hold time: released, the backoff reset.
    Recovered(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Path {
    phase: Phase,
    /// The current wait.
    wait: Duration,
    /// Re-probes so far.
    probes: u32,
}

/// The schedule of every dead path.
#[derive(Debug, Default)]
pub struct Reprobe {
    hold: Duration,
    max: Duration,
    paths: BTreeMap<IpAddr, Path>,
}

impl Reprobe {
    /// First wait `hold`, doubling up to `max` (at least `hold`).
    #[must_use]
    pub fn new(hold: Duration, max: Duration) -> Self {
        Self {
            hold,
            max: max.max(hold),
            paths: BTreeMap::new(),
        }
    }

    /// A reload's new hold time and cap: later waits follow them; a wait already running
    /// keeps its end.
    pub fn set_schedule(&mut self, hold: Duration, max: Duration) {
        self.hold = hold;
        self.max = max.max(hold);
    }

    /// Where `addr` stands; `None`: not a dead path.
    #[must_use]
    pub fn phase(&self, addr: IpAddr) -> Option<Phase> {
        self.paths.get(&addr).map(|p| p.phase)
    }

    /// Re-probes of `addr` so far (0 when not a dead path).
    #[must_use]
    pub fn probes(&self, addr: IpAddr) -> u32 {
        self.paths.get(&addr).map_or(0, |p| p.probes)
    }

    /// The path's subflows were closed at `now` (judged dead, or its re-probe failed):
    /// returns the wait until its re-probe. A new dead path waits the hold time; one closed
    /// while probing twice its last wait, at most `max`; one already closed keeps its wait.
    pub fn close(&mut self, addr: IpAddr, now: Duration) -> Duration {
        let (hold, max) = (self.hold, self.max);
        let path = self.paths.entry(addr).or_insert(Path {
            phase: Phase::Closed { until: now + hold },
            wait: hold,
            probes: 0,
        });
        match path.phase {
            Phase::Closed { until } => return until.saturating_sub(now),
            Phase::Probing { .. } => path.wait = path.wait.saturating_mul(2).min(max),
        }
        path.phase = Phase::Closed {
            until: now + path.wait,
        };
        path.wait
    }

    /// `addr` was re-opened at `now`.
    pub fn reopened(&mut self, addr: IpAddr, now: Duration) {
        if let Some(path) = self.paths.get_mut(&addr) {
            path.phase = Phase::Probing {
                since: now,
                established: false,
            };
            path.probes += 1;
        }
    }

    /// A subflow from `addr` established: counts for a path being probed.
    pub fn established(&mut self, addr: IpAddr) {
        if let Some(Path {
            phase: Phase::Probing { established, .. },
            ..
        }) = self.paths.get_mut(&addr)
        {
            *established = true;
        }
    }

    /// Forgets `addr` (its address is gone, nothing to re-probe).
    pub fn forget(&mut self, addr: IpAddr) {
        self.paths.remove(&addr);
    }

    /// What is due at `now`, in address order; recovered paths are released.
    pub fn due(&mut self, now: Duration) -> Vec<Step> {
        let hold = self.hold;
        let mut steps = Vec::new();
        self.paths.retain(|&addr, path| match path.phase {
            Phase::Closed { until } => {
                if now >= until {
                    steps.push(Step::Reopen(addr));
                }
                true
            }
            Phase::Probing { since, established } => {
                if now.saturating_sub(since) < hold {
                    true
                } else if established {
                    steps.push(Step::Recovered(addr));
                    false
                } else {
                    steps.push(Step::Failed(addr));
                    true
                }
            }
        });
        steps
    }
}

#[cfg(test)]
mod tests;
