//! The re-probe schedule of dead paths: pure, time an input (the caller passes `now`, a
//! monotonic duration since any origin).
//!
//! A path judged dead has its subflows closed; nothing then observes it, so it is re-opened
//! (re-probed): a re-probe is short (it fails when no subflow established within
//! [`PROBE_WINDOW`]) and cheap (one join per connection), so they come often while outages
//! are usually short: one every hold time during the first [`FAST_PHASE`] after the path
//! died (a restored path is found within the hold time), then each wait twice the previous,
//! at most `max` (a path that stays dead costs little). A re-probe succeeds when a subflow
//! from the address established and the path was not judged dead again (the caller reports
//! that at once through [`Reprobe::close`]) for the hold time since the re-probe began; then
//! the path is released and the next death starts again from the fast phase.
//!
//! Where the caller can test the path outside the connections ([`Reprobe::testing`]: the
//! in-kernel path manager's endpoint stays out while a plain connection attempt from the
//! address tries the peer), a due re-probe is that test first: only an answered test
//! re-opens the path (the kernel then joins in every connection). A test costs the
//! connections nothing, so during the fast phase one follows another at once, each given
//! [`TEST_WINDOW`] (a restored path is found within about a second); past it, an
//! unanswered test waits as a failed re-probe does.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

/// How long a re-probe's joins have to establish: a join on a working path takes a round
/// trip, and this lets the kernel's one SYN retransmission (after 1 s) in; not more, so that
/// re-probes can come often. At most the hold time.
pub const PROBE_WINDOW: Duration = Duration::from_secs(2);
/// How long a test outside the connections has to be answered: a round trip on any usable
/// path, without the kernel's SYN retransmission (the next test follows at once); under the
/// daemon's tick (1 s), so that the tick after a test began ends it and begins the next.
/// At most the hold time.
pub const TEST_WINDOW: Duration = Duration::from_millis(900);
/// How long after the death re-probes come every hold time before the waits double.
pub const FAST_PHASE: Duration = Duration::from_secs(60);

/// Where a dead path stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its subflows are closed; re-opened (or tested first) at `until`.
    Closed {
        /// When the re-probe is due.
        until: Duration,
    },
    /// Still closed, tested outside the connections since `since` (a connection attempt
    /// from its address): re-opened when that is answered, closed again when not within
    /// [`TEST_WINDOW`].
    Testing {
        /// When the test began.
        since: Duration,
    },
    /// Re-opened at `since`; failed at `since` + [`PROBE_WINDOW`] if nothing established,
    /// else recovered at `since` + hold.
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
    /// Its re-probe (or its test) failed: nothing established within [`PROBE_WINDOW`] (or
    /// answered within [`TEST_WINDOW`]). Close it again with [`Reprobe::close`].
    Failed(IpAddr),
    /// Its re-probe held for the hold time: released, the backoff reset.
    Recovered(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Path {
    phase: Phase,
    /// When it was judged dead (the fast phase runs from then).
    died: Duration,
    /// The last wait past the fast phase (zero: none yet).
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
    /// Re-probes every `hold` during the fast phase, then waits doubling up to `max` (at
    /// least `hold`).
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

    /// How long a re-probe's joins have to establish: [`PROBE_WINDOW`], at most the hold
    /// time.
    #[must_use]
    pub fn window(&self) -> Duration {
        PROBE_WINDOW.min(self.hold)
    }

    /// Where `addr` stands; `None`: not a dead path.
    #[must_use]
    pub fn phase(&self, addr: IpAddr) -> Option<Phase> {
        self.paths.get(&addr).map(|p| p.phase)
    }

    /// How long a test has to be answered: [`TEST_WINDOW`], at most the hold time.
    #[must_use]
    pub fn test_window(&self) -> Duration {
        TEST_WINDOW.min(self.hold)
    }

    /// Re-probes of `addr` so far (0 when not a dead path).
    #[must_use]
    pub fn probes(&self, addr: IpAddr) -> u32 {
        self.paths.get(&addr).map_or(0, |p| p.probes)
    }

    /// The path's subflows were closed at `now` (judged dead, or its re-probe failed):
    /// returns the wait until its re-probe. A new dead path waits the hold time; one closed
    /// while probing waits until the hold time after that re-probe began during the fast
    /// phase (after an unanswered test: none), then twice its last wait, at most `max`;
    /// one already closed keeps its wait.
    pub fn close(&mut self, addr: IpAddr, now: Duration) -> Duration {
        let (hold, max) = (self.hold, self.max);
        let path = self.paths.entry(addr).or_insert(Path {
            phase: Phase::Closed { until: now + hold },
            died: now,
            wait: Duration::ZERO,
            probes: 0,
        });
        let (since, tested) = match path.phase {
            Phase::Closed { until } => return until.saturating_sub(now),
            Phase::Testing { since } => (since, true),
            Phase::Probing { since, .. } => (since, false),
        };
        let until = if now.saturating_sub(path.died) < FAST_PHASE {
            if tested {
                // The next test at once: it costs the connections nothing.
                now
            } else {
                // One re-probe per hold time: the window and the wait together.
                (since + hold).max(now)
            }
        } else {
            path.wait = path.wait.max(hold).saturating_mul(2).min(max);
            now + path.wait
        };
        path.phase = Phase::Closed { until };
        until.saturating_sub(now)
    }

    /// `addr`'s test outside the connections began at `now` (instead of re-opening it).
    pub fn testing(&mut self, addr: IpAddr, now: Duration) {
        if let Some(path) = self.paths.get_mut(&addr) {
            path.phase = Phase::Testing { since: now };
        }
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
        let (hold, window, test_window) = (self.hold, self.window(), self.test_window());
        let mut steps = Vec::new();
        self.paths.retain(|&addr, path| match path.phase {
            Phase::Closed { until } => {
                if now >= until {
                    steps.push(Step::Reopen(addr));
                }
                true
            }
            Phase::Testing { since } => {
                if now.saturating_sub(since) >= test_window {
                    steps.push(Step::Failed(addr));
                }
                true
            }
            Phase::Probing { since, established } => {
                let probed = now.saturating_sub(since);
                if established && probed >= hold {
                    steps.push(Step::Recovered(addr));
                    false
                } else {
                    if !established && probed >= window {
                        steps.push(Step::Failed(addr));
                    }
                    true
                }
            }
        });
        steps
    }
}

#[cfg(test)]
mod tests;
