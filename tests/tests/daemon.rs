//! The daemon process: command-line errors, and the network events it sees in its namespace.

use std::process::Command;

use mptcpd_tests::{
    bins,
    daemon::Daemon,
    mptcp,
    netns::NetNs,
    skip,
    veth::{Address, VethPair},
};

#[test]
fn bad_usage_is_one_line_and_exit_64() {
    let out = Command::new(bins::path("mptcpd").unwrap())
        .args(["--notify-flags", "existing,bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    assert!(stderr.starts_with("mptcpd: "), "{stderr}");
}

#[test]
fn daemon_logs_interfaces_and_addresses_of_its_namespace() {
    if !skip::require_root("daemon_logs_interfaces_and_addresses_of_its_namespace") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-dnet").unwrap();
    let peer = NetNs::new("mptcpd-t-dnet").unwrap();
    let _link = VethPair::new("d-a", &ns, "d-b", &peer).unwrap();
    let _before = Address::add(&ns, "d-a", "198.51.100.7/24").unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args([
        "--log",
        "stderr",
        "--debug",
        "--notify-flags",
        "existing,skip_loopback",
    ])
    .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-dnet"]);
    let mut daemon = Daemon::start(cmd).unwrap();
    // `existing`: the address present at start-up is reported too.
    daemon.wait_for_log("198.51.100.7").unwrap();
    let _after = Address::add(&ns, "d-a", "203.0.113.9/24").unwrap();
    daemon.wait_for_log("203.0.113.9").unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(!log.contains("127.0.0.1"), "skip_loopback:\n{log}");
}

#[test]
fn daemon_follows_mptcp_events_of_its_namespace() {
    if !skip::require_root("daemon_follows_mptcp_events_of_its_namespace") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-dpm").unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug"])
        .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-dpm"]);
    let mut daemon = Daemon::start(cmd).unwrap();
    ns.run(|| {
        let listener = mptcp::listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = mptcp::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut &client, b"x").unwrap();
        let mut byte = [0_u8; 1];
        std::io::Read::read_exact(&mut &server, &mut byte).unwrap();
    })
    .unwrap();
    daemon.wait_for_log("mptcp: Established").unwrap();
    daemon.wait_for_log("mptcp: ListenerCreated").unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

/// `ip mptcp endpoint show` in `ns`, polled until `done` holds (bounded by the hang limit).
fn endpoints_until(ns: &NetNs, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + mptcpd_tests::daemon::LIVENESS;
    loop {
        let shown = ns.ip(&["mptcp", "endpoint", "show"]).unwrap();
        if done(&shown) || std::time::Instant::now() > deadline {
            return shown;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn daemon_adds_endpoints_and_removes_only_its_own_on_sigterm() {
    if !skip::require_root("daemon_adds_endpoints_and_removes_only_its_own_on_sigterm") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-dadv").unwrap();
    let peer = NetNs::new("mptcpd-t-dadv").unwrap();
    let _link = VethPair::new("e-a", &ns, "e-b", &peer).unwrap();
    let _addr = Address::add(&ns, "e-a", "198.51.100.7/24").unwrap();
    ns.ip(&[
        "mptcp",
        "endpoint",
        "add",
        "203.0.113.50",
        "id",
        "50",
        "signal",
    ])
    .unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--config"])
        .arg(config.path())
        .args([
            "--addr-flags",
            "subflow,backup",
            "--notify-flags",
            "existing,skip_loopback",
        ])
        .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-dadv"]);
    let daemon = Daemon::start(cmd).unwrap();
    let shown = endpoints_until(&ns, |s| s.contains("198.51.100.7"));
    assert!(
        shown.contains("198.51.100.7 id 1 subflow backup dev e-a") && !shown.contains("127.0.0.1"),
        "{shown}\n{}",
        daemon.log()
    );

    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let shown = ns.ip(&["mptcp", "endpoint", "show"]).unwrap();
    assert!(!shown.contains("198.51.100.7"), "ours removed:\n{shown}");
    assert!(
        shown.contains("203.0.113.50 id 50 signal"),
        "the administrator's stays:\n{shown}"
    );
}

#[test]
fn unknown_plugin_is_a_one_line_startup_error() {
    if !skip::require_root("unknown_plugin_is_a_one_line_startup_error") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-dplug").unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = ns
        .command(bins::path("mptcpd").unwrap())
        .unwrap()
        .args(["--log", "null", "--config"])
        .arg(config.path())
        .arg("--state-dir")
        .arg(state.path())
        .args(["--load-plugins", "addr_adv,nosuch"])
        .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-dplug"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nosuch"), "{stderr}");
}
