//! The `health` plugin against the real kernel: two paths, our daemon the client, observing a
//! test cgroup whose `mptcp-xfer` client sends over both paths (each shaped to 20 Mbit/s, so
//! that both carry data); path 2 blackholed in the server's input hook (the link stays up).
//!
//! - In-kernel path manager (`addr_adv` adds the endpoints, `health` observes): the dead
//!   path's endpoint is taken out of the kernel (its subflow closes); each re-probe (every
//!   hold time) is a TCP connection attempt from the path's address to the server, outside
//!   the connections: unanswered, the endpoint stays out and the kernel joins nothing on the
//!   path; once the blackhole is lifted the next attempt is answered, the endpoint is put
//!   back, the re-probe holds and path 2 carries data again.
//! - Userspace path manager (`mesh` handles, `health` observes): the same with the subflow
//!   destroyed, and re-created once a test is answered.
//!
//! Needs root and `nft` (else each test prints `skipped: TEST: REASON`, or panics under
//! `CI=true`).

use std::{
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    ebpf::cgroup::TestCgroup,
    net::{sysctl, two_hosts::TwoHosts},
    skip,
};

/// A bound on kernel state that must come, not a performance expectation.
const DEADLINE: Duration = Duration::from_secs(30);

fn have_nft(test: &str) -> bool {
    let found = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        skip::skip(test, "needs nft (Debian package nftables)");
    }
    found
}

/// The two hosts, the observed cgroup and our daemon in the client's namespace.
struct Lab {
    // The daemon stops before its namespace goes.
    daemon: Option<Daemon>,
    /// The transfer's client and server, killed on drop.
    children: Vec<Child>,
    cgroup: TestCgroup,
    pins: PathBuf,
    hosts: TwoHosts,
    _config: tempfile::NamedTempFile,
    _state: tempfile::TempDir,
}

impl Lab {
    /// `userspace`: the client's namespace uses the userspace path manager.
    fn new(name: &str, userspace: bool, plugins: &[&str]) -> Self {
        // Only a dead path counts (the shaping inflates RTTs and loses segments).
        let dead_only = ["--health-rtt-percent", "0", "--health-retrans-percent", "0"];
        Self::with_health(name, userspace, plugins, 1, &dead_only)
    }

    /// `health`: its hold time and its settings besides the peers needed (1).
    fn with_health(
        name: &str,
        userspace: bool,
        plugins: &[&str],
        hold: u32,
        health: &[&str],
    ) -> Self {
        let hosts = TwoHosts::new(&format!("mptcpd-t-{name}")).unwrap();
        TwoHosts::set_limits(&hosts.server).unwrap();
        if userspace {
            sysctl::set_in(&hosts.client, "net.mptcp.pm_type", "1").unwrap();
        }
        hosts.shape_client(&["c1", "c2"]).unwrap();
        let cgroup = TestCgroup::new(&format!("mptcpd-t-{name}")).unwrap();
        let config = tempfile::NamedTempFile::new().unwrap();
        let state = tempfile::tempdir().unwrap();
        let pins = PathBuf::from(format!(
            "/sys/fs/bpf/mptcpd-test-{}-{name}",
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
            .args(plugins)
            // One peer is enough (every connection goes to the one server).
            .args([
                "--health-hold",
                &hold.to_string(),
                "--health-min-peers",
                "1",
            ])
            .args(health);
        let mut daemon = Daemon::start(cmd).unwrap();
        daemon
            .wait_for_log("subflow telemetry attached to cgroup")
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            daemon: Some(daemon),
            children: Vec::new(),
            cgroup,
            pins,
            hosts,
            _config: config,
            _state: state,
        }
    }

    fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().unwrap()
    }

    /// A long transfer from the cgroup over both paths (killed at the end), once its
    /// path-2 subflow is up.
    fn transfer(&mut self, port: u16) {
        let server = self.hosts.xfer_server(port, 0).unwrap();
        self.children.push(server);
        let mut client = self
            .hosts
            .client
            .command(bins::path("mptcp-xfer").unwrap())
            .unwrap();
        client
            .args(["client", "--connect", &format!("10.0.1.2:{port}")])
            .args(["--bytes", &(4_u64 << 30).to_string()])
            .args(["--wait-extra-subflows", "1"])
            .stdout(Stdio::null());
        self.cgroup.join_on_spawn(&mut client).unwrap();
        self.children.push(client.spawn().unwrap());
    }

