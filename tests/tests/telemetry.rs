//! Per-subflow telemetry against the real kernel: the `sock_ops` program on a test cgroup keeps
//! one record per MPTCP subflow of the cgroup's processes (none for plain TCP), with the bytes
//! `MPTCP_FULL_INFO` reports, removes them at close and says so on the ring buffer.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener},
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use mptcpd_bpf::{
    PinDir, SubflowRecord, TELEMETRY_STATS_PIN, TELEMETRY_SUBFLOWS_PIN, Telemetry, TelemetryEvent,
    TelemetryEvents,
};
use mptcpd_common::telemetry::{
    EVENT_CLOSED, EVENT_RESET, EVENT_RETRANS_BURST, EVENT_RTO, RETRANS_BURST_THRESHOLD, event_name,
};
use mptcpd_tests::{
    bins, daemon::process::Daemon, ebpf::cgroup::TestCgroup, net::two_hosts::TwoHosts, skip,
};

/// A subflow as `mptcp-xfer client` printed it from `MPTCP_FULL_INFO`.
#[derive(Debug)]
struct Printed {
    local: SocketAddr,
    remote: SocketAddr,
    bytes_acked: u64,
}

/// `subflow ID: LOCAL -> REMOTE bytes_sent=N bytes_acked=N bytes_received=N`.
fn parse_subflow(line: &str) -> Option<Printed> {
    let rest = line.strip_prefix("subflow ")?;
    let (_, rest) = rest.split_once(": ")?;
    let mut words = rest.split_whitespace();
    let local = words.next()?.parse().ok()?;
    let _arrow = words.next()?;
    let remote = words.next()?.parse().ok()?;
    let bytes_acked = words
        .find_map(|w| w.strip_prefix("bytes_acked="))?
        .parse()
        .ok()?;
    Some(Printed {
        local,
        remote,
        bytes_acked,
    })
}

/// Reads the child's stdout up to the `holding` line; the lines before it.
fn read_until_holding(out: &mut BufReader<ChildStdout>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            out.read_line(&mut line).unwrap(),
            0,
            "client ended: {lines:?}"
        );
        if line.trim() == "holding" {
            return lines;
        }
        lines.push(line.trim().to_owned());
    }
}

/// The two hosts with the kernel PM set to add one subflow on path 2.
fn hosts(prefix: &str) -> TwoHosts {
    let hosts = TwoHosts::new(prefix).unwrap();
    hosts.join_path_2().unwrap();
    hosts
}

fn spawn_server(hosts: &TwoHosts, port: u16) -> Child {
    let mut cmd = hosts
        .server
        .command(bins::path("mptcp-xfer").unwrap())
        .unwrap();
    cmd.args(["server", "--listen", &format!("10.0.1.2:{port}")])
        .stdout(Stdio::piped());
    let mut server = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening"), "{line}");
    server
}

fn netns_cookie(hosts: &TwoHosts) -> u64 {
    hosts
        .client
        .run(mptcpd_bpf::netns_cookie)
        .unwrap()
        .unwrap()
        .expect("a kernel with SO_NETNS_COOKIE")
}

/// Polls the namespace's records until `done` holds (kernel state: bounded, generous).
fn wait_records(
    telemetry: &Telemetry,
    cookie: u64,
    done: impl Fn(&[SubflowRecord]) -> bool,
) -> Vec<SubflowRecord> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = telemetry.subflows(cookie).unwrap();
        if done(&records) || Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A test cgroup with telemetry attached, watching the client's namespace.
struct Watched {
    cgroup: TestCgroup,
    telemetry: Telemetry,
    cookie: u64,
    rt: tokio::runtime::Runtime,
    events: TelemetryEvents,
}

fn watch(hosts: &TwoHosts, prefix: &str) -> Watched {
    let cgroup = TestCgroup::new(prefix).unwrap();
    let mut telemetry = Telemetry::attach(cgroup.path()).unwrap();
    let cookie = netns_cookie(hosts);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = rt.block_on(async { telemetry.events(cookie) }).unwrap();
    Watched {
        cgroup,
        telemetry,
        cookie,
        rt,
        events,
    }
}

