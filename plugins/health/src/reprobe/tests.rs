//! The schedule with time as input: first re-probe after the hold time, doubling on each
//! failure up to the cap, reset after a re-probe that held.

use std::{net::IpAddr, time::Duration};

use super::{Phase, Reprobe, Step};

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
fn each_failed_reprobe_doubles_the_wait_up_to_the_cap() {
    let mut r = Reprobe::new(HOLD, secs(60));
    r.close(addr(), secs(0));
    // Re-opened at 10; fails at 20 (nothing established in 10 s): waits 20 -> 40; fails at
    // 50: waits 40 -> 90; fails at 100: waits 60 (cap) -> 160; ...
    assert_eq!(fail_until(&mut r, 0, 300), [10, 40, 90, 160, 230, 300]);
    assert_eq!(r.probes(addr()), 6);
}

#[test]
fn a_reprobe_that_holds_resets_the_backoff() {
    let mut r = Reprobe::new(HOLD, secs(300));
    r.close(addr(), secs(0));
    assert_eq!(fail_until(&mut r, 0, 40), [10, 40]);
    // The second re-probe's join works and nothing dies for the hold time.
    r.established(addr());
    assert_eq!(r.due(secs(49)), []);
    assert_eq!(r.due(secs(50)), [Step::Recovered(addr())]);
    assert_eq!(r.phase(addr()), None, "released");
    // Dead again later: from the hold time again, not 40 s.
    assert_eq!(r.close(addr(), secs(100)), HOLD);
}

#[test]
fn dying_again_while_probing_counts_as_a_failure() {
    let mut r = Reprobe::new(HOLD, secs(300));
    r.close(addr(), secs(0));
    assert_eq!(r.due(secs(10)), [Step::Reopen(addr())]);
    r.reopened(addr(), secs(10));
    r.established(addr());
    // Judged dead again before the hold time is over.
    assert_eq!(r.close(addr(), secs(15)), secs(20));
    assert_eq!(r.phase(addr()), Some(Phase::Closed { until: secs(35) }));
}

#[test]
fn a_cap_below_the_hold_time_is_the_hold_time() {
    let mut r = Reprobe::new(HOLD, secs(1));
    r.close(addr(), secs(0));
    assert_eq!(fail_until(&mut r, 0, 50), [10, 30, 50]);
}

#[test]
fn a_reloaded_schedule_applies_to_the_next_wait() {
    let mut r = Reprobe::new(HOLD, secs(300));
    r.set_schedule(secs(2), secs(4));
    assert_eq!(r.close(addr(), secs(0)), secs(2));
    // Re-opened at 2, failed at 4 (2 s hold): waits 4 (the new cap) -> 8; fails at 10 -> 14.
    assert_eq!(fail_until(&mut r, 0, 14), [2, 8, 14]);
}
