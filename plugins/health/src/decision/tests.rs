//! The core against telemetry sequences: the figures a subflow's counters show second by
//! second on a healthy, lossy, slow or blackholed path.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use mptcpd_plugin::PathFigures;

use super::{Core, Decision, Health, Thresholds};

const A: &str = "192.0.2.1";
const B: &str = "198.51.100.1";

fn gap(from: Duration, to: Duration) -> Duration {
    to.checked_sub(from).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One subflow's cumulative counters.
#[derive(Clone, Copy)]
struct Flow {
    local: SocketAddr,
    remote: SocketAddr,
    figures: PathFigures,
}

/// What a path does to a subflow during one second.
#[derive(Clone, Copy)]
enum Path {
    /// 100 segments, none retransmitted, 10 ms.
    Healthy,
    /// 100 segments, `pct` of them retransmitted.
    Lossy(u32),
    /// RTT of `ms`.
    Slow(u32),
    /// Nothing acknowledged, one RTO.
    Blackholed,
    /// Busy: 100 segments, its own queue's RTT of `ms`.
    Queued(u32),
    /// Nothing sent (a backup subflow).
    Idle,
}

impl Flow {
    fn new(local: &str, peer: u8, port: u16) -> Self {
        Self {
            local: SocketAddr::new(ip(local), port),
            remote: SocketAddr::new(IpAddr::from([203, 0, 113, peer]), 443),
            figures: PathFigures::new(10_000, 1_000, 10_000, 10, 0, 0, 0, 0),
        }
    }

    fn step(&mut self, path: Path) -> PathFigures {
        let f = &mut self.figures;
        match path {
            Path::Healthy | Path::Slow(_) | Path::Queued(_) => {
                f.segs_out += 100;
                f.bytes_acked += 100_000;
                f.srtt_us = match path {
                    Path::Slow(ms) | Path::Queued(ms) => ms * 1000,
                    _ => 10_000,
                };
            }
            Path::Idle => {}
            Path::Lossy(pct) => {
                f.segs_out += 100;
                f.retransmissions += pct;
                f.bytes_acked += 100_000;
                f.srtt_us = 10_000;
            }
            Path::Blackholed => {
                f.segs_out += 1;
                f.retransmissions += 1;
                f.rtos += 1;
            }
        }
        *f
    }
}

/// Subflows from A and B to several peers, fed one sample a second.
struct Run {
    core: Core,
    now: Duration,
    a: Vec<Flow>,
    b: Vec<Flow>,
    decisions: Vec<(Duration, Decision)>,
}

impl Run {
    fn new(peers: u8) -> Self {
        Self::with(peers, Thresholds::default())
    }

    fn with(peers: u8, thresholds: Thresholds) -> Self {
        Self {
            core: Core::new(thresholds),
            now: Duration::ZERO,
            a: (1..=peers).map(|p| Flow::new(A, p, 40_000)).collect(),
            b: (1..=peers).map(|p| Flow::new(B, p, 40_001)).collect(),
            decisions: Vec::new(),
        }
    }

    /// One second: A's subflows on `a`, B's on what `b` says for each peer (1-based).
    fn second(&mut self, a: Path, b: impl Fn(u8) -> Path) {
        self.now += Duration::from_secs(1);
        for flow in &mut self.a {
            let figures = flow.step(a);
            self.core
                .observe(self.now, flow.local, flow.remote, figures);
        }
        for (i, flow) in self.b.iter_mut().enumerate() {
            let figures = flow.step(b(u8::try_from(i).unwrap() + 1));
            self.core
                .observe(self.now, flow.local, flow.remote, figures);
        }
        let now = self.now;
        self.decisions
            .extend(self.core.evaluate(now).into_iter().map(|d| (now, d)));
    }

    fn seconds(&mut self, n: u32, a: Path, b: impl Fn(u8) -> Path + Copy) {
        for _ in 0..n {
            self.second(a, b);
        }
    }

    fn changes(&self) -> Vec<(IpAddr, Health, Health)> {
        self.decisions
            .iter()
            .map(|(_, d)| (d.addr, d.from, d.to))
            .collect()
    }
}

#[test]
fn a_blackholed_path_goes_dead() {
    let mut run = Run::new(4);
    run.seconds(5, Path::Healthy, |_| Path::Healthy);
    assert_eq!(run.changes(), []);
    run.seconds(5, Path::Healthy, |_| Path::Blackholed);
    assert_eq!(run.changes(), [(ip(B), Health::Healthy, Health::Dead)]);
    let (at, d) = run.decisions[0];
    // Two RTOs without progress (one a second here).
    assert_eq!(at, Duration::from_secs(7));
    assert_eq!((d.figures.dead_subflows, d.figures.worst_rtos), (4, 2));
    assert_eq!(run.core.state(ip(A)), Health::Healthy);
}

#[test]
fn a_lossy_path_is_degraded_across_enough_peers() {
    let mut run = Run::new(4);
    run.seconds(3, Path::Healthy, |_| Path::Healthy);
    run.seconds(3, Path::Healthy, |p| {
        if p <= 3 {
            Path::Lossy(20)
        } else {
            Path::Healthy
        }
    });
    assert_eq!(run.changes(), [(ip(B), Health::Healthy, Health::Degraded)]);
    let d = run.decisions[0].1;
    assert_eq!(
        (d.figures.bad_peers, d.figures.worst_retrans_percent),
        (3, 20)
    );
}

#[test]
fn a_share_of_subflows_from_two_peers_is_enough() {
    let mut run = Run::new(2);
    // After the subflows' slow start.
    run.seconds(5, Path::Healthy, |_| Path::Lossy(30));
    assert_eq!(run.changes(), [(ip(B), Health::Healthy, Health::Degraded)]);
}

#[test]
fn one_hostile_peer_demotes_nothing() {
    let mut run = Run::new(4);
    run.seconds(30, Path::Healthy, |p| {
        if p == 1 {
            Path::Lossy(50)
        } else {
            Path::Healthy
        }
    });
    run.seconds(30, Path::Healthy, |p| {
        if p == 1 {
            Path::Blackholed
        } else {
            Path::Healthy
        }
    });
    assert_eq!(run.changes(), []);
    // Nor when it is the address's only peer.
    let mut run = Run::new(1);
    run.seconds(30, Path::Healthy, |_| Path::Lossy(50));
    assert_eq!(run.changes(), []);
}

#[test]
fn rtt_inflation_against_the_paths_own_baseline_degrades() {
    let mut run = Run::new(3);
    run.seconds(5, Path::Healthy, |_| Path::Healthy);
    run.seconds(2, Path::Healthy, |_| Path::Slow(25));
    assert_eq!(
        run.changes(),
        [],
        "2.5 times the baseline is below the factor"
    );
    run.seconds(2, Path::Healthy, |_| Path::Slow(1000));
    assert_eq!(run.changes(), [(ip(B), Health::Healthy, Health::Degraded)]);
}

#[test]
fn an_oscillating_path_changes_at_most_once_per_hold_time() {
    let hold = Duration::from_secs(10);
    let mut run = Run::with(
        4,
        Thresholds {
            hold,
            ..Thresholds::default()
        },
    );
    for s in 0..120 {
        let b = if s % 2 == 0 {
            Path::Lossy(15)
        } else {
            Path::Lossy(5)
        };
        run.second(Path::Healthy, |_| b);
    }
    assert!(
        !run.decisions.is_empty(),
        "the path was degraded half the time"
    );
    for pair in run.decisions.windows(2) {
        assert!(gap(pair[0].0, pair[1].0) >= hold, "{:?}", run.decisions);
    }
    // Never judged healthy for a whole hold time: demoted once, never restored.
    assert_eq!(run.changes(), [(ip(B), Health::Healthy, Health::Degraded)]);
}

#[test]
fn when_every_path_is_degraded_nothing_changes() {
    let mut run = Run::new(4);
    run.seconds(30, Path::Lossy(30), |_| Path::Lossy(30));
    run.seconds(30, Path::Blackholed, |_| Path::Blackholed);
    assert_eq!(run.changes(), []);
}

#[test]
fn the_last_healthy_path_is_not_demoted() {
    let mut run = Run::new(4);
    run.seconds(5, Path::Healthy, |_| Path::Lossy(30));
    assert_eq!(run.changes(), [(ip(B), Health::Healthy, Health::Degraded)]);
    run.seconds(30, Path::Lossy(30), |_| Path::Lossy(30));
    assert_eq!(run.core.state(ip(A)), Health::Healthy);
    assert_eq!(run.changes().len(), 1);
}

#[test]
fn recovery_only_after_healthy_for_the_hold_time() {
    let hold = Duration::from_secs(10);
    let mut run = Run::with(
        4,
        Thresholds {
            hold,
            ..Thresholds::default()
        },
    );
    run.seconds(20, Path::Healthy, |_| Path::Lossy(30));
    assert_eq!(run.changes(), [(ip(B), Health::Healthy, Health::Degraded)]);
    let healthy_from = run.now + Duration::from_secs(1);
    run.seconds(9, Path::Healthy, |_| Path::Healthy);
    assert_eq!(
        run.changes().len(),
        1,
        "not yet: healthy for less than the hold time"
    );
    run.seconds(2, Path::Healthy, |_| Path::Healthy);
    assert_eq!(
        run.changes(),
        [
            (ip(B), Health::Healthy, Health::Degraded),
            (ip(B), Health::Degraded, Health::Healthy)
        ]
    );
    assert_eq!(gap(healthy_from, run.decisions[1].0), hold);
}

#[test]
fn a_dead_path_recovers_through_degraded_or_healthy_after_the_hold_time() {
    let mut run = Run::new(4);
    run.seconds(10, Path::Healthy, |_| Path::Blackholed);
    assert_eq!(run.core.state(ip(B)), Health::Dead);
    run.seconds(30, Path::Healthy, |_| Path::Healthy);
    assert_eq!(run.core.state(ip(B)), Health::Healthy);
}

#[test]
fn closed_subflows_stop_counting() {
    let mut run = Run::new(4);
    run.seconds(5, Path::Healthy, |_| Path::Lossy(30));
    assert_eq!(run.core.state(ip(B)), Health::Degraded);
    for flow in std::mem::take(&mut run.b) {
        run.core.forget(flow.local, flow.remote);
    }
    run.seconds(11, Path::Healthy, |_| Path::Healthy);
    assert_eq!(run.core.state(ip(B)), Health::Healthy);
    // B's baselines go once not fed for three hold times; A's stay.
    assert_eq!(run.core.paths(), 8);
    run.seconds(20, Path::Healthy, |_| Path::Healthy);
    assert_eq!(run.core.paths(), 4);
}

#[test]
fn a_path_flipping_at_random_changes_at_most_once_per_hold_time() {
    let hold = Duration::from_secs(10);
    let mut run = Run::with(
        4,
        Thresholds {
            hold,
            ..Thresholds::default()
        },
    );
    // Runs of 1 to 16 bad or good seconds, from a fixed linear congruential sequence.
    let mut x: u32 = 12_345;
    let mut bad = false;
    for _ in 0..60 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bad = !bad;
        let b = if bad { Path::Lossy(40) } else { Path::Healthy };
        run.seconds((x >> 16) % 16 + 1, Path::Healthy, |_| b);
    }
    assert!(run.decisions.len() >= 4, "{:?}", run.changes());
    for pair in run.decisions.windows(2) {
        assert!(gap(pair[0].0, pair[1].0) >= hold, "{:?}", run.decisions);
    }
}