/// `mptcp-xfer client` to the server's path-1 address, in the client's namespace and `cgroup`.
fn client_command(hosts: &TwoHosts, cgroup: &TestCgroup, port: u16, bytes: u64) -> Command {
    let mut client = hosts
        .client
        .command(bins::path("mptcp-xfer").unwrap())
        .unwrap();
    client
        .args(["client", "--connect", &format!("10.0.1.2:{port}")])
        .args(["--bytes", &bytes.to_string(), "--wait-extra-subflows", "1"]);
    cgroup.join_on_spawn(&mut client).unwrap();
    client
}

#[test]
fn records_each_mptcp_subflow_with_its_bytes_and_drops_it_at_close() {
    if !skip::require_root("records_each_mptcp_subflow_with_its_bytes_and_drops_it_at_close") {
        return;
    }
    let hosts = hosts("mptcpd-t-tel");
    let Watched {
        cgroup,
        telemetry,
        cookie,
        rt,
        mut events,
    } = watch(&hosts, "mptcpd-t-tel");

    // A plain TCP connection from the cgroup gets no record.
    let plain = hosts
        .server
        .run(|| TcpListener::bind("10.0.1.2:5201"))
        .unwrap()
        .unwrap();
    let mut bash = hosts.client.command("bash").unwrap();
    bash.args(["-c", "exec 3<>/dev/tcp/10.0.1.2/5201 && echo tcp >&3"]);
    cgroup.join_on_spawn(&mut bash).unwrap();
    let status = bash.status().unwrap();
    assert!(status.success());
    let (mut conn, _) = plain.accept().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "tcp\n");
    assert_eq!(
        telemetry.stats().unwrap().created,
        0,
        "a record for plain TCP"
    );

    // An MPTCP transfer over both paths, held open once everything is acknowledged.
    let mut server = spawn_server(&hosts, 5202);
    let mut client = client_command(&hosts, &cgroup, 5202, 4 << 20)
        .arg("--hold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(client.stdout.take().unwrap());
    let lines = read_until_holding(&mut out);
    let printed: Vec<Printed> = lines.iter().filter_map(|l| parse_subflow(l)).collect();
    assert_eq!(printed.len(), 2, "{lines:?}");
    let token = lines
        .iter()
        .find_map(|l| l.strip_prefix("connection token 0x")?.split(':').next())
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| panic!("no token in {lines:?}"));

    let records = wait_records(&telemetry, cookie, |r| r.len() == printed.len());
    assert_eq!(records.len(), 2, "{records:#?}");
    for sf in &printed {
        let record = records
            .iter()
            .find(|r| r.local() == sf.local && r.remote() == sf.remote)
            .unwrap_or_else(|| panic!("no record for {sf:?} in {records:#?}"));
        // The kernel calls the RTT callback once per round trip (tcp_rtt_estimator), so while
        // the connection idles the record may lag by the last window; never ahead.
        assert!(
            record.bytes_acked <= sf.bytes_acked && record.bytes_acked > 0,
            "{sf:?} {record:#?}"
        );
        assert_eq!(record.state, 1, "ESTABLISHED: {record:#?}");
        assert_eq!(record.netns_cookie, cookie);
        assert_eq!(record.token, token, "{record:#?}");
        assert!(record.rttvar_us > 0, "{record:#?}");
    }
    // Another namespace's view holds none of them.
    assert_eq!(telemetry.subflows(cookie.wrapping_add(1)).unwrap(), []);

    // Close: the records go, and the ring buffer says so once per subflow.
    client.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(client.wait().unwrap().success());
    assert!(server.wait().unwrap().success());
    let left = wait_records(&telemetry, cookie, <[SubflowRecord]>::is_empty);
    assert!(left.is_empty(), "left after close: {left:#?}");
    let mut closed = Vec::new();
    rt.block_on(async {
        while closed.len() < records.len() {
            let event = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .expect("a close event within 10 s")
                .unwrap();
            if matches!(event.kind, EVENT_CLOSED | EVENT_RESET) {
                // At close the figures are final: what MPTCP_FULL_INFO reported, plus the
                // sequence number of an acknowledged FIN.
                let sf = printed
                    .iter()
                    .find(|sf| sf.local == event.record.local())
                    .unwrap_or_else(|| panic!("close of an unknown subflow: {event:#?}"));
                let acked = event.record.bytes_acked;
                assert!(
                    acked == sf.bytes_acked || acked == sf.bytes_acked + 1,
                    "{sf:?} {event:#?}"
                );
                closed.push(event.record.cookie);
            }
        }
    });
    closed.sort_unstable();
    let mut expected: Vec<u64> = records.iter().map(|r| r.cookie).collect();
    expected.sort_unstable();
    assert_eq!(closed, expected);
    let counters = telemetry.stats().unwrap();
    assert_eq!(
        (counters.created, counters.removed, counters.evicted),
        (2, 2, 0),
        "{counters:?}"
    );
}

