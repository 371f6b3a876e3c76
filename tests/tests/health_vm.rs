//! The `health` plugin's functional check in the 6.12 VM (`cargo xtask vm-test --kernel 6.12
//! health`; the host has no netem, where it skips with the reason): two paths, the daemon with
//! `addr_adv` (which adds the client's endpoints) and `health` (observing a test cgroup's
//! connections), path 2 silenced by netem while connections from the cgroup send over both
//! paths: path 2 is judged dead and its endpoint taken out, path 1's is untouched; while
//! path 2 is silent the re-probes' connection attempts from it go unanswered and the
//! endpoint stays out; once netem lets it through again an attempt is answered and the
//! endpoint comes back. The host's scenarios are in `health.rs`.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use mptcpd_tests::{
    bins, daemon::process::Daemon, ebpf::cgroup::TestCgroup, features, net::two_hosts::TwoHosts,
    skip,
};

const PORTS: [u16; 2] = [5311, 5312];

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

/// The daemon in the client's namespace: `addr_adv` adds the endpoints, `health` observes the
/// cgroup's connections with `health_args`; pins, state and configuration in temporary places.
struct HealthDaemon {
    daemon: Daemon,
    pins: std::path::PathBuf,
    _config: tempfile::NamedTempFile,
    _state: tempfile::TempDir,
}

impl HealthDaemon {
    fn start(hosts: &TwoHosts, cgroup: &TestCgroup, health_args: &[&str]) -> Self {
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
            .args(health_args);
        let mut daemon = Daemon::start(cmd).unwrap();
        daemon
            .wait_for_log("subflow telemetry attached to cgroup")
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            daemon,
            pins,
            _config: config,
            _state: state,
        }
    }

    /// Stops the daemon (it must exit cleanly and remove its pins); its log.
    fn stop(self) -> String {
        let (status, log) = self.daemon.stop().unwrap();
        assert!(status.success(), "{log}");
        assert!(!self.pins.exists(), "{} left behind", self.pins.display());
        log
    }
}

/// A server per port and a client in the cgroup sending 64 MiB over both paths to each.
fn transfers(hosts: &TwoHosts, cgroup: &TestCgroup) -> Vec<std::process::Child> {
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
    children
}

fn end(children: &mut [std::process::Child]) {
    for child in children {
        // Already gone is fine: only the endpoints matter here.
        let _gone = child.kill();
        let _status = child.wait();
    }
}

/// `tc qdisc ACTION dev DEV root netem ARGS` in the client's namespace; its stderr if refused.
fn netem(hosts: &TwoHosts, action: &str, dev: &str, args: &[&str]) -> Result<(), String> {
    let out = hosts
        .client
        .command("tc")
        .unwrap()
        .args(["qdisc", action, "dev", dev, "root", "netem"])
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The VM's functional check (no figures): both paths limited by netem to 20 Mbit/s (the
/// transfers last seconds and use both paths); once path 2 carries a subflow, netem drops all
/// of its packets on the client's egress (the link stays up); `health` judges path 2 dead from
/// its RTOs without progress, logs the figures and takes its endpoint out (its subflows
/// close); path 1 keeps its endpoint and flags. The re-probes test path 2 outside the
/// connections (unanswered while silent); once netem drops nothing, one is answered and the
/// endpoint is put back.
#[test]
fn vm_netem_loss_on_path_2_makes_health_decide() {
    const VM_TEST: &str = "vm_netem_loss_on_path_2_makes_health_decide";
    if !skip::require_root(VM_TEST) {
        return;
    }
    let hosts = TwoHosts::new("mptcpd-t-hnetem").unwrap();
    if let Err(e) = netem(&hosts, "add", "c2", &["rate", "20mbit"]) {
        features::missing("netem", VM_TEST, &e);
        return;
    }
    netem(&hosts, "add", "c1", &["rate", "20mbit"]).unwrap();
    TwoHosts::set_limits(&hosts.server).unwrap();
    let cgroup = TestCgroup::new("mptcpd-t-hnetem").unwrap();
    // Only a dead path counts (under TCG every path's RTT and losses swing with the
    // emulation's load); one peer is enough.
    let mut daemon = HealthDaemon::start(
        &hosts,
        &cgroup,
        &[
            "--health-hold",
            "2",
            "--health-min-peers",
            "1",
            "--health-rtt-percent",
            "0",
            "--health-retrans-percent",
            "0",
        ],
    );
    let path_2 = endpoint_line(&hosts, "10.0.2.1", Duration::from_secs(30), |l| {
        !l.is_empty()
    });
    assert!(path_2.contains("subflow"), "{path_2}");
    let mut children = transfers(&hosts, &cgroup);
    // A subflow from path 2 established (kernel state, polled), then path 2 goes silent.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ss = hosts
            .client
            .command("ss")
            .unwrap()
            .args(["-Htn", "state", "established", "src", "10.0.2.1"])
            .output()
            .unwrap();
        if !String::from_utf8_lossy(&ss.stdout).trim().is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    netem(&hosts, "change", "c2", &["rate", "20mbit", "loss", "100%"]).unwrap();
    let path_2 = endpoint_line(&hosts, "10.0.2.1", Duration::from_secs(120), str::is_empty);
    let path_1 = endpoint_line(&hosts, "10.0.1.1", Duration::ZERO, |_| true);
    daemon
        .daemon
        .wait_for_log("no answer within 0.9 s: endpoint 2 still removed")
        .unwrap_or_else(|e| panic!("{e}"));
    let still_out = endpoint_line(&hosts, "10.0.2.1", Duration::ZERO, |_| true);
    netem(&hosts, "change", "c2", &["rate", "20mbit"]).unwrap();
    let back = endpoint_line(&hosts, "10.0.2.1", Duration::from_secs(60), |l| {
        !l.is_empty()
    });
    end(&mut children);
    let log = daemon.stop();
    assert!(
        still_out.is_empty(),
        "re-added while silent: {still_out}\n{log}"
    );
    assert!(
        back.contains("id 2") && back.contains("subflow"),
        "{back}\n{log}"
    );
    assert!(
        log.lines().any(
            |l| l.contains("path 10.0.2.1: test from 10.0.2.1 to 10.0.1.2:")
                && l.contains(": answered (")
                && l.contains("endpoint 2 re-added")
        ),
        "{log}"
    );
    assert!(
        path_2.is_empty(),
        "path 2's endpoint still there: {path_2}\n{log}"
    );
    assert!(
        path_1.contains("subflow") && !path_1.contains("backup"),
        "{path_1}\n{log}"
    );
    let decision = log
        .lines()
        .find(|l| l.contains("path 10.0.2.1 dead (was healthy)"))
        .unwrap_or_else(|| panic!("no decision about path 2:\n{log}"));
    assert!(decision.contains("RTOs without progress"), "{decision}");
    assert!(
        log.lines()
            .any(|l| l.contains("path 10.0.2.1: endpoint 2 removed; re-probe in")),
        "{log}"
    );
}