#[test]
fn paths_busy_with_their_own_queues_are_not_degraded() {
    let mut run = Run::new(4);
    run.seconds(5, Path::Healthy, |_| Path::Healthy);
    // Both paths' queues fill under their own traffic: 6 to 9 times the idle RTT.
    run.seconds(30, Path::Queued(60), |p| {
        Path::Queued(60 + u32::from(p) * 10)
    });
    assert_eq!(run.changes(), []);
}

#[test]
fn a_start_up_burst_degrades_nothing() {
    let mut run = Run::new(4);
    // Slow start overshoots the queue: half retransmitted in the first seconds.
    run.seconds(2, Path::Healthy, |_| Path::Lossy(50));
    run.seconds(30, Path::Healthy, |_| Path::Healthy);
    assert_eq!(run.changes(), []);
}

#[test]
fn an_idle_backup_path_recovers_after_the_hold_time() {
    let hold = Duration::from_secs(10);
    let mut run = Run::new(4);
    run.seconds(5, Path::Healthy, |_| Path::Lossy(30));
    assert_eq!(run.changes(), [(ip(B), Health::Healthy, Health::Degraded)]);
    // Backup now: it sends nothing, its last figures are no evidence.
    let idle_from = run.now;
    run.seconds(30, Path::Healthy, |_| Path::Idle);
    assert_eq!(
        run.changes(),
        [
            (ip(B), Health::Healthy, Health::Degraded),
            (ip(B), Health::Degraded, Health::Healthy)
        ]
    );
    let restored = gap(idle_from, run.decisions[1].0);
    assert!(
        restored <= hold + super::STALE_EVIDENCE + Duration::from_secs(1),
        "{restored:?}"
    );
}

