//! The manager's event signals on a private system-like bus, against the real kernel: a
//! client subscribed to them sees, for an MPTCP connection over two paths between two
//! namespaces, the connection and subflow signals in order under one connection object path
//! (no token), and the interface and address signals when a link and an address are added and
//! removed. The health decision signal is checked in `health_observe.rs`.

use std::{
    fmt::Write as _,
    io::{Read as _, Write as _},
    time::Duration,
};

use futures_util::StreamExt as _;
use mptcpd_common::dbus::{
    BUS_NAME, CONNECTION_PATH_PREFIX, ConnectionEvent, InterfaceEvent, LocalAddressEvent,
    MANAGER_INTERFACE, MANAGER_PATH, SubflowEvent, signal,
};
use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    dbus::{self, SystemLikeBus},
    net::{netns::NetNs, two_hosts::TwoHosts},
    sockets::mptcp,
};
use zbus::{MatchRule, MessageStream, message::Message, zvariant::OwnedObjectPath};

const TEST: &str = "a_subscriber_sees_connection_subflow_interface_and_address_signals";
/// A bound on a hang while waiting for the kernel, the daemon or the bus.
const WAIT: Duration = Duration::from_secs(20);
const PORT: u16 = 5331;

/// Our daemon in the client's namespace on the bus at `address` (no existing addresses: the
/// test's own events only).
fn daemon(hosts: &TwoHosts, address: &str) -> Daemon {
    let mut cmd = hosts.client.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug"])
        .args(["--notify-flags", "skip_loopback,skip_link_local"])
        .args([
            "--bpf-pin-dir",
            &format!("/sys/fs/bpf/mptcpd-test-{}-dsig", std::process::id()),
        ])
        .env("DBUS_SYSTEM_BUS_ADDRESS", address);
    Daemon::start(cmd).unwrap()
}

/// The manager's signals, as they come.
struct Signals {
    stream: MessageStream,
}

impl Signals {
    async fn subscribe(address: &str) -> Self {
        let conn = zbus::connection::Builder::address(address)
            .unwrap()
            .build()
            .await
            .unwrap();
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(BUS_NAME)
            .unwrap()
            .path(MANAGER_PATH)
            .unwrap()
            .interface(MANAGER_INTERFACE)
            .unwrap()
            .build();
        let stream = MessageStream::for_match_rule(rule, &conn, None)
            .await
            .unwrap();
        Self { stream }
    }

    /// The next signal whose name is one of `names` (others are skipped).
    async fn next(&mut self, names: &[&str]) -> (String, Message) {
        loop {
            let message = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no {names:?} signal"))
                .unwrap()
                .unwrap();
            let member = message
                .header()
                .member()
                .map(ToString::to_string)
                .unwrap_or_default();
            if names.contains(&member.as_str()) {
                return (member, message);
            }
        }
    }
}

#[test]
fn a_subscriber_sees_connection_subflow_interface_and_address_signals() {
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let hosts = TwoHosts::new("mptcpd-t-dsig").unwrap();
    // Both hosts' limits and the client's subflow endpoint on path 2.
    hosts.join_path_2().unwrap();
    let mut daemon = daemon(&hosts, bus.address());
    daemon.wait_for_log("D-Bus: serving").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut signals = Signals::subscribe(bus.address()).await;
        connection_signals(&hosts, &mut signals).await;
        network_signals(&hosts, &mut signals).await;
    });
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

/// Created, established, the path-2 subflow, closed: in that order, one object path.
async fn connection_signals(hosts: &TwoHosts, signals: &mut Signals) {
    let listener = hosts
        .server
        .run(|| mptcp::listen(format!("10.0.1.2:{PORT}").parse().unwrap()).unwrap())
        .unwrap();
    let client = hosts
        .client
        .run(|| mptcp::connect(format!("10.0.1.2:{PORT}").parse().unwrap()).unwrap())
        .unwrap();
    let (mut server, _) = listener.accept().unwrap();
    (&client).write_all(b"x").unwrap();
    let mut byte = [0_u8; 1];
    server.read_exact(&mut byte).unwrap();
    let info = mptcp::wait_extra_subflows(&client, 1, WAIT).unwrap();
    assert_eq!(info.extra_subflows, 1, "the path-2 subflow joined");
    let local = client.local_addr().unwrap().to_string();

    let connection_names = [
        signal::CONNECTION_CREATED,
        signal::CONNECTION_ESTABLISHED,
        signal::SUBFLOW_ESTABLISHED,
        signal::CONNECTION_CLOSED,
    ];
    let (name, created) = signals.next(&connection_names).await;
    assert_eq!(name, signal::CONNECTION_CREATED);
    let created: ConnectionEvent = created.body().deserialize().unwrap();
    assert!(
        created
            .connection
            .as_str()
            .starts_with(CONNECTION_PATH_PREFIX),
        "{created:?}"
    );
    assert_eq!(created.local, local);
    assert_eq!(created.remote, format!("10.0.1.2:{PORT}"));
    assert!(!created.server_side);
    let path = created.connection.clone();

    let (name, established) = signals.next(&connection_names).await;
    assert_eq!(name, signal::CONNECTION_ESTABLISHED);
    let established: ConnectionEvent = established.body().deserialize().unwrap();
    assert_eq!(established.connection, path);

    let (name, subflow) = signals.next(&connection_names).await;
    assert_eq!(name, signal::SUBFLOW_ESTABLISHED);
    let subflow: SubflowEvent = subflow.body().deserialize().unwrap();
    assert_eq!(subflow.connection, path);
    assert!(subflow.local.starts_with("10.0.2.1:"), "{subflow:?}");
    assert_eq!(subflow.remote, format!("10.0.1.2:{PORT}"));
    assert_eq!(subflow.error, 0);

    // A graceful close on both sides.
    drop(client);
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).unwrap();
    drop(server);
    let (name, closed) = signals.next(&connection_names).await;
    assert_eq!(name, signal::CONNECTION_CLOSED);
    let closed: OwnedObjectPath = closed.body().deserialize().unwrap();
    assert_eq!(closed, path);
}

