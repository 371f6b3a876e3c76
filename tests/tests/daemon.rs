//! The daemon process: command-line errors, and the network events it sees in its namespace.

use std::{os::unix::net::UnixDatagram, process::Command};

use mptcpd_common::rcvbuf;
use mptcpd_netmon::NOTIFY_RECEIVE_BUFFER;
use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    ebpf::fds,
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
    skip,
    sockets::mptcp,
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
    let deadline = std::time::Instant::now() + mptcpd_tests::daemon::process::LIVENESS;
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
    // The start-up and shutdown counts are logged once (not by the host and the daemon).
    let lines = |a: &str, b: &str| {
        log.lines()
            .filter(|l| l.contains(a) && l.contains(b))
            .count()
    };
    assert_eq!(
        lines("plugins", "default"),
        1,
        "plugins loaded, once:\n{log}"
    );
    assert_eq!(
        lines("endpoints", "this daemon"),
        1,
        "endpoints removed, once:\n{log}"
    );
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

/// `RTNLGRP_LINK` (linux/rtnetlink.h).
const RTNLGRP_LINK: u32 = 1;

#[test]
fn the_network_monitor_gets_its_receive_buffer_past_rmem_max() {
    if !skip::require_root("the_network_monitor_gets_its_receive_buffer_past_rmem_max") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-drcv").unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--config"])
        .arg(config.path())
        .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-drcv"]);
    let daemon = Daemon::start(cmd).unwrap();
    let sockets = fds::netlink_sockets(daemon.pid(), libc::NETLINK_ROUTE).unwrap();
    let notifications: Vec<_> = sockets
        .iter()
        .filter(|s| s.groups.contains(&RTNLGRP_LINK))
        .collect();
    assert_eq!(notifications.len(), 1, "{sockets:?}");
    let granted = rcvbuf::receive_buffer(&notifications[0].dup).unwrap();
    let rmem_max = std::fs::read_to_string("/proc/sys/net/core/rmem_max").unwrap();
    // The kernel grants twice what is asked; SO_RCVBUF alone stops at twice rmem_max.
    assert_eq!(
        granted,
        2 * NOTIFY_RECEIVE_BUFFER,
        "net.core.rmem_max = {}",
        rmem_max.trim()
    );
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

/// Reads what is queued on `socket` without waiting.
fn drain(socket: &UnixDatagram) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = vec![0_u8; 64 * 1024];
    while socket.recv(&mut buf).is_ok() {}
}

/// The first datagram on `socket` that contains `needle` (bounded by the hang limit).
fn receive_until(socket: &UnixDatagram, needle: &str) -> String {
    socket.set_nonblocking(false).unwrap();
    socket
        .set_read_timeout(Some(mptcpd_tests::daemon::process::LIVENESS))
        .unwrap();
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {needle:?} from the daemon: {e}"));
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.contains(needle) {
            return text;
        }
    }
}

/// The number before `needle` in `text` (`N log messages were dropped`).
fn count_before(text: &str, needle: &str) -> u64 {
    let before = &text[..text
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in {text:?}"))];
    before
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {text:?}"))
}

/// A log daemon that stops reading under `--log TARGET`: the daemon still starts and still
/// adds endpoints. If the log daemon `catches_up`, the next message says how many were
/// dropped; if it never does, the daemon says so on stderr at exit.
fn a_stalled_log_socket_does_not_stop_the_daemon(target: &str, catches_up: bool) {
    let ns = NetNs::new("mptcpd-t-dlog").unwrap();
    let peer = NetNs::new("mptcpd-t-dlog").unwrap();
    let _link = VethPair::new("l-a", &ns, "l-b", &peer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    // Its queue holds net.unix.max_dgram_qlen (10) datagrams: start-up alone logs more.
    let log_daemon = UnixDatagram::bind(&path).unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", target, "--debug", "--config"])
        .arg(config.path())
        .args(["--path-manager", "addr_adv", "--addr-flags", "subflow"])
        .args(["--notify-flags", "skip_link_local,skip_loopback"])
        .arg(format!(
            "--bpf-pin-dir=/sys/fs/bpf/mptcpd-test-dlog-{target}"
        ))
        .env("MPTCPD_LOG_SOCKET", &path);
    // A blocking send would stop the daemon before READY=1.
    let mut daemon = Daemon::start(cmd).unwrap();
    let _addr = Address::add(&ns, "l-a", "192.0.2.1/24").unwrap();
    let shown = endpoints_until(&ns, |s| s.contains("192.0.2.1 "));
    assert!(shown.contains("192.0.2.1 id 1 subflow dev l-a"), "{shown}");

    let needle = " log messages were dropped";
    if catches_up {
        // The next message the daemon logs (the reload's) comes after the count.
        drain(&log_daemon);
        daemon.signal(libc::SIGHUP).unwrap();
        daemon.wait_for_notify("READY=1").unwrap();
        let notice = receive_until(&log_daemon, needle);
        assert!(count_before(&notice, needle) > 0, "{notice}");
        let (status, log) = daemon.stop().unwrap();
        assert!(status.success(), "{log}");
    } else {
        // Never read: the count is said once, on stderr, as the daemon exits.
        let (status, stderr) = daemon.stop().unwrap();
        assert!(status.success(), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("mptcpd: "), "{stderr}");
        assert!(count_before(&stderr, needle) > 0, "{stderr}");
    }
}

#[test]
fn a_stalled_syslog_does_not_stop_the_daemon() {
    if !skip::require_root("a_stalled_syslog_does_not_stop_the_daemon") {
        return;
    }
    a_stalled_log_socket_does_not_stop_the_daemon("syslog", true);
}

#[test]
fn a_stalled_journal_does_not_stop_the_daemon() {
    if !skip::require_root("a_stalled_journal_does_not_stop_the_daemon") {
        return;
    }
    a_stalled_log_socket_does_not_stop_the_daemon("journal", false);
}