    /// The `ss -tni` lines of the established subflows from `addr` (their MPTCP flags:
    /// `b` for a subflow this side made backup).
    fn subflows_from(&self, addr: &str) -> Vec<String> {
        self.ss_established("-Htni", addr)
            .lines()
            .filter(|l| l.contains("tcp-ulp-mptcp"))
            .map(str::to_owned)
            .collect()
    }

    /// Everything arriving on the server's path-2 link is dropped (the link stays up).
    fn blackhole(&self) {
        self.hosts.server_input_rule("iifname \"s2\" drop").unwrap();
    }

    fn lift(&self) {
        let nft = self
            .hosts
            .server
            .command("nft")
            .unwrap()
            .args(["delete", "table", "inet", "lossy"])
            .status()
            .unwrap();
        assert!(nft.success(), "nft refused to delete the table");
    }

    /// Bytes the client sent on `dev`.
    fn tx_bytes(&self, dev: &str) -> u64 {
        let shown = self
            .hosts
            .client
            .ip(&["-j", "-s", "link", "show", dev])
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&shown).unwrap();
        json[0]["stats64"]["tx"]["bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("no tx bytes in {shown}"))
    }

    /// Polls `done` (kernel state) until it holds or the deadline passes.
    fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done(self) {
            assert!(Instant::now() < deadline, "no {what}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        self.daemon.as_ref().map(Daemon::log).unwrap_or_default()
    }

    fn has_endpoint(&self, addr: &str) -> bool {
        let shown = self
            .hosts
            .client
            .ip(&["mptcp", "endpoint", "show"])
            .unwrap();
        shown.lines().any(|l| l.starts_with(&format!("{addr} ")))
    }

    /// The client's `MPTcpExtMPJoinSynTx` (joins the kernel sent); `None` before Linux 6.12.
    fn joins_sent(&self) -> Option<u64> {
        let out = self
            .hosts
            .client
            .command("cat")
            .unwrap()
            .arg("/proc/net/netstat")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines().filter(|l| l.starts_with("MPTcpExt:"));
        let (names, values) = (lines.next()?, lines.next()?);
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|&(name, _)| name == "MPJoinSynTx")
            .map(|(_, value)| value.parse().unwrap())
    }

    /// Established TCP connections (subflows) from `addr` in the client's namespace.
    fn established_from(&self, addr: &str) -> usize {
        self.ss_established("-Htn", addr).lines().count()
    }

