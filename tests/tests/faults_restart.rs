//! Fault injection: `kill -9` of the daemon at random points of address churn, then a restart
//! with the same configuration (the default notify flags, `--addr-flags subflow`). After each
//! restart: the endpoints of ours whose address is still on its interface are kept (same ids),
//! those of removed addresses are gone, nothing is added for addresses that came while no
//! daemon ran, there is no duplicate, and the administrator's endpoint is untouched. While the
//! daemon runs, every address added gets an endpoint and every address removed loses it,
//! adopted ones included.
//!
//! 5 rounds in `cargo xtask test`, 50 under `cargo xtask soak`; the seed is printed.
//! Needs root (else `skipped: TEST: REASON`, or a failure under `CI=true`).

use std::{collections::BTreeMap, time::Duration};

use mptcpd_tests::{
    bins,
    daemon::{
        restart_lab::{Change, RestartLab, foreign, ours},
        subject::{Running, Settings, start_ours_with_state},
    },
    faults::Faults,
    kernel_pm::endpoints::Entry,
    skip,
};

/// Addresses the churn adds and removes: with the foreign endpoint, at most 7 endpoints
/// (the kernel holds 8).
const POOL: [&str; 6] = [
    "198.51.100.1",
    "198.51.100.2",
    "198.51.100.3",
    "203.0.113.1",
    "2001:db8::1",
    "2001:db8::2",
];

const SETTINGS: Settings<'static> = Settings {
    addr_flags: Some("subflow"),
    notify_flags: None,
};

/// The test's view of the namespace: which addresses are on which interface, and which of
/// them must have an endpoint of ours.
#[derive(Debug, Default)]
struct Model {
    live: BTreeMap<&'static str, &'static str>,
    tracked: BTreeMap<&'static str, &'static str>,
}

impl Model {
    /// Adds or removes `count` addresses at random in one go; `running`: the daemon sees it
    /// happen. Returns what changed.
    fn churn(
        &mut self,
        lab: &RestartLab,
        rng: &mut fastrand::Rng,
        count: usize,
        running: bool,
    ) -> Vec<String> {
        let mut changes = Vec::new();
        for _ in 0..count {
            let addr = POOL[rng.usize(..POOL.len())];
            if let Some(dev) = self.live.remove(addr) {
                self.tracked.remove(addr);
                changes.push(Change::Del(addr, dev));
            } else {
                let dev = lab.devs[rng.usize(..lab.devs.len())];
                self.live.insert(addr, dev);
                if running {
                    self.tracked.insert(addr, dev);
                }
                changes.push(Change::Add(addr, dev));
            }
        }
        lab.change(&changes).unwrap();
        changes.iter().map(|c| format!("{c:?}")).collect()
    }

    fn expected(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .tracked
            .iter()
            .map(|(addr, dev)| ours(addr, dev))
            .collect();
        entries.push(foreign());
        entries
    }

    /// Whether `entry` is an endpoint of ours for an address still on its interface.
    fn keeps(&self, entry: &Entry) -> bool {
        *entry == foreign()
            || self
                .live
                .get(entry.addr.as_str())
                .is_some_and(|dev| entry.dev.as_deref() == Some(*dev))
    }
}

fn start(lab: &RestartLab, state: &std::path::Path) -> Running {
    start_ours_with_state(&bins::path("mptcpd").unwrap(), &lab.ns, SETTINGS, state).unwrap()
}

#[test]
fn faults_restart_kill_9_during_address_churn() {
    const TEST: &str = "faults_restart_kill_9_during_address_churn";
    if !skip::require_root(TEST) {
        return;
    }
    let faults = Faults::new(TEST);
    let mut rng = faults.rng();
    let lab = RestartLab::new("mptcpd-t-frestart").unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let mut daemon = start(&lab, state.path());
    let mut history = Vec::new();
    for round in 0..faults.rounds(5, 50) {
        let count = rng.usize(1..=6);
        for change in model.churn(&lab, &mut rng, count, true) {
            history.push(format!("round {round}: {change}"));
        }
        // Sometimes the kill comes after convergence, mostly somewhere in the middle of the
        // work (a random pause spreads the point over it).
        if rng.u8(..4) == 0 {
            lab.wait_for(&format!("round {round}: convergence"), &model.expected())
                .unwrap();
        } else {
            std::thread::sleep(Duration::from_micros(rng.u64(..2_000)));
        }
        // Stopped first, so that the table read is the one the daemon dies with.
        daemon.freeze().unwrap();
        let at_kill = lab.endpoints().unwrap();
        daemon.into_daemon().kill().unwrap();
        let count = rng.usize(0..=3);
        for change in model.churn(&lab, &mut rng, count, false) {
            history.push(format!("round {round} (down): {change}"));
        }

        daemon = start(&lab, state.path());
        let after = lab.endpoints().unwrap();
        let kept: BTreeMap<u8, Entry> = at_kill
            .into_iter()
            .filter(|(_, entry)| model.keeps(entry))
            .collect();
        assert_eq!(
            after,
            kept,
            "seed {}, round {round}: after the restart\nhistory:\n{}\nlog:\n{}",
            faults.seed(),
            history.join("\n"),
            daemon.log()
        );
        model.tracked = kept
            .values()
            .filter(|entry| **entry != foreign())
            .filter_map(|entry| model.live.get_key_value(entry.addr.as_str()))
            .map(|(addr, dev)| (*addr, *dev))
            .collect();
    }
    // The adopted endpoints follow their addresses like the others.
    for addr in POOL {
        if let Some(dev) = model.live.remove(addr) {
            lab.del(addr, dev).unwrap();
            model.tracked.remove(addr);
        }
    }
    lab.wait_for("every address removed", &[foreign()]).unwrap();
    let (status, log) = daemon.into_daemon().stop().unwrap();
    assert!(status.success(), "{log}");
    lab.wait_for("the administrator's endpoint only", &[foreign()])
        .unwrap();
}
