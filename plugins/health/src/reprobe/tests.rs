//! The schedule with time as input: first re-probe after the hold time, then one every hold
//! time during the fast phase, then doubling on each failure up to the cap; reset after a
//! re-probe that held.

use std::{net::IpAddr, time::Duration};

use super::{FAST_PHASE, PROBE_WINDOW, Phase, Reprobe, Step, TEST_WINDOW};

const HOLD: Duration = Duration::from_secs(10);

fn addr() -> IpAddr {
    "198.51.100.1".parse().unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Runs the schedule second by second until `until`, re-opening what is due and failing
/// every re-probe; returns the times of the re-openings.
fn fail_until(r: &mut Reprobe, from: u64, until: u64) -> Vec<u64> {
    let mut reopened = Vec::new();
    for t in from..=until {
        for step in r.due(secs(t)) {
            match step {
                Step::Reopen(a) => {
                    r.reopened(a, secs(t));
                    reopened.push(t);
                }
                Step::Failed(a) => {
                    r.close(a, secs(t));
                }
                Step::Recovered(_) => panic!("nothing established"),
            }
        }
    }
    reopened
}

#[test]
fn the_first_reprobe_comes_after_the_hold_time() {
    let mut r = Reprobe::new(HOLD, secs(300));
    assert_eq!(r.close(addr(), secs(5)), HOLD);
    assert_eq!(r.due(secs(14)), []);
    assert_eq!(r.due(secs(15)), [Step::Reopen(addr())]);
    // Closing again while still closed changes nothing.
    assert_eq!(r.close(addr(), secs(15)), Duration::ZERO);
}

#[test]
fn a_reprobe_fails_after_the_probe_window_not_the_hold_time() {
    let mut r = Reprobe::new(HOLD, secs(300));
    r.close(addr(), secs(0));
    assert_eq!(r.due(secs(10)), [Step::Reopen(addr())]);
    r.reopened(addr(), secs(10));
    assert_eq!(
        r.due(secs(10) + PROBE_WINDOW.saturating_sub(Duration::from_millis(1))),
        []
    );
    assert_eq!(r.due(secs(10) + PROBE_WINDOW), [Step::Failed(addr())]);
}

#[test]
fn reprobes_come_every_hold_time_in_the_fast_phase_then_double_up_to_the_cap() {
    let mut r = Reprobe::new(HOLD, secs(60));
    r.close(addr(), secs(0));
    assert_eq!(FAST_PHASE, secs(60));
    // Every 10 s until 60 s after the death (each fails 2 s in); the one failing at 62:
    // waits 20 -> 82; fails at 84: 40 -> 124; fails at 126: 60 (cap) -> 186; ...
    assert_eq!(
        fail_until(&mut r, 0, 300),
        [10, 20, 30, 40, 50, 60, 82, 124, 186, 248]
    );
    assert_eq!(r.probes(addr()), 10);
}

#[test]
fn a_path_restored_in_the_fast_phase_is_reprobed_within_the_hold_time() {
    for hold in [3, 10] {
        let mut r = Reprobe::new(secs(hold), secs(300));
        r.close(addr(), secs(0));
        let reopened = fail_until(&mut r, 0, 60);
        // Whenever in the first minute the path comes back, a re-probe's join starts at
        // most the hold time later.
        for restored in 0..60 {
            let next = reopened.iter().find(|&&t| t >= restored).copied();
            assert!(
                next.is_some_and(|t| t - restored <= hold),
                "hold {hold}: restored at {restored}, re-probes at {reopened:?}"
            );
        }
    }
}

#[test]
fn a_reprobe_that_holds_resets_the_backoff() {
    let mut r = Reprobe::new(HOLD, secs(300));
    r.close(addr(), secs(0));
    assert_eq!(fail_until(&mut r, 0, 83), [10, 20, 30, 40, 50, 60, 82]);
    // That re-probe's join works and nothing dies for the hold time.
    r.established(addr());
    assert_eq!(r.due(secs(91)), []);
    assert_eq!(r.due(secs(92)), [Step::Recovered(addr())]);
    assert_eq!(r.phase(addr()), None, "released");
    // Dead again later: the hold time and the fast phase again, not 40 s.
    assert_eq!(r.close(addr(), secs(200)), HOLD);
    assert_eq!(fail_until(&mut r, 200, 230), [210, 220, 230]);
}

#[test]
fn dying_again_while_probing_counts_as_a_failure() {
    let mut r = Reprobe::new(HOLD, secs(300));
    r.close(addr(), secs(0));
    assert_eq!(r.due(secs(10)), [Step::Reopen(addr())]);
    r.reopened(addr(), secs(10));
    r.established(addr());
    // Judged dead again before the hold time is over: the next re-probe a hold time after
    // this one began.
    assert_eq!(r.close(addr(), secs(15)), secs(5));
    assert_eq!(r.phase(addr()), Some(Phase::Closed { until: secs(20) }));
}

#[test]
fn a_cap_below_the_hold_time_is_the_hold_time() {
    let mut r = Reprobe::new(HOLD, secs(1));
    r.close(addr(), secs(0));
    assert_eq!(
        fail_until(&mut r, 0, 100),
        [10, 20, 30, 40, 50, 60, 72, 84, 96]
    );
}

#[test]
fn a_hold_time_below_the_probe_window_is_the_window() {
    let mut r = Reprobe::new(secs(1), secs(300));
    r.close(addr(), secs(0));
    // Re-opened at 1, failed at 2 (1 s window), re-opened at the next second.
    assert_eq!(fail_until(&mut r, 0, 6), [1, 3, 5]);
}

#[test]
fn a_reloaded_schedule_applies_to_the_next_wait() {
    let mut r = Reprobe::new(HOLD, secs(300));
    r.set_schedule(secs(4), secs(8));
    assert_eq!(r.close(addr(), secs(0)), secs(4));
    // Every 4 s (each fails 2 s in) until the fast phase is over, then 8 (the new cap).
    assert_eq!(
        fail_until(&mut r, 0, 80),
        [
            4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 70, 80
        ]
    );
}

#[test]
fn an_unanswered_test_fails_after_the_test_window_and_the_next_follows_at_once() {
    let mut r = Reprobe::new(HOLD, secs(300));
    r.close(addr(), secs(0));
    assert_eq!(r.due(secs(10)), [Step::Reopen(addr())]);
    r.testing(addr(), secs(10));
    assert_eq!(r.phase(addr()), Some(Phase::Testing { since: secs(10) }));
    // Not a re-probe: nothing re-opened, nothing counted as established.
    r.established(addr());
    assert_eq!(r.probes(addr()), 0);
    assert_eq!(
        r.due(secs(10) + TEST_WINDOW.saturating_sub(Duration::from_millis(1))),
        []
    );
    assert_eq!(r.due(secs(10) + TEST_WINDOW), [Step::Failed(addr())]);
    // It cost the connections nothing: the next test at once.
    assert_eq!(r.close(addr(), secs(10) + TEST_WINDOW), Duration::ZERO);
    assert_eq!(r.due(secs(10) + TEST_WINDOW), [Step::Reopen(addr())]);
}

#[test]
fn an_answered_test_reopens_and_the_reprobe_runs_as_before() {
    let mut r = Reprobe::new(HOLD, secs(300));
    r.close(addr(), secs(0));
    assert_eq!(r.due(secs(10)), [Step::Reopen(addr())]);
    r.testing(addr(), secs(10));
    // Answered a second later: re-opened then.
    r.reopened(addr(), secs(11));
    assert_eq!(r.probes(addr()), 1);
    r.established(addr());
    assert_eq!(r.due(secs(20)), []);
    assert_eq!(r.due(secs(21)), [Step::Recovered(addr())]);
    assert_eq!(r.phase(addr()), None);
}

#[test]
fn tests_come_back_to_back_in_the_fast_phase_then_wait_doubling() {
    let mut r = Reprobe::new(HOLD, secs(80));
    r.close(addr(), secs(0));
    let mut began = Vec::new();
    for t in 1..=400 {
        // As the plugin does: what an unanswered test makes due is done at once.
        loop {
            let steps = r.due(secs(t));
            if steps.is_empty() {
                break;
            }
            for step in steps {
                match step {
                    Step::Reopen(a) => {
                        r.testing(a, secs(t));
                        began.push(t);
                    }
                    Step::Failed(a) => {
                        r.close(a, secs(t));
                    }
                    Step::Recovered(_) => panic!("never answered"),
                }
            }
        }
    }
    // One a second from the hold time on (each given 0.9 s) until the minute is over; then
    // 20, 40, 80, 80 s after each failure (the cap 80 s).
    let mut expected: Vec<u64> = (10..=59).collect();
    expected.extend([80, 121, 202, 283, 364]);
    assert_eq!(began, expected);
}
