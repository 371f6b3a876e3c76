//! The decision core: per local address, Healthy / Degraded / Dead from the figures of its
//! subflows over time. Pure: no I/O, no clock (the caller passes `now`, a monotonic
//! duration since any origin).
//!
//! - Each subflow gets a verdict from its own figures: Dead when it made no progress
//!   (`bytes_acked` unchanged) over `dead-rtos` retransmission timeouts (or the telemetry
//!   reported that many RTOs in a row); Degraded, only from fresh evidence (at least
//!   [`MIN_SEGMENTS`] sent since the previous evidence, within [`STALE_EVIDENCE`]: an idle
//!   subflow is unknown, not bad), when its retransmission rate reaches `retrans-percent` in
//!   every interval between evidence over the hold time (at least [`RATE_SPAN`], not
//!   counting its first [`SLOW_START`]: start-up overshoot): loss that persists. A busy path
//!   loses segments too, at its bottleneck queue, but in episodes (one per congestion-window
//!   cycle, when the queue is full) with clean intervals between them; measured on the
//!   failover benchmark's healthy paths, such episodes show 10% to 21% in the interval that
//!   holds one and 0% in most others, so a rate over the whole window judged them lossy. Or
//!   its smoothed RTT exceeds `rtt-factor` times both the path's baseline and the RTT of the
//!   same peer's active subflows from other addresses (queueing a path's own traffic causes
//!   is no degradation: the other paths fill theirs too), each by [`RTT_FLOOR_US`], all
//!   past their [`SLOW_START`] (queues fill unevenly at the start). The
//!   baseline is per (local address, peer address): it follows a lower RTT at once and a
//!   higher one slowly (1/[`BASELINE_DRIFT`] per sample), so a lasting route change is
//!   absorbed and a transient one is not.
//! - An address is Dead (or Degraded) only when enough subflows agree: at least `min-peers`
//!   distinct peers, or `min-share` percent of its subflows coming from at least two peers,
//!   so one bad or hostile peer cannot demote an address for everyone.
//! - Never flapping: a state change at most once per `hold`; a better state only after the
//!   address was continuously judged so for `hold`. A change that would leave no Healthy
//!   address is not made (when all paths are degraded, moving traffic gains nothing).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    fmt,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use mptcpd_plugin::{HealthConfig, PathFigures};

/// Fewest segments sent between two samples for their retransmission rate to count.
pub const MIN_SEGMENTS: u32 = 20;
/// Least RTT excess over the baseline (and over the other paths) that counts as inflation,
/// us: more than a usual bottleneck queue holds (the failover benchmark's tbf holds 50 ms;
/// a busy healthy path fills its queue), far less than a congested cellular path's seconds.
pub const RTT_FLOOR_US: u32 = 100_000;
/// The baseline moves up by 1/this of the gap per sample.
pub const BASELINE_DRIFT: u32 = 64;
/// Evidence older than this is none: the subflow is idle (e.g. a backup), its figures stale.
pub const STALE_EVIDENCE: Duration = Duration::from_secs(3);
/// A subflow's first seconds (and those after it was idle) do not count for its
/// retransmission rate: slow start overshoots the bottleneck queue.
pub const SLOW_START: Duration = Duration::from_secs(2);
/// Least span of the retransmission rate's window: one burst (a telemetry event right after
/// a tick) is not a rate.
pub const RATE_SPAN: Duration = Duration::from_secs(2);

/// An address's (or a subflow's) health, from best to worst (the plugin API's type, which
/// the daemon shows operators).
pub use mptcpd_plugin::PathHealth as Health;

/// The thresholds (the `[health]` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Least time between two changes of an address, and how long it must look better
    /// before it is judged better.
    pub hold: Duration,
    /// Retransmitted segments per 100 sent that make a subflow degraded.
    pub retrans_percent: u32,
    /// Smoothed RTT over the baseline, in percent (300: three times), that makes a subflow
    /// degraded.
    pub rtt_factor_percent: u32,
    /// RTOs without progress that make a subflow dead.
    pub dead_rtos: u32,
    /// Distinct peers whose subflows must agree.
    pub min_peers: u32,
    /// Or: percent of the address's subflows (from at least two peers) that must agree.
    pub min_share_percent: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        HealthConfig::DEFAULT.into()
    }
}

impl From<HealthConfig> for Thresholds {
    fn from(config: HealthConfig) -> Self {
        let HealthConfig {
            hold_secs,
            retrans_percent,
            rtt_percent,
            dead_rtos,
            min_peers,
            min_share_percent,
            // The plugin's re-probe schedule, not the core's judgement.
            reprobe_max_secs: _,
        } = config;
        Self {
            hold: Duration::from_secs(hold_secs.into()),
            retrans_percent,
            rtt_factor_percent: rtt_percent,
            dead_rtos,
            min_peers,
            min_share_percent,
        }
    }
}