    /// `ss OPTIONS state established src ADDR` in the client's namespace.
    fn ss_established(&self, options: &str, addr: &str) -> String {
        let out = self
            .hosts
            .client
            .command("ss")
            .unwrap()
            .args([options, "state", "established", "src", addr])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Once path 2 carries data, blackholes it and waits for the plugin to close it (no
    /// established subflow from it left) and to fail a re-probe, then
    /// lifts the blackhole and waits for the next re-probe to hold and for path 2 to carry
    /// data again. `closed` says what closing it did, `failed` what a failed re-probe logs.
    fn dead_and_back(&mut self, closed: &str, failed: &str) {
        let start = self.tx_bytes("c2");
        self.until("data on path 2", |lab| {
            lab.tx_bytes("c2") > start + (1 << 20)
        });
        self.blackhole();
        let daemon = self.daemon();
        daemon
            .wait_for_log("path 10.0.2.1 dead (was healthy)")
            .unwrap_or_else(|e| panic!("{e}"));
        daemon
            .wait_for_log(&format!("path 10.0.2.1: {closed}; re-probe in 1 s"))
            .unwrap_or_else(|e| panic!("{e}"));
        self.until("path 2's subflow closed", |lab| {
            lab.established_from("10.0.2.1") == 0
        });
        // The first re-probe fails: its test outside the connections is not answered.
        self.until("a failed re-probe", |lab| lab.log().contains(failed));
        self.lift();
        let before = self.tx_bytes("c2");
        self.daemon()
            .wait_for_log("re-probe held for 1 s: path in use again, backoff reset")
            .unwrap_or_else(|e| panic!("{e}"));
        // Path 2 carries data again: well beyond handshakes and probes.
        self.until("data on path 2 after the blackhole", |lab| {
            lab.tx_bytes("c2") > before + (1 << 20)
        });
    }

    fn stop_transfer(&mut self) {
        for mut child in self.children.drain(..) {
            // Already gone is fine: only the paths matter here.
            let _gone = child.kill();
            let _status = child.wait();
        }
    }

    fn finish(mut self) -> String {
        self.stop_transfer();
        let (status, log) = self.daemon.take().unwrap().stop().unwrap();
        assert!(status.success(), "{log}");
        assert!(!self.pins.exists(), "{} left behind", self.pins.display());
        log
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_transfer();
    }
}

/// A warning, but the D-Bus one (no system bus here) and the routing-sanity one (the two
/// hosts reach each other on-link, with no default route).
fn loud(log: &str) -> Option<&str> {
    log.lines().find(|l| {
        l.contains("WARN") && !l.contains("mptcpd::dbus") && !l.contains("no default route")
    })
}

#[test]
fn kernel_pm_a_dead_path_is_tested_outside_the_connections_and_re_added_once_answered() {
    const TEST: &str =
        "kernel_pm_a_dead_path_is_tested_outside_the_connections_and_re_added_once_answered";
    if !skip::require_root(TEST) || !have_nft(TEST) {
        return;
    }
    // No --path-manager: `addr_adv` handles the connections, `health` observes them.
    let mut lab = Lab::new("health-k", false, &["--load-plugins", "addr_adv,health"]);
    lab.until("endpoint for path 2", |lab| lab.has_endpoint("10.0.2.1"));
    lab.transfer(5311);
    let start = lab.tx_bytes("c2");
    lab.until("data on path 2", |lab| {
        lab.tx_bytes("c2") > start + (1 << 20)
    });
    lab.blackhole();
    let daemon = lab.daemon();
    daemon
        .wait_for_log("path 10.0.2.1 dead (was healthy)")
        .unwrap_or_else(|e| panic!("{e}"));
    daemon
        .wait_for_log("path 10.0.2.1: endpoint 2 removed; re-probe in 1 s")
        .unwrap_or_else(|e| panic!("{e}"));
    lab.until("path 2's subflow closed", |lab| {
        lab.established_from("10.0.2.1") == 0
    });
    let joins = lab.joins_sent();
    // Two tests in a row unanswered (one a hold time): the endpoint stayed out, and the
    // kernel sent no join on the path meanwhile.
    let unanswered = "path 10.0.2.1: test from 10.0.2.1 to 10.0.1.2:5311: no answer within \
                      0.9 s: endpoint 2 still removed";
    lab.until("two unanswered tests", |lab| {
        lab.log().matches(unanswered).count() >= 2
    });
    assert!(!lab.has_endpoint("10.0.2.1"), "{}", lab.log());
    assert_eq!(lab.joins_sent(), joins, "no join while the path was dead");
    lab.lift();
    let before = lab.tx_bytes("c2");
    let daemon = lab.daemon();
    daemon
        .wait_for_log(
            "path 10.0.2.1: test from 10.0.2.1 to 10.0.1.2:5311: answered (SYN-ACK; reset at \
             once); re-probe 1: endpoint 2 re-added",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    daemon
        .wait_for_log("re-probe held for 1 s: path in use again, backoff reset")
        .unwrap_or_else(|e| panic!("{e}"));
    // Path 2 carries data again: well beyond handshakes and probes.
    lab.until("data on path 2 after the blackhole", |lab| {
        lab.tx_bytes("c2") > before + (1 << 20)
    });
    // Re-added once (after the answer), with its id and the configured flags.
    let log = lab.log();
    assert_eq!(log.matches("endpoint 2 re-added").count(), 1, "{log}");
    let shown = lab.hosts.client.ip(&["mptcp", "endpoint", "show"]).unwrap();
    let path_2 = shown
        .lines()
        .find(|l| l.starts_with("10.0.2.1 "))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        path_2.contains("id 2") && path_2.contains("subflow") && !path_2.contains("backup"),
        "{path_2}"
    );
    assert!(lab.has_endpoint("10.0.1.1"), "path 1 untouched: {shown}");
    let log = lab.finish();
    let decision = log
        .lines()
        .find(|l| l.contains("path 10.0.2.1 dead (was healthy)"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(decision.contains("RTOs without progress"), "{decision}");
    assert_eq!(loud(&log), None, "nothing loud: {log}");
}

#[test]
fn userspace_pm_a_dead_paths_subflows_are_destroyed_and_re_created_until_they_hold() {
    const TEST: &str =
        "userspace_pm_a_dead_paths_subflows_are_destroyed_and_re_created_until_they_hold";
    if !skip::require_root(TEST) || !have_nft(TEST) {
        return;
    }
    let mut lab = Lab::new(
        "health-u",
        true,
        &["--load-plugins", "mesh,health", "--path-manager", "mesh"],
    );
    lab.transfer(5313);
    lab.dead_and_back(
        "1 subflows destroyed",
        "no answer within 0.9 s: subflows stay closed; re-probe in 0 s",
    );
    let log = lab.log();
    // Re-created once, after a test was answered.
    assert!(
        log.contains("answered (SYN-ACK; reset at once); re-probe 1: 1 subflows re-created"),
        "{log}"
    );
    assert_eq!(log.matches("subflows re-created").count(), 1, "{log}");
    let log = lab.finish();
    assert!(log.contains("path 10.0.2.1 dead (was healthy)"), "{log}");
    assert_eq!(loud(&log), None, "nothing loud: {log}");
}

/// Whether an `ss -tni` line's MPTCP flags say this side made the subflow backup.
fn backup_here(line: &str) -> bool {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("flags:"))
        .is_some_and(|flags| flags.contains('b'))
}

#[test]
fn userspace_pm_a_subflow_joining_a_degraded_path_is_made_backup_at_once() {
    const TEST: &str = "userspace_pm_a_subflow_joining_a_degraded_path_is_made_backup_at_once";
    if !skip::require_root(TEST) || !have_nft(TEST) {
        return;
    }
    // Only the retransmission rate counts (never dead: the subflows must stay).
    let lossy_only = [
        "--health-rtt-percent",
        "0",
        "--health-dead-rtos",
        "0",
        "--health-retrans-percent",
        "5",
    ];
    let mut lab = Lab::with_health(
        "health-j",
        true,
        &["--load-plugins", "mesh,health", "--path-manager", "mesh"],
        2,
        &lossy_only,
    );
    lab.hosts
        .server_input_rule("ip saddr 10.0.2.1 ip length > 200 numgen random mod 100 < 20 drop")
        .unwrap();
    lab.transfer(5314);
    let daemon = lab.daemon();
    daemon
        .wait_for_log("path 10.0.2.1 degraded (was healthy)")
        .unwrap_or_else(|e| panic!("{e}"));
    daemon
        .wait_for_log("path 10.0.2.1: 1 subflows set backup")
        .unwrap_or_else(|e| panic!("{e}"));
    // A second connection while path 2 stays degraded: `mesh` joins it from path 2, and
    // `health` makes that subflow backup on its own (no decision comes).
    lab.transfer(5315);
    lab.daemon()
        .wait_for_log("that joined set backup")
        .unwrap_or_else(|e| panic!("{e}"));
    lab.until("both subflows from path 2 backup in the kernel", |lab| {
        let subflows = lab.subflows_from("10.0.2.1");
        subflows.len() == 2 && subflows.iter().all(|l| backup_here(l))
    });
    let log = lab.finish();
    assert_eq!(
        log.matches("path 10.0.2.1 degraded (was").count(),
        1,
        "{log}"
    );
    assert_eq!(loud(&log), None, "nothing loud: {log}");
}
