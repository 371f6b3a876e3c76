//! The `health` plugin's decisions as operators see them, against the real kernel: path 2
//! lossy (a fifth of its data segments dropped in the server's input hook; the daemon with
//! `addr_adv` and `health` on a test cgroup), with the metrics endpoint and a private
//! system-like bus: once path 2 is judged degraded (its subflows stay, made backup), the
//! metrics count the decision and show the path's state, `mptcpctl connections` (text and
//! `--json`) says why its subflows are backup, `mptcpctl top` marks it, and the manager's
//! `PathHealth` has it, and a client subscribed to the manager's `PathDecision` signal
//! heard the decision. (A dead path's subflows are closed: nothing would be left to show.)

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::Output,
    time::{Duration, Instant},
};

use futures_util::StreamExt as _;
use mptcpd_common::dbus::{BUS_NAME, Decision, Judgement, MANAGER_INTERFACE, MANAGER_PATH, signal};
use mptcpd_tests::{
    bins, daemon::process::Daemon, dbus::SystemLikeBus, ebpf::cgroup::TestCgroup,
    net::two_hosts::TwoHosts, prometheus, skip,
};

const TEST: &str = "a_degraded_paths_decision_is_in_the_metrics_and_in_mptcpctl";
const PORTS: [u16; 2] = [5321, 5322];
/// Inside the client's namespace.
const METRICS: &str = "127.0.0.1:9531";
/// The lossy path's client address.
const PATH_2: &str = "10.0.2.1";
/// A bound on a hang while waiting for a decision (kernel timers): not a performance figure.
const WAIT: Duration = Duration::from_secs(60);

/// Polls `probe` until it returns `Some` (at most [`WAIT`]); `None` after that.
fn poll<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ctl(hosts: &TwoHosts, bus: &SystemLikeBus, args: &[&str]) -> Output {
    let mut cmd = hosts
        .client
        .command(bins::path("mptcpctl").unwrap())
        .unwrap();
    cmd.args(args).env("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
    cmd.output().unwrap()
}

/// The manager's `PathHealth` property.
fn manager_path_health(bus: &SystemLikeBus) -> HashMap<String, Judgement> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let conn = zbus::connection::Builder::address(bus.address())
            .unwrap()
            .build()
            .await
            .unwrap();
        let proxy = zbus::Proxy::new(&conn, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE)
            .await
            .unwrap();
        proxy.get_property("PathHealth").await.unwrap()
    })
}