/// What the address's subflows showed when a decision was taken (for the log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Subflows of the address seen.
    pub subflows: usize,
    /// Of those, degraded or dead.
    pub bad_subflows: usize,
    /// Of those, dead.
    pub dead_subflows: usize,
    /// Distinct peers with a degraded or dead subflow.
    pub bad_peers: usize,
    /// Highest retransmission rate seen, percent.
    pub worst_retrans_percent: u32,
    /// Highest RTT inflation seen, percent of the baseline.
    pub worst_rtt_percent: u32,
    /// Most RTOs without progress seen.
    pub worst_rtos: u32,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            subflows,
            bad_subflows,
            dead_subflows,
            bad_peers,
            worst_retrans_percent,
            worst_rtt_percent,
            worst_rtos,
        } = self;
        write!(
            f,
            "{bad_subflows}/{subflows} subflows bad ({dead_subflows} dead) across {bad_peers} \
             peers; worst: {worst_retrans_percent}% retransmitted, RTT {worst_rtt_percent}% \
             of baseline, {worst_rtos} RTOs without progress"
        )
    }
}

/// A change of an address's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The local address.
    pub addr: IpAddr,
    /// Its state before.
    pub from: Health,
    /// Its state now.
    pub to: Health,
    /// What caused it.
    pub figures: Figures,
}

/// One subflow's memory.
#[derive(Debug, Clone)]
struct Sub {
    last: PathFigures,
    seen: Duration,
    /// Since when it carries traffic (first seen, or active again after idling).
    active_since: Duration,
    /// The figures at the last evidence (enough sent since the one before), and when.
    mark: (PathFigures, Duration),
    /// Evidence points after slow start, (when, retransmitted percent of the segments sent
    /// since the previous evidence), spanning the hold time: the retransmission rate is the
    /// lowest of them.
    window: VecDeque<(Duration, u32)>,
    /// RTOs since `bytes_acked` last moved.
    stalled_rtos: u32,
    /// `None`: no rate yet.
    retrans_percent: Option<u32>,
    rtt_percent: u32,
}

impl Sub {
    fn fresh(&self, now: Duration) -> bool {
        now.saturating_sub(self.mark.1) <= STALE_EVIDENCE
    }

    /// Fresh and past slow start: its RTT says what its path does, not how its queue and
    /// the others' fill at the start.
    fn settled(&self, now: Duration) -> bool {
        self.fresh(now) && now.saturating_sub(self.active_since) >= SLOW_START
    }
}

/// One address's memory.
#[derive(Debug, Clone, Copy)]
struct Addr {
    state: Health,
    /// When `state` last changed; `None`: never.
    changed: Option<Duration>,
    /// Since when the address is continuously judged better than `state`.
    better_since: Option<Duration>,
}

/// The decision core.
#[derive(Debug, Default)]
pub struct Core {
    thresholds: Thresholds,
    subs: HashMap<(SocketAddr, SocketAddr), Sub>,
    /// RTT baseline per (local address, peer address), us, and when last fed; dropped with
    /// the subflows' staleness (a server meets peers without end).
    baselines: HashMap<(IpAddr, IpAddr), (u32, Duration)>,
    addrs: BTreeMap<IpAddr, Addr>,
}

