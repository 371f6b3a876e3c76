//! The `health` plugin against the real kernel: two paths, the daemon with `addr_adv` (which
//! adds the client's endpoints) and `health` (which handles the connections), observing a
//! test cgroup; path 2 blackholed in the server's input hook while connections from the
//! cgroup send over both paths: path 2's endpoint becomes `backup`, path 1's does not.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use mptcpd_tests::{
    bins, daemon::process::Daemon, ebpf::cgroup::TestCgroup, net::two_hosts::TwoHosts, skip,
};

const TEST: &str = "a_blackholed_paths_endpoint_becomes_backup";
const PORTS: [u16; 2] = [5311, 5312];

fn have_nft() -> bool {
    let found = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        skip::skip(TEST, "needs nft (Debian package nftables)");
    }
    found
}

/// The client namespace's `ip mptcp endpoint show` line for `addr`, once `done` holds for it
/// (polled: kernel state; at most `within`).
fn endpoint_line(
    hosts: &TwoHosts,
    addr: &str,
    within: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let shown = hosts.client.ip(&["mptcp", "endpoint", "show"]).unwrap();
        let line = shown
            .lines()
            .find(|l| l.starts_with(&format!("{addr} ")))
            .unwrap_or_default()
            .to_owned();
        if done(&line) || Instant::now() > deadline {
            return line;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_blackholed_paths_endpoint_becomes_backup() {
    if !skip::require_root(TEST) || !have_nft() {
        return;
    }
    let hosts = TwoHosts::new("mptcpd-t-health").unwrap();
    TwoHosts::set_limits(&hosts.server).unwrap();
    let cgroup = TestCgroup::new("mptcpd-t-health").unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    let pins = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/mptcpd-test-{}-health",
        std::process::id()
    ));
    let mut cmd = hosts.client.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--config"])
        .arg(config.path())
        .arg("--state-dir")
        .arg(state.path())
        .arg("--bpf-pin-dir")
        .arg(&pins)
        .arg("--observe-cgroup")
        .arg(cgroup.path())
        .args(["--notify-flags", "existing,skip_loopback,skip_link_local"])
        .args(["--addr-flags", "subflow"])
        // No --path-manager: `addr_adv` handles the connections, `health` observes them.
        .args(["--load-plugins", "addr_adv,health"])
        // Only a dead path counts here (path 1's shaping inflates its RTT and loses
        // segments); one peer is enough (every connection goes to the one server).
        .args(["--health-hold", "2", "--health-min-peers", "1"])
        .args(["--health-rtt-percent", "0", "--health-retrans-percent", "0"]);
    let mut daemon = Daemon::start(cmd).unwrap();
    daemon
        .wait_for_log("subflow telemetry attached to cgroup")
        .unwrap_or_else(|e| panic!("{e}"));
    let path_2 = endpoint_line(&hosts, "10.0.2.1", Duration::from_secs(10), |l| {
        !l.is_empty()
    });
    assert!(path_2.contains("subflow"), "{path_2}");
    hosts.blackhole_path_2().unwrap();

    let mut children = Vec::new();
    for port in PORTS {
        children.push(hosts.xfer_server(port, 0).unwrap());
        let mut client = hosts
            .client
            .command(bins::path("mptcp-xfer").unwrap())
            .unwrap();
        client
            .args(["client", "--connect", &format!("10.0.1.2:{port}")])
            .args(["--bytes", &(64_u64 << 20).to_string()])
            .args(["--wait-extra-subflows", "1"])
            .stdout(Stdio::null());
        cgroup.join_on_spawn(&mut client).unwrap();
        children.push(client.spawn().unwrap());
    }
    let path_2 = endpoint_line(&hosts, "10.0.2.1", Duration::from_secs(60), |l| {
        l.contains("backup")
    });
    let path_1 = endpoint_line(&hosts, "10.0.1.1", Duration::ZERO, |_| true);
    for child in &mut children {
        // Already gone is fine: only the endpoints matter here.
        let _gone = child.kill();
        let _status = child.wait();
    }
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(path_2.contains("backup"), "{path_2}\n{log}");
    assert!(!path_1.contains("backup"), "{path_1}\n{log}");
    let decision = log
        .lines()
        .find(|l| l.contains("path 10.0.2.1 dead (was healthy)"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(decision.contains("RTOs without progress"), "{decision}");
    assert!(!pins.exists(), "{} left behind", pins.display());
}