/// Listens to the manager's `PathDecision` signals in the background (subscribed when this
/// returns): the first that judged [`PATH_2`] degraded, or `None` after [`WAIT`].
fn listen_for_the_decision(bus: &SystemLikeBus) -> std::thread::JoinHandle<Option<Decision>> {
    let address = bus.address().to_owned();
    let (subscribed, is_subscribed) = std::sync::mpsc::channel();
    let listener = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let conn = zbus::connection::Builder::address(address.as_str())
                .unwrap()
                .build()
                .await
                .unwrap();
            let rule = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .sender(BUS_NAME)
                .unwrap()
                .interface(MANAGER_INTERFACE)
                .unwrap()
                .member(signal::PATH_DECISION)
                .unwrap()
                .build();
            let mut decisions = zbus::MessageStream::for_match_rule(rule, &conn, None)
                .await
                .unwrap();
            subscribed.send(()).unwrap();
            let degraded = async {
                while let Some(Ok(message)) = decisions.next().await {
                    let decision: Decision = message.body().deserialize().unwrap();
                    if decision.address == PATH_2 && decision.to == "degraded" {
                        return Some(decision);
                    }
                }
                None
            };
            tokio::time::timeout(WAIT, degraded).await.ok().flatten()
        })
    });
    is_subscribed.recv().unwrap();
    listener
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Our daemon in the client's namespace with `addr_adv` and `health` on `cgroup`, metrics at
/// [`METRICS`], on `bus`; once its endpoint for path 2 is there.
fn start_daemon(
    hosts: &TwoHosts,
    cgroup: &TestCgroup,
    bus: &SystemLikeBus,
    pins: &std::path::Path,
) -> Daemon {
    let mut cmd = hosts.client.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--bpf-pin-dir"])
        .arg(pins)
        .arg("--observe-cgroup")
        .arg(cgroup.path())
        .args(["--notify-flags", "existing,skip_loopback,skip_link_local"])
        .args([
            "--addr-flags",
            "subflow",
            "--load-plugins",
            "addr_adv,health",
        ])
        .args(["--metrics-address", METRICS])
        // Only the retransmission rate counts (never dead: the subflows must stay); one peer
        // is enough.
        .args(["--health-hold", "2", "--health-min-peers", "1"])
        .args(["--health-rtt-percent", "0", "--health-dead-rtos", "0"])
        .args(["--health-retrans-percent", "5"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
    let mut daemon = Daemon::start(cmd).unwrap();
    daemon.wait_for_log("D-Bus: serving").unwrap();
    daemon
        .wait_for_log("subflow telemetry attached to cgroup")
        .unwrap();
    let endpoint_added = poll(|| {
        let shown = hosts.client.ip(&["mptcp", "endpoint", "show"]).unwrap();
        shown.contains(&format!("{PATH_2} ")).then_some(())
    });
    assert!(endpoint_added.is_some(), "{}", daemon.log());
    daemon
}

/// What the operator sees once path 2 was judged degraded (each `None` if it never showed).
struct Seen {
    /// The scrape that shows the state.
    scraped: Option<String>,
    /// `mptcpctl connections` once a path-2 subflow says why.
    listed: Option<String>,
    /// The last `mptcpctl connections` read.
    last: String,
    json: String,
    top: String,
    manager: HashMap<String, Judgement>,
    /// The `PathDecision` signal that judged path 2 degraded.
    signal: Option<Decision>,
}

const WHY: &str = "(health: degraded: ";

fn look(
    hosts: &TwoHosts,
    bus: &SystemLikeBus,
    signal: std::thread::JoinHandle<Option<Decision>>,
) -> Seen {
    let address: SocketAddr = METRICS.parse().unwrap();
    let state = format!("mptcpd_path_health{{address=\"{PATH_2}\",state=\"degraded\"}} 1");
    let scraped = poll(|| {
        let (status, text) = prometheus::get(&hosts.client, address, "/metrics").ok()?;
        (status == 200 && text.lines().any(|l| l == state)).then_some(text)
    });
    let mut last = String::new();
    let listed = scraped.as_ref().and_then(|_| {
        poll(|| {
            last = stdout(&ctl(hosts, bus, &["connections"]));
            last.lines()
                .any(|l| l.contains(&format!("subflow {PATH_2}:")) && l.contains(WHY))
                .then(|| last.clone())
        })
    });
    Seen {
        scraped,
        listed,
        last,
        json: stdout(&ctl(hosts, bus, &["connections", "--json"])),
        top: stdout(&ctl(hosts, bus, &["top", "--iterations", "1"])),
        manager: manager_path_health(bus),
        signal: signal.join().unwrap(),
    }
}

#[test]
fn a_degraded_paths_decision_is_in_the_metrics_and_in_mptcpctl() {
    if !skip::require_root(TEST) {
        return;
    }
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        skip::skip(TEST, "needs nft (Debian package nftables)");
        return;
    }
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let hosts = TwoHosts::new("mptcpd-t-hobs").unwrap();
    TwoHosts::set_limits(&hosts.server).unwrap();
    hosts.client.ip(&["link", "set", "lo", "up"]).unwrap();
    let cgroup = TestCgroup::new("mptcpd-t-hobs").unwrap();
    let pins = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/mptcpd-test-{}-hobs",
        std::process::id()
    ));
    let daemon = start_daemon(&hosts, &cgroup, &bus, &pins);
    let signal = listen_for_the_decision(&bus);
    // Both paths at 20 Mbit/s: the transfers last long enough (seconds) for the plugin to
    // judge past slow start and over a window.
    hosts.shape_client(&["c1", "c2"]).unwrap();
    hosts
        .server_input_rule(&format!(
            "ip saddr {PATH_2} ip length > 200 numgen random mod 100 < 20 drop"
        ))
        .unwrap();
    let mut children = Vec::new();
    for port in PORTS {
        children.push(hosts.xfer_server(port, 0).unwrap());
        let mut client = hosts.xfer_client(port, 64 << 20).unwrap();
        cgroup.join_on_spawn(&mut client).unwrap();
        children.push(client.spawn().unwrap());
    }
    let seen = look(&hosts, &bus, signal);
    for child in &mut children {
        // Already gone is fine: only the decision matters here.
        let _gone = child.kill();
        let _status = child.wait();
    }
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    check(&seen, &log);
    assert!(!pins.exists(), "{} left behind", pins.display());
}

fn check(seen: &Seen, log: &str) {
    let scraped = seen
        .scraped
        .as_ref()
        .unwrap_or_else(|| panic!("path {PATH_2} never degraded in the metrics\n{log}"));
    assert!(
        scraped
            .lines()
            .any(|l| l
                .starts_with("mptcpd_health_decisions_total{plugin=\"health\",to=\"degraded\"} ")),
        "{scraped}"
    );
    let listed = seen
        .listed
        .as_ref()
        .unwrap_or_else(|| panic!("no {WHY:?} in mptcpctl connections:\n{}\n{log}", seen.last));
    let line = listed.lines().find(|l| l.contains(WHY)).unwrap_or_default();
    assert!(
        line.contains("% retransmitted") && line.contains("; endpoint 2 set backup"),
        "{line}"
    );
    // Path 1 was never judged: its subflows say nothing about health.
    assert!(
        !listed
            .lines()
            .any(|l| l.contains("subflow 10.0.1.1:") && l.contains("(health:")),
        "{listed}"
    );
    let json = &seen.json;
    let judged: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .flat_map(|c: serde_json::Value| c["subflows"].as_array().cloned().unwrap_or_default())
        .filter(|s| {
            s["local"]
                .as_str()
                .is_some_and(|l| l.starts_with(&format!("{PATH_2}:")))
        })
        .collect();
    assert!(!judged.is_empty(), "{json}");
    for subflow in &judged {
        assert_eq!(subflow["health"]["state"], "degraded", "{json}");
    }
    assert!(seen.top.contains(" [degraded]"), "{}", seen.top);
    let manager = &seen.manager;
    let judged = &manager[PATH_2];
    assert_eq!(judged.state, "degraded", "{manager:?}");
    assert!(
        judged.reason.contains("; endpoint 2 set backup"),
        "{manager:?}"
    );
    assert!(!manager.contains_key("10.0.1.1"), "{manager:?}");
    let signal = seen
        .signal
        .as_ref()
        .unwrap_or_else(|| panic!("no PathDecision signal for {PATH_2}\n{log}"));
    assert_eq!(signal.plugin, "health", "{signal:?}");
    assert_eq!(signal.from, "healthy", "{signal:?}");
    assert!(signal.reason.contains("% retransmitted"), "{signal:?}");
    assert_eq!(signal.action, "endpoint 2 set backup", "{signal:?}");
}