/// Whether `nft` runs; skips `test` with one line if not.
fn have_nft(test: &str) -> bool {
    let found = Command::new("nft").arg("--version").output().is_ok();
    if !found {
        skip::skip(test, "needs nft (Debian package nftables)");
    }
    found
}

/// Adds `rule` to an input-hook chain in the server's namespace (the receiving side: a drop
/// there is a lost packet, not a local error).
fn server_input_rule(hosts: &TwoHosts, rule: &str) {
    let mut nft = hosts.server.command("nft").unwrap();
    let mut nft = nft.args(["-f", "-"]).stdin(Stdio::piped()).spawn().unwrap();
    let table = format!(
        "table inet lossy {{\n chain input {{\n  type filter hook input priority 0;\n  {rule}\n }}\n}}\n"
    );
    nft.stdin
        .take()
        .unwrap()
        .write_all(table.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success());
}

/// Waits (at most 30 s) for an event of `kind`.
fn wait_event(
    rt: &tokio::runtime::Runtime,
    events: &mut TelemetryEvents,
    kind: u32,
) -> TelemetryEvent {
    rt.block_on(async {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), events.next())
                .await
                .unwrap_or_else(|_| panic!("no {} event within 30 s", event_name(kind)))
                .unwrap();
            if event.kind == kind {
                return event;
            }
        }
    })
}

/// Watches a new test cgroup, runs a transfer from it until an event of `kind` comes (at most
/// 30 s), stops the transfer and returns the event.
fn transfer_until(
    hosts: &TwoHosts,
    prefix: &str,
    port: u16,
    bytes: u64,
    kind: u32,
) -> TelemetryEvent {
    let Watched {
        cgroup,
        telemetry: _telemetry,
        cookie: _,
        rt,
        mut events,
    } = watch(hosts, prefix);
    let mut server = spawn_server(hosts, port);
    let mut client = client_command(hosts, &cgroup, port, bytes)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let event = wait_event(&rt, &mut events, kind);
    for child in [&mut client, &mut server] {
        // Already gone is fine: only the ends matter here.
        let _gone = child.kill();
        let _status = child.wait();
    }
    event
}

#[test]
fn a_retransmission_burst_event_arrives_on_a_lossy_path() {
    const TEST: &str = "a_retransmission_burst_event_arrives_on_a_lossy_path";
    if !skip::require_root(TEST) || !have_nft(TEST) {
        return;
    }
    let hosts = hosts("mptcpd-t-burst");
    // A fifth of the data segments lost on both paths: fast retransmissions by the dozen.
    server_input_rule(&hosts, "ip length > 200 numgen random mod 100 < 20 drop");
    let burst = transfer_until(&hosts, "mptcpd-t-burst", 5205, 8 << 20, EVENT_RETRANS_BURST);
    assert_eq!(burst.detail, RETRANS_BURST_THRESHOLD, "{burst:#?}");
    assert!(
        burst.record.total_retrans >= RETRANS_BURST_THRESHOLD,
        "{burst:#?}"
    );
}

#[test]
fn an_rto_event_arrives_when_a_path_is_blackholed() {
    const TEST: &str = "an_rto_event_arrives_when_a_path_is_blackholed";
    if !skip::require_root(TEST) || !have_nft(TEST) {
        return;
    }
    let hosts = hosts("mptcpd-t-rto");
    // Path 2 lets the join's small handshake packets through and drops every data segment
    // in the receiving namespace's input hook: the link stays up, the data is lost.
    server_input_rule(&hosts, "iifname \"s2\" ip length > 200 drop");

    // Path 1 slow, so that the scheduler must put data on path 2 too.
    let tc = hosts
        .client
        .command("tc")
        .unwrap()
        .args(["qdisc", "add", "dev", "c1", "root", "tbf", "rate", "20mbit"])
        .args(["burst", "32kbit", "latency", "100ms"])
        .status()
        .unwrap();
    assert!(tc.success());
    let rto = transfer_until(&hosts, "mptcpd-t-rto", 5203, 4 << 20, EVENT_RTO);
    // The blackholed subflow's, from the client's path-2 address.
    assert_eq!(
        rto.record.local().ip(),
        IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1)),
        "{rto:#?}"
    );
    assert!(rto.record.rto_count >= 1, "{rto:#?}");
}

