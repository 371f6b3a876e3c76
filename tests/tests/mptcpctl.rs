//! `mptcpctl` against the real kernel: what it sets is what `ip mptcp` sees, errors are one
//! line, and the userspace path manager's commands (which iproute2 6.1 lacks) reach the peer.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Output, Stdio},
    sync::mpsc::{Receiver, channel},
    time::{Duration, Instant},
};

use mptcpd_tests::{
    bins,
    net::{
        netns::NetNs,
        sysctl,
        veth::{Address, VethPair},
    },
    skip,
};
use serde_json::Value;

fn ctl(ns: &NetNs, args: &[&str]) -> Output {
    let mut cmd = ns.command(bins::path("mptcpctl").unwrap()).unwrap();
    cmd.args(args).output().unwrap()
}

fn ok(ns: &NetNs, args: &[&str]) -> String {
    let out = ctl(ns, args);
    assert!(
        out.status.success(),
        "mptcpctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `mptcpctl announce` of 198.51.100.1 as `id` on connection `token`.
fn announce(ns: &NetNs, token: &str, id: &str) {
    ok(
        ns,
        &[
            "announce",
            "--token",
            token,
            "--addr",
            "198.51.100.1",
            "--id",
            id,
        ],
    );
}

fn fails(ns: &NetNs, args: &[&str]) -> String {
    let out = ctl(ns, args);
    assert!(!out.status.success(), "mptcpctl {args:?} succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn endpoints_and_limits_match_what_ip_mptcp_sees() {
    if !skip::require_root("endpoints_and_limits_match_what_ip_mptcp_sees") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-ctl").unwrap();
    let peer = NetNs::new("mptcpd-t-ctl").unwrap();
    let _link = VethPair::new("v-a", &ns, "v-b", &peer).unwrap();
    // A signal endpoint with a port listens there: the address must be local.
    let _v6 = Address::add(&ns, "v-a", "2001:db8::1/64").unwrap();

    ok(
        &ns,
        &[
            "endpoint",
            "add",
            "198.51.100.1",
            "--dev",
            "v-a",
            "--id",
            "5",
            "subflow",
            "backup",
        ],
    );
    ok(
        &ns,
        &["endpoint", "add", "2001:db8::1", "--port", "8080", "signal"],
    );
    let shown = ok(&ns, &["endpoint", "show"]);
    assert!(
        shown.contains("198.51.100.1 id 5 subflow backup dev v-a"),
        "{shown}"
    );
    assert!(shown.contains("2001:db8::1 port 8080 id "), "{shown}");
    let ip_shown = ns.ip(&["mptcp", "endpoint", "show"]).unwrap();
    assert!(
        ip_shown.contains("198.51.100.1 id 5 subflow backup dev v-a"),
        "{ip_shown}"
    );

    ok(&ns, &["set-flags", "--id", "5", "nobackup"]);
    // Id 0 is no endpoint: refused before anything reaches the kernel.
    let zero = fails(&ns, &["set-flags", "--id", "0", "backup"]);
    assert!(zero.starts_with("mptcpctl: "), "{zero}");
    assert!(zero.contains("--id"), "{zero}");
    let one: Value =
        serde_json::from_str(ok(&ns, &["endpoint", "show", "5", "--json"]).trim()).unwrap();
    assert_eq!(one["flags"], serde_json::json!(["subflow"]));
    assert_eq!(one["dev"], "v-a");

    let duplicate = fails(
        &ns,
        &["endpoint", "add", "198.51.100.1", "--id", "5", "subflow"],
    );
    assert!(duplicate.starts_with("mptcpctl: "), "{duplicate}");
    let no_dev = fails(
        &ns,
        &[
            "endpoint",
            "add",
            "198.51.100.9",
            "--dev",
            "nosuch0",
            "subflow",
        ],
    );
    assert!(no_dev.contains("nosuch0"), "{no_dev}");

    ok(&ns, &["limits", "set", "--subflows", "4"]);
    assert_eq!(
        ok(&ns, &["limits", "show"]).trim(),
        "add_addr_accepted 0 subflows 4"
    );
    let limits: Value =
        serde_json::from_str(ok(&ns, &["limits", "show", "--json"]).trim()).unwrap();
    assert_eq!(limits["subflows"], 4);
    let ip_limits = ns.ip(&["mptcp", "limits", "show"]).unwrap();
    assert!(ip_limits.contains("subflows 4"), "{ip_limits}");

    ok(&ns, &["endpoint", "del", "5"]);
    assert!(!ok(&ns, &["endpoint", "show"]).contains("198.51.100.1"));
    ok(&ns, &["endpoint", "flush"]);
    assert_eq!(ok(&ns, &["endpoint", "show"]).trim(), "");
}

/// `mptcpctl monitor --json` in `ns`, read line by line; killed on drop.
struct Monitor {
    child: Child,
    lines: Receiver<String>,
}

impl Monitor {
    fn start(ns: &NetNs) -> Self {
        let mut cmd = ns.command(bins::path("mptcpctl").unwrap()).unwrap();
        cmd.args(["monitor", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _sent = tx.send(line);
            }
        });
        // mptcpctl says on stderr when it has joined the events group.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        assert!(first.contains("monitoring"), "{first}");
        Self { child, lines }
    }

    /// The next event whose `event` field is `kind` (bounded by a hang limit).
    fn wait_for(&self, kind: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} event"));
            let value: Value = serde_json::from_str(&line).unwrap();
            if value["event"] == kind {
                return value;
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario against the kernel, step by step"
)]
fn userspace_pm_commands_reach_the_peer() {
    if !skip::require_root("userspace_pm_commands_reach_the_peer") {
        return;
    }
    let client = NetNs::new("mptcpd-t-ctlc").unwrap();
    let server = NetNs::new("mptcpd-t-ctls").unwrap();
    let _a = VethPair::new("c-a", &client, "s-a", &server).unwrap();
    let _b = VethPair::new("c-b", &client, "s-b", &server).unwrap();
    let _addrs = [
        Address::add(&client, "c-a", "192.0.2.1/24").unwrap(),
        Address::add(&server, "s-a", "192.0.2.2/24").unwrap(),
        Address::add(&client, "c-b", "198.51.100.1/24").unwrap(),
        Address::add(&server, "s-b", "198.51.100.2/24").unwrap(),
    ];
    sysctl::set_in(&client, "net.mptcp.pm_type", "1").unwrap();
    ok(
        &server,
        &[
            "limits",
            "set",
            "--subflows",
            "2",
            "--add-addr-accepted",
            "2",
        ],
    );
    let client_events = Monitor::start(&client);
    let server_events = Monitor::start(&server);

    // A connection that stays open while the commands run: the server reads until EOF.
    let xfer = bins::path("mptcp-xfer").unwrap();
    let mut srv = server.command(&xfer).unwrap();
    srv.args(["server", "--listen", "0.0.0.0:5301"])
        .stdout(Stdio::piped());
    let mut srv = srv.spawn().unwrap();
    let mut srv_out = BufReader::new(srv.stdout.take().unwrap());
    let mut listening = String::new();
    srv_out.read_line(&mut listening).unwrap();
    assert!(listening.starts_with("listening"), "{listening}");
    let conn = client
        .run(|| mptcpd_tests::sockets::mptcp::connect("192.0.2.2:5301".parse().unwrap()).unwrap())
        .unwrap();
    std::io::Write::write_all(&mut &conn, b"hello").unwrap();
    let established = client_events.wait_for("ESTABLISHED");
    let token = u32::from_str_radix(
        established["token"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap()
    .to_string();

    announce(&client, &token, "5");
    let announced = server_events.wait_for("ANNOUNCED");
    assert_eq!(announced["remote_id"], 5);
    assert_eq!(announced["address"], "198.51.100.1");

    ok(
        &client,
        &[
            "subflow",
            "create",
            "--token",
            &token,
            "--local",
            "198.51.100.1",
            "--local-id",
            "5",
            "--remote",
            "192.0.2.2:5301",
        ],
    );
    let joined = client_events.wait_for("SF_ESTABLISHED");
    assert_eq!(joined["local_id"], 5);
    let local = joined["local"].as_str().unwrap().to_owned();

    let set_flags = |word| {
        [
            "set-flags",
            "--token",
            token.as_str(),
            "--local",
            local.as_str(),
            "--remote",
            "192.0.2.2:5301",
            word,
        ]
    };
    ok(&client, &set_flags("backup"));
    assert_eq!(server_events.wait_for("SF_PRIORITY")["backup"], true);
    // fullmesh is no subflow flag: the kernel would take the request as "backup off".
    for word in ["fullmesh", "nofullmesh"] {
        let refused = fails(&client, &set_flags(word));
        assert!(refused.contains("use backup or nobackup"), "{refused}");
    }
    ok(&client, &set_flags("backup"));
    // The next priority the peer sees is this backup again: the refusals sent nothing (an
    // accepted fullmesh would have arrived first, as backup off).
    assert_eq!(server_events.wait_for("SF_PRIORITY")["backup"], true);

    ok(
        &client,
        &[
            "subflow",
            "destroy",
            "--token",
            &token,
            "--local",
            &local,
            "--remote",
            "192.0.2.2:5301",
        ],
    );
    assert_eq!(client_events.wait_for("SF_CLOSED")["local"], local.as_str());

    // REMOVE withdraws an announced id from the peer.
    announce(&client, &token, "6");
    assert_eq!(server_events.wait_for("ANNOUNCED")["remote_id"], 6);
    ok(&client, &["remove", "--token", &token, "--id", "6"]);
    assert_eq!(server_events.wait_for("REMOVED")["remote_id"], 6);

    let bad = fails(&client, &["remove", "--token", "1", "--id", "5"]);
    assert!(bad.contains("invalid token"), "{bad}");

    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut received = String::new();
    srv_out.read_line(&mut received).unwrap();
    assert!(received.starts_with("received 5 bytes"), "{received}");
    assert!(srv.wait().unwrap().success());
}