impl Core {
    /// A core with these thresholds.
    #[must_use]
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            ..Self::default()
        }
    }

    /// New thresholds (a reload); what was learnt is kept.
    pub const fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.thresholds = thresholds;
    }

    /// An address's current state (Healthy when unknown).
    #[must_use]
    pub fn state(&self, addr: IpAddr) -> Health {
        self.addrs
            .get(&addr.to_canonical())
            .map_or(Health::Healthy, |a| a.state)
    }

    /// Sets an address's state at `now` (the plugin's re-probe decided it: a dead path that
    /// held healthy), as a change (the hold time runs from now).
    pub fn set_state(&mut self, addr: IpAddr, state: Health, now: Duration) {
        self.addrs.insert(
            addr.to_canonical(),
            Addr {
                state,
                changed: Some(now),
                better_since: None,
            },
        );
    }

    /// A subflow's figures at `now`.
    pub fn observe(
        &mut self,
        now: Duration,
        local: SocketAddr,
        remote: SocketAddr,
        figures: PathFigures,
    ) {
        let (local, remote) = (canonical(local), canonical(remote));
        let (baseline, fed) = self
            .baselines
            .entry((local.ip(), remote.ip()))
            .or_insert((0, now));
        *fed = now;
        let rtt = figures.srtt_us;
        if rtt > 0 {
            *baseline = if *baseline == 0 || rtt < *baseline {
                rtt
            } else {
                *baseline + (rtt - *baseline) / BASELINE_DRIFT
            };
        }
        let baseline = *baseline;
        let hold = self.thresholds.hold;
        let sub = self.subs.entry((local, remote)).or_insert(Sub {
            last: figures,
            seen: now,
            active_since: now,
            mark: (figures, now),
            window: VecDeque::new(),
            stalled_rtos: 0,
            retrans_percent: None,
            rtt_percent: 100,
        });
        let prev = sub.last;
        if figures.bytes_acked > prev.bytes_acked {
            sub.stalled_rtos = 0;
        } else {
            sub.stalled_rtos = sub
                .stalled_rtos
                .saturating_add(figures.rtos.saturating_sub(prev.rtos));
        }
        let (mark, marked) = sub.mark;
        if figures.segs_out.saturating_sub(mark.segs_out) >= MIN_SEGMENTS {
            if now.saturating_sub(marked) > STALE_EVIDENCE {
                // Active again after idling: starts over (its cwnd does too).
                sub.active_since = now;
                sub.window.clear();
                sub.retrans_percent = None;
            }
            let sent = figures.segs_out.saturating_sub(mark.segs_out);
            let last = percent(
                figures.retransmissions.saturating_sub(mark.retransmissions),
                sent,
            );
            sub.mark = (figures, now);
            if now.saturating_sub(sub.active_since) >= SLOW_START {
                sub.window.push_back((now, last));
            }
            // Keep one point at or before the hold time ago (at least RATE_SPAN: with a
            // shorter hold the span would never be reached): the window's start (its own
            // interval lies before it).
            let span = hold.max(RATE_SPAN);
            while sub
                .window
                .get(1)
                .is_some_and(|&(at, _)| now.saturating_sub(at) >= span)
            {
                sub.window.pop_front();
            }
            if let (Some(&(t0, _)), Some(&(t1, _))) = (sub.window.front(), sub.window.back())
                && t1.saturating_sub(t0) >= RATE_SPAN
            {
                // Lossy in every interval since the window's start (a congestion episode
                // is one interval; a path that turned clean counts as better at once).
                sub.retrans_percent = sub.window.iter().skip(1).map(|&(_, p)| p).min();
            }
            tracing::trace!(
                "path {local} -> {remote} sample at {:.1}: sent {sent} retrans {last}% rtos {} \
                 srtt {} cwnd {} rate {:?}",
                now.as_secs_f32(),
                figures.rtos,
                figures.srtt_us,
                figures.snd_cwnd,
                sub.retrans_percent
            );
        }
        sub.rtt_percent = if baseline == 0 {
            100
        } else {
            percent(rtt, baseline)
        };
        sub.last = figures;
        sub.seen = now;
    }

    /// The telemetry saw a retransmission timeout: `consecutive` in a row (the kernel's own
    /// count, reset by an acknowledgement), which judges a blackhole without waiting for the
    /// next figures.
    pub fn rto(&mut self, local: SocketAddr, remote: SocketAddr, consecutive: u32) {
        if let Some(sub) = self.subs.get_mut(&(canonical(local), canonical(remote))) {
            sub.stalled_rtos = sub.stalled_rtos.max(consecutive);
        }
    }

    /// A subflow's verdict at `now`; `others_rtt`: the lowest RTT of the same peer's
    /// subflows from other addresses with fresh evidence.
    fn verdict(&self, now: Duration, sub: &Sub, baseline: u32, others_rtt: Option<u32>) -> Health {
        let t = self.thresholds;
        if t.dead_rtos > 0 && sub.stalled_rtos >= t.dead_rtos {
            return Health::Dead;
        }
        if !sub.fresh(now) {
            return Health::Healthy;
        }
        let rtt = sub.last.srtt_us;
        let above = |reference: u32| {
            reference > 0
                && percent(rtt, reference) >= t.rtt_factor_percent
                && rtt.saturating_sub(reference) >= RTT_FLOOR_US
        };
        let inflated = t.rtt_factor_percent > 0
            && sub.settled(now)
            && above(baseline)
            && others_rtt.is_some_and(above);
        let lossy =
            t.retrans_percent > 0 && sub.retrans_percent.is_some_and(|p| p >= t.retrans_percent);
        if inflated || lossy {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }

    /// How many paths (local address, peer address) have a baseline (for tests).
    #[must_use]
    pub fn paths(&self) -> usize {
        self.baselines.len()
    }

    /// A subflow closed: it no longer counts.
    pub fn forget(&mut self, local: SocketAddr, remote: SocketAddr) {
        self.subs.remove(&(canonical(local), canonical(remote)));
    }

    /// Judges every address at `now`; returns the changes made. Subflows not observed for
    /// three hold times no longer count (their connection is gone or no longer watched).
    pub fn evaluate(&mut self, now: Duration) -> Vec<Decision> {
        let t = self.thresholds;
        let stale = t.hold.saturating_mul(3);
        self.subs.retain(|_, s| now.saturating_sub(s.seen) <= stale);
        self.baselines
            .retain(|_, &mut (_, fed)| now.saturating_sub(fed) <= stale);
        let judged = self.judge(now);
        for &addr in judged.keys() {
            self.addrs.entry(addr).or_insert(Addr {
                state: Health::Healthy,
                changed: None,
                better_since: None,
            });
        }
        // What each address would become, with the hold time respected.
        let mut wanted = BTreeMap::new();
        for (&addr, a) in &mut self.addrs {
            let (verdict, _) = judged.get(&addr).copied().unwrap_or_default();
            if verdict < a.state {
                let since = *a.better_since.get_or_insert(now);
                if now.saturating_sub(since) < t.hold {
                    continue;
                }
            } else {
                a.better_since = None;
            }
            let held = a.changed.is_some_and(|at| now.saturating_sub(at) < t.hold);
            if verdict != a.state && !held {
                wanted.insert(addr, verdict);
            }
        }
        // A change must leave some address healthy.
        let healthy_after = self
            .addrs
            .iter()
            .filter(|&(addr, a)| wanted.get(addr).copied().unwrap_or(a.state) == Health::Healthy)
            .count();
        let mut decisions = Vec::new();
        for (addr, to) in wanted {
            let Some(a) = self.addrs.get_mut(&addr) else {
                continue;
            };
            if healthy_after == 0 && to > a.state {
                continue;
            }
            decisions.push(Decision {
                addr,
                from: a.state,
                to,
                figures: judged.get(&addr).copied().unwrap_or_default().1,
            });
            a.state = to;
            a.changed = Some(now);
            a.better_since = None;
        }
        decisions
    }

    /// Each address's verdict from its subflows' (with the quorum), and the figures.
    fn judge(&self, now: Duration) -> BTreeMap<IpAddr, (Health, Figures)> {
        let t = self.thresholds;
        let mut per_addr: BTreeMap<IpAddr, (Figures, BTreeSet<IpAddr>, BTreeSet<IpAddr>)> =
            BTreeMap::new();
        // The lowest fresh RTT per (peer, local address): what the other paths show.
        let mut rtts: BTreeMap<(IpAddr, IpAddr), u32> = BTreeMap::new();
        for (&(local, remote), sub) in &self.subs {
            if sub.settled(now) && sub.last.srtt_us > 0 {
                let rtt = rtts.entry((remote.ip(), local.ip())).or_insert(u32::MAX);
                *rtt = (*rtt).min(sub.last.srtt_us);
            }
        }
        for (&(local, remote), sub) in &self.subs {
            let others = rtts
                .range((remote.ip(), IpAddr::from([0u8; 4]))..)
                .take_while(|&(&(peer, _), _)| peer == remote.ip())
                .filter(|&(&(_, addr), _)| addr != local.ip())
                .map(|(_, &rtt)| rtt)
                .min();
            let baseline = self
                .baselines
                .get(&(local.ip(), remote.ip()))
                .map_or(0, |&(b, _)| b);
            let verdict = self.verdict(now, sub, baseline, others);
            let (f, bad_peers, dead_peers) = per_addr.entry(local.ip()).or_default();
            f.subflows += 1;
            f.worst_retrans_percent = f
                .worst_retrans_percent
                .max(sub.retrans_percent.unwrap_or(0));
            f.worst_rtt_percent = f.worst_rtt_percent.max(sub.rtt_percent);
            f.worst_rtos = f.worst_rtos.max(sub.stalled_rtos);
            if verdict >= Health::Degraded {
                f.bad_subflows += 1;
                bad_peers.insert(remote.ip());
            }
            if verdict == Health::Dead {
                f.dead_subflows += 1;
                dead_peers.insert(remote.ip());
            }
        }
        per_addr
            .into_iter()
            .map(|(addr, (mut f, bad_peers, dead_peers))| {
                f.bad_peers = bad_peers.len();
                let agree = |subflows: usize, peers: usize| {
                    let peers_ok = usize::try_from(t.min_peers).is_ok_and(|n| n > 0 && peers >= n);
                    let share_ok = peers >= 2
                        && t.min_share_percent > 0
                        && subflows * 100 >= f.subflows * t.min_share_percent as usize;
                    peers_ok || share_ok
                };
                let verdict = if agree(f.dead_subflows, dead_peers.len()) {
                    Health::Dead
                } else if agree(f.bad_subflows, bad_peers.len()) {
                    Health::Degraded
                } else {
                    Health::Healthy
                };
                (addr, (verdict, f))
            })
            .collect()
    }
}

fn percent(part: u32, whole: u32) -> u32 {
    u32::try_from(u64::from(part) * 100 / u64::from(whole.max(1))).unwrap_or(u32::MAX)
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests;
