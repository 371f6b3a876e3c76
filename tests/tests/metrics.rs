//! Prometheus metrics (`--metrics-address`): the daemon's `/metrics` is `OpenMetrics` text with
//! every family, per path (address and interface) and for the daemon itself; and a real
//! Prometheus (Debian's, unpacked, run in the test namespace) scrapes it and answers queries.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    time::Instant,
};

use mptcpd_tests::{
    bins,
    daemon::process::{Daemon, LIVENESS},
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
    prometheus::{self, Prometheus},
    skip,
    sockets::mptcp,
};

/// Where the daemon serves its metrics, inside the test's namespace only.
const METRICS: &str = "127.0.0.1:9477";
/// The daemon's address, on interface `m-a`.
const LOCAL: &str = "192.0.2.1";
/// The per-path gauge once the test's connection is up: both ends of it are in the namespace,
/// so two connections (client and server side) have their initial subflow on this path. The
/// initial subflow's event names no interface: the name comes from the address.
const SUBFLOWS_LINE: &str = "mptcpd_path_subflows{address=\"192.0.2.1\",interface=\"m-a\"} 2";

/// Every family a scrape has (telemetry's only when it runs: not here).
const FAMILIES: &[&str] = &[
    "mptcpd_pm_events counter",
    "mptcpd_pm_overruns counter",
    "mptcpd_plugin_errors counter",
    "mptcpd_endpoints_owned gauge",
    "mptcpd_connections gauge",
    "mptcpd_path_subflows gauge",
    "mptcpd_path_acked_bytes counter",
    "mptcpd_path_received_bytes counter",
    "mptcpd_path_retransmissions counter",
    "mptcpd_path_rtos counter",
    "mptcpd_path_rtt_seconds histogram",
];

/// A namespace with `LOCAL` on a veth to a peer, and our daemon serving metrics there.
struct Setup {
    daemon: Daemon,
    _config: tempfile::NamedTempFile,
    _address: Address,
    _link: VethPair,
    _peer: NetNs,
    ns: NetNs,
}

fn setup(prefix: &str) -> Setup {
    let ns = NetNs::new(prefix).unwrap();
    let peer = NetNs::new(prefix).unwrap();
    let link = VethPair::new("m-a", &ns, "m-b", &peer).unwrap();
    let address = Address::add(&ns, "m-a", &format!("{LOCAL}/24")).unwrap();
    // An empty configuration: /etc/mptcpd/mptcpd.conf must not count.
    let config = tempfile::Builder::new()
        .prefix("mptcpd-metrics-")
        .suffix(".conf")
        .tempfile()
        .unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug", "--config"])
        .arg(config.path())
        .arg(format!("--bpf-pin-dir=/sys/fs/bpf/{}", ns.name()))
        .arg(format!("--metrics-address={METRICS}"));
    let daemon = Daemon::start(cmd).unwrap();
    Setup {
        daemon,
        _config: config,
        _address: address,
        _link: link,
        _peer: peer,
        ns,
    }
}

/// An MPTCP connection to `LOCAL` inside `ns`, held open while the value lives.
fn connect(ns: &NetNs) -> (TcpListener, TcpStream, TcpStream) {
    ns.run(|| {
        let listener = mptcp::listen(format!("{LOCAL}:0").parse().unwrap()).unwrap();
        let client = mptcp::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (listener, client, server)
    })
    .unwrap()
}

/// Scrapes until `done` holds for the text; fails with the last scrape after [`LIVENESS`].
fn scrape_until(setup: &Setup, what: &str, done: impl Fn(&str) -> bool) -> String {
    let address: SocketAddr = METRICS.parse().unwrap();
    let deadline = Instant::now() + LIVENESS;
    loop {
        let (status, text) = prometheus::get(&setup.ns, address, "/metrics").unwrap();
        assert_eq!(status, 200, "{text}");
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not after {LIVENESS:?}:\n{text}\ndaemon:\n{}",
            setup.daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The value of the sample line that starts with `name ` (no labels).
fn value(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
fn metrics_are_openmetrics_with_every_family_per_path_and_for_the_daemon() {
    if !skip::require_root("metrics_are_openmetrics_with_every_family_per_path_and_for_the_daemon")
    {
        return;
    }
    let setup = setup("mptcpd-t-met");
    let held = connect(&setup.ns);
    let text = scrape_until(&setup, "the connection's subflows", |t| {
        t.lines().any(|l| l == SUBFLOWS_LINE)
    });
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    for family in FAMILIES {
        assert!(
            text.lines().any(|l| l == format!("# TYPE {family}")),
            "{family} in:\n{text}"
        );
    }
    // CREATED and ESTABLISHED of both ends at least.
    assert!(value(&text, "mptcpd_pm_events_total") >= 4, "{text}");
    assert_eq!(value(&text, "mptcpd_connections"), 2, "{text}");
    assert_eq!(value(&text, "mptcpd_pm_overruns_total"), 0, "{text}");
    assert_eq!(value(&text, "mptcpd_plugin_errors_total"), 0, "{text}");
    assert!(!text.contains("token"), "no token in labels:\n{text}");
    drop(held);
    scrape_until(&setup, "the connections closed", |t| {
        value(t, "mptcpd_connections") == 0
    });
    let Setup { daemon, .. } = setup;
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("metrics at http://127.0.0.1:9477/metrics"),
        "{log}"
    );
}

#[test]
fn prometheus_scrapes_the_daemon_and_answers_with_its_metrics() {
    if !skip::require_root("prometheus_scrapes_the_daemon_and_answers_with_its_metrics") {
        return;
    }
    let setup = setup("mptcpd-t-prom");
    let prometheus = Prometheus::start(
        &setup.ns,
        "127.0.0.1:9090".parse().unwrap(),
        METRICS.parse().unwrap(),
    )
    .expect("Debian's prometheus");
    let _held = connect(&setup.ns);
    let events = prometheus
        .wait_for(&setup.ns, "mptcpd_pm_events_total", |samples| {
            samples.iter().any(|(_, v)| *v > 0.0)
        })
        .unwrap();
    assert_eq!(events.len(), 1, "one daemon: {events:?}");
    let subflows = prometheus
        .wait_for(
            &setup.ns,
            "mptcpd_path_subflows{address=\"192.0.2.1\",interface=\"m-a\"}",
            |samples| samples.iter().any(|(_, v)| (*v - 2.0).abs() < 0.5),
        )
        .unwrap();
    assert!(subflows[0].0.contains("\"job\":\"mptcpd\""), "{subflows:?}");
}
