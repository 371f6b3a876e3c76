//! The daemon's state across crashes, against the real kernel: endpoints adopted after a
//! `kill -9`, one daemon per namespace, the state directory, and what identifies the
//! endpoints and the state file.
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::{collections::BTreeMap, os::unix::fs::MetadataExt as _, path::Path};

use mptcpd::plugins::{
    NetnsId,
    api::{Endpoint, EndpointFlags},
    state_file::{Origin, Record, RecordState, StateFile},
};
use mptcpd_tests::{
    bins,
    daemon::{
        restart_lab::{RestartLab, foreign},
        subject::{Running, Settings, start_ours_with_state},
    },
    kernel_pm::endpoints::{self, Entry},
    net::netns::NetNs,
    skip,
};

/// The settings of issue 9's scenario: endpoints for subflows, the default notify flags
/// (addresses present at start-up are not reported).
const SETTINGS: Settings<'static> = Settings {
    addr_flags: Some("subflow"),
    notify_flags: None,
};

fn start(lab: &RestartLab, state: &Path) -> Running {
    start_ours_with_state(&bins::path("mptcpd").unwrap(), &lab.ns, SETTINGS, state).unwrap()
}

fn add(lab: &RestartLab, addr: &str) {
    lab.add(addr, "rl0").unwrap();
}

fn del(lab: &RestartLab, addr: &str) {
    lab.del(addr, "rl0").unwrap();
}

fn ours(addr: &str) -> Entry {
    mptcpd_tests::daemon::restart_lab::ours(addr, "rl0")
}

fn wait_for(lab: &RestartLab, what: &str, entries: &[Entry]) -> BTreeMap<u8, Entry> {
    lab.wait_for(what, entries).unwrap()
}

fn netns_inode(ns: &NetNs) -> u64 {
    std::fs::metadata(format!("/run/netns/{}", ns.name()))
        .unwrap()
        .ino()
}

#[test]
fn a_crash_restart_keeps_the_endpoints_of_live_addresses() {
    if !skip::require_root("a_crash_restart_keeps_the_endpoints_of_live_addresses") {
        return;
    }
    let lab = RestartLab::new("mptcpd-t-st-crash").unwrap();
    let state = tempfile::tempdir().unwrap();
    let first = start(&lab, state.path());
    for addr in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        add(&lab, addr);
    }
    let before = wait_for(
        &lab,
        "three endpoints",
        &[
            ours("198.51.100.1"),
            ours("198.51.100.2"),
            ours("198.51.100.3"),
            foreign(),
        ],
    );
    first.into_daemon().kill().unwrap();
    // While no daemon runs, one address goes.
    del(&lab, "198.51.100.2");

    // Restarted with the same configuration: its addresses are now "existing" ones.
    let second = start(&lab, state.path());
    let after = lab.endpoints().unwrap();
    let kept: BTreeMap<u8, Entry> = before
        .into_iter()
        .filter(|(_, e)| e.addr != "198.51.100.2")
        .collect();
    assert_eq!(
        after,
        kept,
        "those of live addresses kept (same ids), the other removed:\n{}",
        second.log()
    );
    // A later removal withdraws an adopted endpoint; a new address still gets one.
    del(&lab, "198.51.100.1");
    add(&lab, "198.51.100.4");
    wait_for(
        &lab,
        "the adopted endpoint withdrawn, a new one added",
        &[ours("198.51.100.3"), ours("198.51.100.4"), foreign()],
    );
    let (status, log) = second.into_daemon().stop().unwrap();
    assert!(status.success(), "{log}");
    wait_for(&lab, "ours removed at shutdown", &[foreign()]);
}

