//! The address policy (`[policy]`, `[interface PATTERN]`) against the real kernel: which
//! addresses get endpoints, with which flags, and which win under the kernel's 8 endpoints.

use std::{
    fs,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use mptcpd_tests::{
    bins,
    daemon::process::{self, Daemon},
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
    skip,
};

/// `ip mptcp endpoint show` in `ns`, polled until `done` holds (bounded by the hang limit).
fn endpoints_until(ns: &NetNs, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + process::LIVENESS;
    loop {
        let shown = ns.ip(&["mptcp", "endpoint", "show"]).unwrap();
        if done(&shown) || Instant::now() > deadline {
            return shown;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The endpoint line of `addr` (`""` if none).
fn line_of<'s>(shown: &'s str, addr: &str) -> &'s str {
    let word = format!("{addr} ");
    shown
        .lines()
        .find(|line| line.starts_with(&word))
        .unwrap_or_default()
}

fn write_config(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

/// Our daemon in `ns` with `config`, `addr-flags=subflow`, every start-up address reported.
fn daemon(ns: &NetNs, config: &Path, pins: &str) -> Daemon {
    let mut cmd: Command = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug", "--config"])
        .arg(config)
        .args([
            "--addr-flags",
            "subflow",
            "--notify-flags",
            "existing,skip_loopback,skip_link_local",
        ])
        .args(["--bpf-pin-dir", &format!("/sys/fs/bpf/mptcpd-test-{pins}")]);
    Daemon::start(cmd).unwrap()
}

const POLICY: &str = "[policy]\n\
    skip-interfaces=pd-deny*\n\
    skip-addresses=temporary,deprecated,ula\n\
    [interface pd-bk*]\n\
    flags=subflow,backup\n";

#[test]
fn the_policy_decides_which_addresses_get_endpoints_and_with_which_flags() {
    let test = "the_policy_decides_which_addresses_get_endpoints_and_with_which_flags";
    if !skip::require_root(test) {
        return;
    }
    let ns = NetNs::new("mptcpd-t-pol").unwrap();
    let peer = NetNs::new("mptcpd-t-pol").unwrap();
    let _eth = VethPair::new("pd-eth", &ns, "pp-eth", &peer).unwrap();
    let _bk = VethPair::new("pd-bk0", &ns, "pp-bk0", &peer).unwrap();
    let _deny = VethPair::new("pd-deny0", &ns, "pp-deny0", &peer).unwrap();
    let _a = Address::add(&ns, "pd-eth", "198.51.100.7/24").unwrap();
    let _b = Address::add(&ns, "pd-bk0", "203.0.113.7/24").unwrap();
    let _c = Address::add(&ns, "pd-deny0", "192.0.2.7/24").unwrap();
    let _ula = Address::add(&ns, "pd-eth", "fd00:db8::7/64").unwrap();
    let _v6 = Address::add(&ns, "pd-eth", "2001:db8:7::7/64").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mptcpd.conf");
    write_config(&config, POLICY);
    let mut daemon = daemon(&ns, &config, "pol");

    let shown = endpoints_until(&ns, |s| {
        s.contains("198.51.100.7") && s.contains("203.0.113.7") && s.contains("2001:db8:7::7")
    });
    let log = daemon.log();
    assert_eq!(
        line_of(&shown, "198.51.100.7"),
        "198.51.100.7 id 1 subflow dev pd-eth ",
        "addr-flags where no section matches:\n{shown}\n{log}"
    );
    assert!(
        line_of(&shown, "203.0.113.7").ends_with("subflow backup dev pd-bk0 "),
        "the [interface pd-bk*] flags:\n{shown}\n{log}"
    );
    assert!(
        !shown.contains("192.0.2.7"),
        "skip-interfaces:\n{shown}\n{log}"
    );
    assert!(
        !shown.contains("fd00"),
        "skip-addresses=ula:\n{shown}\n{log}"
    );

    // The address becomes deprecated: it loses its endpoint; preferred again, it is back.
    ns.ip(&[
        "-6",
        "addr",
        "change",
        "2001:db8:7::7/64",
        "dev",
        "pd-eth",
        "preferred_lft",
        "0",
    ])
    .unwrap();
    let shown = endpoints_until(&ns, |s| !s.contains("2001:db8:7::7"));
    assert!(
        !shown.contains("2001:db8:7::7"),
        "deprecated:\n{shown}\n{}",
        daemon.log()
    );
    ns.ip(&[
        "-6",
        "addr",
        "change",
        "2001:db8:7::7/64",
        "dev",
        "pd-eth",
        "preferred_lft",
        "forever",
    ])
    .unwrap();
    let shown = endpoints_until(&ns, |s| s.contains("2001:db8:7::7"));
    assert!(
        shown.contains("2001:db8:7::7"),
        "preferred again:\n{shown}\n{}",
        daemon.log()
    );

    // SIGHUP with pd-eth denied too: its addresses lose their endpoints at once, although
    // nothing about them changed.
    write_config(
        &config,
        &POLICY.replace(
            "skip-interfaces=pd-deny*",
            "skip-interfaces=pd-deny*,pd-eth",
        ),
    );
    daemon.signal(libc::SIGHUP).unwrap();
    daemon
        .wait_for_log("the address policy applies to every address now")
        .unwrap();
    let shown = endpoints_until(&ns, |s| {
        !s.contains("198.51.100.7") && !s.contains("2001:db8:7::7")
    });
    assert!(
        !shown.contains("198.51.100.7") && !shown.contains("2001:db8:7::7"),
        "re-evaluated on reload:\n{shown}\n{}",
        daemon.log()
    );
    assert!(shown.contains("203.0.113.7"), "{shown}");
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

#[test]
fn under_the_endpoint_limit_the_interface_order_decides_who_waits() {
    let test = "under_the_endpoint_limit_the_interface_order_decides_who_waits";
    if !skip::require_root(test) {
        return;
    }
    let ns = NetNs::new("mptcpd-t-prio").unwrap();
    let peer = NetNs::new("mptcpd-t-prio").unwrap();
    let _rest = VethPair::new("pr-rest", &ns, "pq-rest", &peer).unwrap();
    let _best = VethPair::new("pr-best", &ns, "pq-best", &peer).unwrap();
    let rest: Vec<Address> = (1..=8)
        .map(|n| Address::add(&ns, "pr-rest", &format!("198.51.100.{n}/24")).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mptcpd.conf");
    // Everything allowed, pr-best first.
    write_config(&config, "[policy]\ninterfaces=pr-best,*\n");
    let daemon = daemon(&ns, &config, "prio");
    let full = |s: &str| s.lines().filter(|l| l.contains("198.51.100.")).count() == 8;
    let shown = endpoints_until(&ns, full);
    assert!(full(&shown), "{shown}\n{}", daemon.log());

    // The kernel is full: the address on pr-best takes the room of the worst (the last).
    let best = Address::add(&ns, "pr-best", "203.0.113.1/24").unwrap();
    let shown = endpoints_until(&ns, |s| {
        s.contains("203.0.113.1 ") && !s.contains("198.51.100.8 ")
    });
    assert!(
        shown.contains("203.0.113.1 ") && !shown.contains("198.51.100.8 "),
        "{shown}\n{}",
        daemon.log()
    );
    // It goes: the waiting address takes the freed room.
    drop(best);
    let shown = endpoints_until(&ns, |s| {
        !s.contains("203.0.113.1 ") && s.contains("198.51.100.8 ")
    });
    assert!(
        !shown.contains("203.0.113.1 ") && shown.contains("198.51.100.8 "),
        "{shown}\n{}",
        daemon.log()
    );
    drop(rest);
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

#[test]
fn under_the_endpoint_limit_the_preferred_family_wins() {
    let test = "under_the_endpoint_limit_the_preferred_family_wins";
    if !skip::require_root(test) {
        return;
    }
    let ns = NetNs::new("mptcpd-t-pfam").unwrap();
    let peer = NetNs::new("mptcpd-t-pfam").unwrap();
    let _link = VethPair::new("pf-a", &ns, "pf-b", &peer).unwrap();
    let v4: Vec<Address> = (1..=8)
        .map(|n| Address::add(&ns, "pf-a", &format!("198.51.100.{n}/24")).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mptcpd.conf");
    write_config(&config, "[policy]\nprefer-family=ipv6\n");
    let daemon = daemon(&ns, &config, "pfam");
    let full = |s: &str| s.lines().filter(|l| l.contains("198.51.100.")).count() == 8;
    let shown = endpoints_until(&ns, full);
    assert!(full(&shown), "{shown}\n{}", daemon.log());
    let _v6 = Address::add(&ns, "pf-a", "2001:db8:9::1/64").unwrap();
    let shown = endpoints_until(&ns, |s| s.contains("2001:db8:9::1 "));
    assert!(
        shown.contains("2001:db8:9::1 ") && !shown.contains("198.51.100.8 "),
        "{shown}\n{}",
        daemon.log()
    );
    drop(v4);
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

#[test]
fn a_sighup_reflags_the_endpoints_and_reranks_who_waits() {
    let test = "a_sighup_reflags_the_endpoints_and_reranks_who_waits";
    if !skip::require_root(test) {
        return;
    }
    let ns = NetNs::new("mptcpd-t-phup").unwrap();
    let peer = NetNs::new("mptcpd-t-phup").unwrap();
    let _a = VethPair::new("ph-a", &ns, "pi-a", &peer).unwrap();
    let _b = VethPair::new("ph-b", &ns, "pi-b", &peer).unwrap();
    let on_a: Vec<Address> = (1..=8)
        .map(|n| Address::add(&ns, "ph-a", &format!("198.51.100.{n}/24")).unwrap())
        .collect();
    let _on_b = Address::add(&ns, "ph-b", "203.0.113.1/24").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mptcpd.conf");
    write_config(&config, "[policy]\ninterfaces=ph-a,*\n");
    let mut daemon = daemon(&ns, &config, "phup");
    let on_a_count = |s: &str| s.lines().filter(|l| l.contains("198.51.100.")).count();
    let shown = endpoints_until(&ns, |s| on_a_count(s) == 8);
    assert!(
        on_a_count(&shown) == 8 && !shown.contains("203.0.113.1 "),
        "ph-a first: 203.0.113.1 waits\n{shown}\n{}",
        daemon.log()
    );

    // ph-b first now, and ph-a's endpoints backup: changed without a restart.
    write_config(
        &config,
        "[policy]\ninterfaces=ph-b,*\n[interface ph-a]\nflags=subflow,backup\n",
    );
    daemon.signal(libc::SIGHUP).unwrap();
    daemon
        .wait_for_log("the endpoint policy changed: applying it")
        .unwrap();
    let done = |s: &str| {
        s.contains("203.0.113.1 ")
            && on_a_count(s) == 7
            && s.lines()
                .filter(|l| l.contains("198.51.100."))
                .all(|l| l.contains("subflow backup"))
    };
    let shown = endpoints_until(&ns, done);
    let log = daemon.log();
    assert!(done(&shown), "{shown}\n{log}");
    assert!(!log.contains("take effect at the next start"), "{log}");
    drop(on_a);
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}
