//! Beside `NetworkManager` (1.40+ adds a `subflow` endpoint, bound to the interface, per
//! address): the test adds endpoints the way it does, before the address and right after it,
//! while our daemon runs. The daemon leaves another tool's endpoint alone (no duplicate, no
//! removal), says so once, and takes the address up again when that endpoint goes while the
//! address stays.

use std::process::Command;

use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    kernel_pm::endpoints::{self, Table},
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
    skip,
};

/// The log line the daemon writes once per address left to another tool.
fn left_alone(addr: &str) -> String {
    format!("endpoint for {addr} is managed by another tool")
}

/// How many endpoints the table holds for `addr`.
fn count(table: &Table, addr: &str) -> usize {
    table.iter().filter(|e| e.addr == addr).count()
}

/// Whether `addr`'s one endpoint has `flags`.
fn has(table: &Table, addr: &str, flags: &str) -> bool {
    table.iter().any(|e| e.addr == addr && e.flags == flags)
}

/// The kernel id of `addr`'s endpoint.
fn id_of(ns: &NetNs, addr: &str) -> String {
    let by_id = endpoints::show_by_id(ns).unwrap();
    let (id, _) = by_id.iter().find(|(_, e)| e.addr == addr).unwrap();
    id.to_string()
}

/// `NetworkManager`'s endpoint: `subflow`, bound to the interface, the kernel picks the id.
fn nm_add(ns: &NetNs, addr: &str, dev: &str) -> anyhow::Result<String> {
    ns.ip(&["mptcp", "endpoint", "add", addr, "dev", dev, "subflow"])
}

#[test]
fn another_tools_endpoints_are_left_alone_and_taken_over_when_they_go() {
    let test = "another_tools_endpoints_are_left_alone_and_taken_over_when_they_go";
    if !skip::require_root(test) {
        return;
    }
    let ns = NetNs::new("mptcpd-t-nm").unwrap();
    let peer = NetNs::new("mptcpd-t-nm").unwrap();
    let _a = VethPair::new("nm-a", &ns, "nq-a", &peer).unwrap();
    let _b = VethPair::new("nm-b", &ns, "nq-b", &peer).unwrap();
    // Ours are `signal`: told apart from the other tool's `subflow`.
    let mut cmd: Command = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug", "--addr-flags", "signal"])
        .args(["--notify-flags", "existing,skip_loopback,skip_link_local"])
        .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-nm"]);
    let mut daemon = Daemon::start(cmd).unwrap();

    // Before the address: the other tool's endpoint is there first, and stays the only one.
    let before = "198.51.100.7";
    nm_add(&ns, before, "nm-a").unwrap();
    let _before = Address::add(&ns, "nm-a", "198.51.100.7/24").unwrap();
    daemon.wait_for_log(&left_alone(before)).unwrap();
    let table = endpoints::show(&ns).unwrap();
    assert!(
        count(&table, before) == 1 && has(&table, before, "subflow"),
        "{}\n{}",
        endpoints::display(&table),
        daemon.log()
    );

    // Right after the address: whoever comes first keeps it; the kernel refuses the other.
    let after = "203.0.113.7";
    let after_addr = Address::add(&ns, "nm-b", "203.0.113.7/24").unwrap();
    let theirs = nm_add(&ns, after, "nm-b").is_ok();
    let table = endpoints::wait_until(&ns, "the address has its endpoint", |t| {
        count(t, after) == 1 && (!theirs || daemon.log().contains(&left_alone(after)))
    })
    .unwrap();
    let expected = if theirs { "subflow" } else { "signal" };
    assert!(
        has(&table, after, expected),
        "{}\n{}",
        endpoints::display(&table),
        daemon.log()
    );
    // The other tool removes the address, then its endpoint: nothing of ours remains.
    drop(after_addr);
    if theirs {
        ns.ip(&["mptcp", "endpoint", "delete", "id", &id_of(&ns, after)])
            .unwrap();
    }

    // The other tool's endpoint goes while the address stays: the daemon takes it over.
    ns.ip(&["mptcp", "endpoint", "delete", "id", &id_of(&ns, before)])
        .unwrap();
    let table = endpoints::wait_until(&ns, "the daemon's endpoint for the address", |t| {
        has(t, before, "signal")
    })
    .unwrap();
    let log = daemon.log();
    assert!(
        count(&table, before) == 1 && count(&table, after) == 0,
        "{}\n{log}",
        endpoints::display(&table)
    );
    assert_eq!(
        log.matches(&left_alone(before)).count(),
        1,
        "said once, for all the ticks that saw it:\n{log}"
    );
    assert!(log.matches(&left_alone(after)).count() <= 1, "{log}");

    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert_eq!(
        endpoints::show(&ns).unwrap().len(),
        0,
        "ours removed at exit"
    );
}