/// A veth pair added, and an address added and removed.
async fn network_signals(hosts: &TwoHosts, signals: &mut Signals) {
    hosts
        .client
        .ip(&[
            "link", "add", "dsig0", "type", "veth", "peer", "name", "dsig1",
        ])
        .unwrap();
    // A link is new to the daemon once it is ready (up and running).
    for end in ["dsig0", "dsig1"] {
        hosts.client.ip(&["link", "set", end, "up"]).unwrap();
    }
    // The pair's two ends, in either order.
    let mut names = Vec::new();
    for _ in 0..2 {
        let (_, added) = signals.next(&[signal::INTERFACE_ADDED]).await;
        let added: InterfaceEvent = added.body().deserialize().unwrap();
        assert!(added.ready, "{added:?}");
        names.push(added.name);
    }
    names.sort();
    assert_eq!(names, ["dsig0", "dsig1"]);

    hosts
        .client
        .ip(&["addr", "add", "192.0.2.1/24", "dev", "c1"])
        .unwrap();
    let c1 = hosts.client.ip(&["-o", "link", "show", "c1"]).unwrap();
    let c1: u32 = c1.split(':').next().unwrap().trim().parse().unwrap();
    let address_names = [signal::LOCAL_ADDRESS_ADDED, signal::LOCAL_ADDRESS_REMOVED];
    let (name, address) = signals.next(&address_names).await;
    assert_eq!(name, signal::LOCAL_ADDRESS_ADDED);
    let address: LocalAddressEvent = address.body().deserialize().unwrap();
    assert_eq!(
        address,
        LocalAddressEvent {
            index: c1,
            address: "192.0.2.1".to_owned(),
            prefix_len: 24
        }
    );
    hosts
        .client
        .ip(&["addr", "del", "192.0.2.1/24", "dev", "c1"])
        .unwrap();
    let (name, removed) = signals.next(&address_names).await;
    assert_eq!(name, signal::LOCAL_ADDRESS_REMOVED);
    let removed: LocalAddressEvent = removed.body().deserialize().unwrap();
    assert_eq!(removed.address, "192.0.2.1");
}

/// A subscriber that fell behind (here: the daemon's queue made tiny, and a burst of address
/// events) hears `SignalsDropped` with the count, and reads the state again from the objects.
#[test]
fn a_subscriber_that_fell_behind_is_told_how_many_and_reads_the_state_again() {
    const TEST: &str = "a_subscriber_that_fell_behind_is_told_how_many_and_reads_the_state_again";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let ns = NetNs::new("mptcpd-t-dsigov").unwrap();
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    ns.ip(&["link", "add", "ov0", "type", "veth", "peer", "name", "ov1"])
        .unwrap();
    let mut cmd = dbus::daemon_command(&ns, bus.address()).unwrap();
    cmd.arg(format!("--bpf-pin-dir=/sys/fs/bpf/{}", ns.name()))
        .env("MPTCPD_TEST_DBUS_QUEUE", "1");
    let state = tempfile::tempdir().unwrap();
    cmd.arg("--state-dir").arg(state.path());
    let mut daemon = Daemon::start(cmd).unwrap();
    daemon.wait_for_log("D-Bus: serving").unwrap();
    // A connection whose objects the subscriber reads back after the gap.
    let (_client, _server) = ns
        .run(|| {
            let listener = mptcp::listen("127.0.0.1:0".parse().unwrap()).unwrap();
            let client = mptcp::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            (client, server)
        })
        .unwrap();
    let batch = tempfile::NamedTempFile::new().unwrap();
    let mut lines = String::new();
    for n in 1..=200 {
        writeln!(lines, "address add 198.51.100.{n}/32 dev ov0").unwrap();
    }
    std::fs::write(batch.path(), lines).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut signals = Signals::subscribe(bus.address()).await;
        for end in ["ov0", "ov1"] {
            ns.ip(&["link", "set", end, "up"]).unwrap();
        }
        ns.ip(&["-batch", &batch.path().display().to_string()])
            .unwrap();
        let (_, dropped) = signals.next(&[signal::SIGNALS_DROPPED]).await;
        let dropped: u64 = dropped.body().deserialize().unwrap();
        assert!(dropped > 0);
        let conn = zbus::connection::Builder::address(bus.address())
            .unwrap()
            .build()
            .await
            .unwrap();
        let objects = zbus::fdo::ObjectManagerProxy::new(&conn, BUS_NAME, MANAGER_PATH)
            .await
            .unwrap()
            .get_managed_objects()
            .await
            .unwrap();
        let connections = objects
            .keys()
            .filter(|p| p.as_str().starts_with(CONNECTION_PATH_PREFIX))
            .count();
        assert_eq!(connections, 2, "both ends: {objects:?}");
    });
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("event signals dropped: the bus was behind"),
        "{log}"
    );
}