#[test]
fn a_second_daemon_in_the_namespace_is_refused_naming_the_first() {
    if !skip::require_root("a_second_daemon_in_the_namespace_is_refused_naming_the_first") {
        return;
    }
    let lab = RestartLab::new("mptcpd-t-st-lock").unwrap();
    let state = tempfile::tempdir().unwrap();
    let first = start(&lab, state.path());
    let inode = netns_inode(&lab.ns);
    add(&lab, "198.51.100.1");
    wait_for(&lab, "an endpoint", &[ours("198.51.100.1"), foreign()]);
    // Its files are in its state directory, named by the namespace; none in /run/mptcpd.
    let file = state.path().join(format!("endpoints.net{inode}"));
    let text = std::fs::read_to_string(&file).unwrap();
    // Recorded by its intent (`adding`) or as added: both are adopted by the next run.
    assert!(text.contains(" 198.51.100.1 "), "{text}");
    assert!(
        state
            .path()
            .join(format!("mptcpd.net{inode}.lock"))
            .exists()
    );
    assert!(!Path::new(&format!("/run/mptcpd/endpoints.net{inode}")).exists());
    assert!(!Path::new(&format!("/run/mptcpd/mptcpd.net{inode}.lock")).exists());

    let refused = match start_ours_with_state(
        &bins::path("mptcpd").unwrap(),
        &lab.ns,
        SETTINGS,
        state.path(),
    ) {
        Ok(second) => panic!("a second daemon runs:\n{}", second.log()),
        Err(e) => format!("{e:#}"),
    };
    assert!(refused.contains("exit status: 1"), "{refused}");
    let line = format!(
        "mptcpd: another mptcpd (pid {}) already runs in this network namespace",
        first.pid()
    );
    let log: Vec<&str> = refused.lines().skip(1).collect();
    assert!(
        log.len() == 1 && log[0].starts_with(&line),
        "one line naming the first: {refused}"
    );
    // The first one is unharmed.
    let mut first = first.into_daemon();
    first.check_running().unwrap();
    wait_for(
        &lab,
        "the endpoint kept",
        &[ours("198.51.100.1"), foreign()],
    );
    let (status, log) = first.stop().unwrap();
    assert!(status.success(), "{log}");
}

#[test]
fn an_endpoint_changed_by_hand_while_down_is_not_adopted() {
    if !skip::require_root("an_endpoint_changed_by_hand_while_down_is_not_adopted") {
        return;
    }
    let lab = RestartLab::new("mptcpd-t-st-same").unwrap();
    let state = tempfile::tempdir().unwrap();
    let first = start(&lab, state.path());
    add(&lab, "198.51.100.1");
    add(&lab, "198.51.100.2");
    let before = wait_for(
        &lab,
        "two endpoints",
        &[ours("198.51.100.1"), ours("198.51.100.2"), foreign()],
    );
    first.into_daemon().kill().unwrap();
    // The administrator replaces 198.51.100.1's endpoint: same id and address, other flags.
    let (id, _) = before
        .iter()
        .find(|(_, e)| e.addr == "198.51.100.1")
        .unwrap();
    let id = id.to_string();
    lab.ns.ip(&["mptcp", "endpoint", "del", "id", &id]).unwrap();
    lab.ns
        .ip(&[
            "mptcp",
            "endpoint",
            "add",
            "198.51.100.1",
            "id",
            &id,
            "signal",
            "dev",
            "rl0",
        ])
        .unwrap();
    let by_hand = Entry::new("198.51.100.1", "signal", Some("rl0"));

    let second = start(&lab, state.path());
    let after = endpoints::show(&lab.ns).unwrap();
    let expected = [by_hand.clone(), ours("198.51.100.2"), foreign()];
    assert_eq!(
        after,
        expected.iter().cloned().collect(),
        "the changed one is not ours: neither adopted nor replaced:\n{}",
        second.log()
    );
    let (status, log) = second.into_daemon().stop().unwrap();
    assert!(status.success(), "{log}");
    wait_for(&lab, "only ours removed", &[by_hand, foreign()]);
}