#[test]
fn consecutive_rtos_reported_at_once_make_a_path_dead() {
    let mut run = Run::new(4);
    run.seconds(5, Path::Healthy, |_| Path::Healthy);
    let now = run.now + Duration::from_millis(500);
    for flow in &run.b {
        run.core.rto(flow.local, flow.remote, 3);
    }
    let decisions = run.core.evaluate(now);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!((decisions[0].addr, decisions[0].to), (ip(B), Health::Dead));
}

#[test]
fn queues_filling_unevenly_at_the_start_degrade_nothing() {
    let mut run = Run::new(4);
    // New subflows: B's queue fills first, A's a second later.
    run.seconds(1, Path::Healthy, |_| Path::Healthy);
    run.seconds(1, Path::Queued(10), |_| Path::Queued(60));
    run.seconds(30, Path::Queued(60), |_| Path::Queued(60));
    assert_eq!(run.changes(), []);
}

#[test]
fn a_burst_just_after_slow_start_is_not_a_rate() {
    let mut run = Run::new(4);
    run.seconds(3, Path::Healthy, |_| Path::Healthy);
    // A retransmission-burst event half a second after the first counted sample.
    let now = run.now + Duration::from_millis(500);
    for flow in &mut run.b {
        flow.figures.segs_out += 40;
        flow.figures.retransmissions += 20;
        run.core.observe(now, flow.local, flow.remote, flow.figures);
    }
    assert_eq!(run.core.evaluate(now), []);
}