#[test]
fn maps_are_pinned_beside_the_daemons_and_unpinned_on_drop() {
    if !skip::require_root("maps_are_pinned_beside_the_daemons_and_unpinned_on_drop") {
        return;
    }
    let cgroup = TestCgroup::new("mptcpd-t-telpin").unwrap();
    let telemetry = Telemetry::attach(cgroup.path()).unwrap();
    let pins = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/mptcpd-test-{}-tel",
        std::process::id()
    ));
    let mut dir = PinDir::open(&pins).unwrap();
    telemetry.pin_maps(&mut dir).unwrap();
    for pin in [TELEMETRY_SUBFLOWS_PIN, TELEMETRY_STATS_PIN] {
        assert!(pins.join(pin).exists(), "{pin} not pinned");
    }
    drop(dir);
    assert!(!pins.exists(), "{} left behind", pins.display());
}

#[test]
fn daemon_with_an_observed_cgroup_logs_its_subflows_events() {
    const TEST: &str = "daemon_with_an_observed_cgroup_logs_its_subflows_events";
    if !skip::require_root(TEST) {
        return;
    }
    let hosts = TwoHosts::new("mptcpd-t-teld").unwrap();
    let cgroup = TestCgroup::new("mptcpd-t-teld").unwrap();
    let pins = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/mptcpd-test-{}-teld",
        std::process::id()
    ));
    let mut cmd = hosts.client.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug", "--bpf-pin-dir"])
        .arg(&pins)
        .arg("--observe-cgroup")
        .arg(cgroup.path());
    let mut daemon = Daemon::start(cmd).unwrap();
    // The log is read beside the readiness notification: wait for the line.
    daemon
        .wait_for_log("subflow telemetry attached to cgroup")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(pins.join(TELEMETRY_SUBFLOWS_PIN).exists());

    let mut server = spawn_server(&hosts, 5204);
    let mut client = hosts
        .client
        .command(bins::path("mptcp-xfer").unwrap())
        .unwrap();
    client
        .args(["client", "--connect", "10.0.1.2:5204", "--bytes", "65536"])
        .stdout(Stdio::null());
    cgroup.join_on_spawn(&mut client).unwrap();
    assert!(client.status().unwrap().success());
    assert!(server.wait().unwrap().success());
    // The initial subflow's close reaches the daemon through the ring buffer.
    daemon
        .wait_for_log("subflow 10.0.1.1:")
        .unwrap_or_else(|e| panic!("{e}: {}", daemon.log()));
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("subflow 10.0.1.1:"))
        .unwrap();
    assert!(line.contains("-> 10.0.1.2:5204"), "{line}");
    assert!(
        line.contains(": closed") || line.contains(": reset"),
        "{line}"
    );
    assert!(!pins.exists(), "{} left behind", pins.display());
}

/// Without a cgroup named, the daemon observes the root for the socket counts but leaves
/// subflow telemetry off.
#[test]
fn daemon_without_an_observed_cgroup_leaves_subflow_telemetry_off() {
    const TEST: &str = "daemon_without_an_observed_cgroup_leaves_subflow_telemetry_off";
    if !skip::require_root(TEST) {
        return;
    }
    let netns = mptcpd_tests::net::netns::NetNs::new("mptcpd-t-teloff").unwrap();
    let pins = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/mptcpd-test-{}-teloff",
        std::process::id()
    ));
    let mut cmd = netns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug", "--bpf-pin-dir"])
        .arg(&pins);
    let daemon = Daemon::start(cmd).unwrap();
    assert!(!pins.join(TELEMETRY_SUBFLOWS_PIN).exists());
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(!log.contains("subflow telemetry"), "{log}");
}