/// Writes the state file `dir` would hold for `ns`, naming `endpoint` as being added.
fn write_state(dir: &Path, ns: &NetNs, boot_id: Option<&str>, endpoint: Endpoint) {
    let mut netns = {
        let _in = ns.enter().unwrap();
        NetnsId::current().unwrap()
    };
    if let Some(other) = boot_id {
        other.clone_into(&mut netns.boot_id);
    }
    let file = StateFile {
        netns,
        records: vec![Record {
            state: RecordState::Adding,
            endpoint,
            origin: Origin::Daemon,
        }],
    };
    let path = dir.join(format!("endpoints.net{}", netns_inode(ns)));
    std::fs::write(path, file.format()).unwrap();
}

#[test]
fn an_intent_is_adopted_and_a_file_of_another_boot_is_ignored() {
    if !skip::require_root("an_intent_is_adopted_and_a_file_of_another_boot_is_ignored") {
        return;
    }
    let lab = RestartLab::new("mptcpd-t-st-file").unwrap();
    add(&lab, "198.51.100.1");
    // The kernel has the endpoint; the daemon crashed before it confirmed the record.
    lab.ns
        .ip(&[
            "mptcp",
            "endpoint",
            "add",
            "198.51.100.1",
            "id",
            "7",
            "subflow",
            "dev",
            "rl0",
        ])
        .unwrap();
    let shown = lab.ns.ip(&["-o", "link", "show", "rl0"]).unwrap();
    let ifindex: i32 = shown.split(':').next().unwrap().trim().parse().unwrap();
    let endpoint = Endpoint {
        id: 7,
        addr: "198.51.100.1".parse().unwrap(),
        port: None,
        flags: EndpointFlags::SUBFLOW,
        if_idx: Some(ifindex),
    };
    let state = tempfile::tempdir().unwrap();

    // Written in another boot (an inode and cookie that match by chance): ignored.
    write_state(state.path(), &lab.ns, Some("another-boot"), endpoint);
    let daemon = start(&lab, state.path());
    let (status, log) = daemon.into_daemon().stop().unwrap();
    assert!(status.success(), "{log}");
    let warnings = log
        .lines()
        .filter(|l| l.contains("written in another network namespace or boot"))
        .count();
    assert_eq!(warnings, 1, "one warning:\n{log}");
    let kept = [ours("198.51.100.1"), foreign()];
    wait_for(&lab, "not ours: not removed at shutdown", &kept);

    // This boot's: adopted (its address is there), and removed at shutdown as ours.
    write_state(state.path(), &lab.ns, None, endpoint);
    let daemon = start(&lab, state.path());
    let after = lab.endpoints().unwrap();
    assert_eq!(
        after.get(&7),
        Some(&ours("198.51.100.1")),
        "{}",
        daemon.log()
    );
    let (status, log) = daemon.into_daemon().stop().unwrap();
    assert!(status.success(), "{log}");
    wait_for(&lab, "the adopted one removed at shutdown", &[foreign()]);
}

#[test]
fn removals_reach_the_state_file_once_their_burst_is_over() {
    if !skip::require_root("removals_reach_the_state_file_once_their_burst_is_over") {
        return;
    }
    let lab = RestartLab::new("mptcpd-t-st-lazy").unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = start(&lab, state.path());
    let addrs = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
    for addr in addrs {
        add(&lab, addr);
    }
    wait_for(
        &lab,
        "three endpoints",
        &[ours(addrs[0]), ours(addrs[1]), ours(addrs[2]), foreign()],
    );
    let file = state
        .path()
        .join(format!("endpoints.net{}", netns_inode(&lab.ns)));
    assert!(file.exists());
    for addr in addrs {
        del(&lab, addr);
    }
    wait_for(&lab, "the three removed", &[foreign()]);
    // Nothing else happens: the deferred write alone empties the record, which removes the
    // file (nothing left to remember).
    let deadline = std::time::Instant::now() + mptcpd_tests::daemon::process::LIVENESS;
    while file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the removals never written:\n{}\n{}",
            std::fs::read_to_string(&file).unwrap_or_default(),
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (status, log) = daemon.into_daemon().stop().unwrap();
    assert!(status.success(), "{log}");
}
