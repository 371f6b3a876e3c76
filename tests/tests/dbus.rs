//! The daemon's read-only D-Bus surface on a private system-like bus (`dbus-daemon` with our
//! policy file): the name, the manager's properties against the kernel, connection objects
//! that appear and vanish with MPTCP connections, readers without privileges, a daemon
//! without a bus; and `mptcpctl connections`/`top`, which read it.

use std::{
    collections::HashMap,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    process::Output,
    time::{Duration, Instant},
};

use futures_util::StreamExt as _;
use mptcpd_common::dbus::{
    BUS_NAME, CONNECTION_INTERFACE, CONNECTION_PATH_PREFIX, MANAGER_INTERFACE, MANAGER_PATH,
    Subflow,
};
use mptcpd_tests::{
    daemon::process::Daemon,
    dbus::{self, SystemLikeBus},
    net::netns::NetNs,
    sockets::mptcp,
};
use zbus::{
    fdo::{DBusProxy, ObjectManagerProxy},
    zvariant::{OwnedObjectPath, OwnedValue},
};

/// A bound on a hang while waiting for the kernel, the daemon or the bus.
const WAIT: Duration = Duration::from_secs(20);

/// Root, and `dbus-daemon`, or a skip.
/// A namespace with limits and a subflow endpoint on loopback, so that a connection to
/// 127.0.0.1 gets a second subflow from 127.0.0.2.
fn namespace(prefix: &str) -> NetNs {
    let ns = NetNs::new(prefix).unwrap();
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    mptcpd_tests::net::two_hosts::TwoHosts::set_limits(&ns).unwrap();
    ns.ip(&[
        "mptcp",
        "endpoint",
        "add",
        "127.0.0.2",
        "id",
        "7",
        "subflow",
    ])
    .unwrap();
    ns
}

/// Our daemon in `ns` on the bus at `address` (loopback skipped: it adds no endpoints).
fn daemon(ns: &NetNs, address: &str, pins: &str) -> Daemon {
    let mut cmd = dbus::daemon_command(ns, address).unwrap();
    cmd.args(["--bpf-pin-dir", &format!("/sys/fs/bpf/mptcpd-test-{pins}")]);
    Daemon::start(cmd).unwrap()
}

/// An MPTCP connection in `ns` on loopback, with its extra subflow joined.
struct Connection {
    client: TcpStream,
    server: TcpStream,
    _listener: TcpListener,
}

impl Connection {
    fn open(ns: &NetNs) -> Self {
        ns.run(|| {
            let listener = mptcp::listen("127.0.0.1:0".parse().unwrap()).unwrap();
            let client = mptcp::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            (&client).write_all(b"x").unwrap();
            let mut byte = [0_u8; 1];
            (&server).read_exact(&mut byte).unwrap();
            let info = mptcp::wait_extra_subflows(&client, 1, WAIT).unwrap();
            assert_eq!(info.extra_subflows, 1, "the subflow from 127.0.0.2 joined");
            Self {
                client,
                server,
                _listener: listener,
            }
        })
        .unwrap()
    }

    /// A graceful close on both sides (so that both ends see CLOSED).
    fn close(self) {
        let Self {
            client, mut server, ..
        } = self;
        drop(client);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).unwrap();
    }

    fn local(&self) -> SocketAddr {
        self.client.local_addr().unwrap()
    }

    fn remote(&self) -> SocketAddr {
        self.client.peer_addr().unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn manager_property(bus: &zbus::Connection, name: &str) -> OwnedValue {
    let proxy = zbus::Proxy::new(bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE)
        .await
        .unwrap();
    proxy.get_property::<OwnedValue>(name).await.unwrap()
}

/// The connection objects and their properties.
async fn connections(
    bus: &zbus::Connection,
) -> HashMap<OwnedObjectPath, HashMap<String, OwnedValue>> {
    let objects = ObjectManagerProxy::new(bus, BUS_NAME, MANAGER_PATH)
        .await
        .unwrap()
        .get_managed_objects()
        .await
        .unwrap();
    objects
        .into_iter()
        .filter_map(|(path, mut interfaces)| {
            let props = interfaces.remove(CONNECTION_INTERFACE)?;
            Some((path, props))
        })
        .collect()
}

fn string(value: &OwnedValue) -> String {
    String::try_from(value.try_clone().unwrap()).unwrap()
}

/// Waits until `ready` holds of the connection objects.
async fn wait_for_objects(
    bus: &zbus::Connection,
    what: &str,
    ready: impl Fn(&HashMap<OwnedObjectPath, HashMap<String, OwnedValue>>) -> bool,
) -> HashMap<OwnedObjectPath, HashMap<String, OwnedValue>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let objects = connections(bus).await;
        if ready(&objects) {
            return objects;
        }
        assert!(Instant::now() < deadline, "{what}: {objects:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn subflows(props: &HashMap<String, OwnedValue>) -> Vec<Subflow> {
    Vec::<Subflow>::try_from(props["Subflows"].try_clone().unwrap()).unwrap()
}

/// The manager: what the daemon is, and what the kernel holds when read.
async fn check_manager(conn: &zbus::Connection, ns: &NetNs, daemon: &Daemon) {
    let version = manager_property(conn, "Version").await;
    assert_eq!(string(&version), env!("CARGO_PKG_VERSION"));
    assert_eq!(
        string(&manager_property(conn, "PathManager").await),
        "in-kernel"
    );
    let plugins = Vec::<String>::try_from(manager_property(conn, "Plugins").await).unwrap();
    assert!(plugins.iter().any(|p| p == "addr_adv"), "{plugins:?}");
    for plugin in &plugins {
        assert!(daemon.log().contains(plugin.as_str()), "{plugin} loaded");
    }
    let limits = HashMap::<String, u32>::try_from(manager_property(conn, "Limits").await).unwrap();
    assert_eq!(limits, kernel_limits(ns));
    let endpoints = Vec::<(u8, String, u16, u32, Vec<String>)>::try_from(
        manager_property(conn, "Endpoints").await,
    )
    .unwrap();
    assert_eq!(
        endpoints,
        vec![(7, "127.0.0.2".into(), 0, 0, vec!["subflow".into()])]
    );
    ns.ip(&[
        "mptcp",
        "limits",
        "set",
        "subflows",
        "3",
        "add_addr_accepted",
        "4",
    ])
    .unwrap();
    let limits = HashMap::<String, u32>::try_from(manager_property(conn, "Limits").await).unwrap();
    assert_eq!(limits, kernel_limits(ns), "read from the kernel when asked");
    assert_eq!(limits["add_addr_accepted"], 4);
    let config =
        HashMap::<String, String>::try_from(manager_property(conn, "Configuration").await).unwrap();
    assert_eq!(config["notify-flags"], "skip_loopback");
    // No plugin judged a path: an empty map (health_observe.rs has a judged one).
    let health = HashMap::<String, mptcpd_common::dbus::Judgement>::try_from(
        manager_property(conn, "PathHealth").await,
    )
    .unwrap();
    assert!(health.is_empty(), "{health:?}");
}

/// The two ends' objects: their addresses and subflows, and no token.
fn check_objects(
    objects: &HashMap<OwnedObjectPath, HashMap<String, OwnedValue>>,
    connection: &Connection,
) {
    let client_side = objects
        .values()
        .find(|p| string(&p["LocalAddress"]) == connection.local().to_string())
        .expect("the client's end");
    let mut keys: Vec<&str> = client_side.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "Established",
            "LocalAddress",
            "PathHealth",
            "RemoteAddress",
            "ServerSide",
            "Subflows"
        ],
        "no token on the bus"
    );
    assert_eq!(
        string(&client_side["RemoteAddress"]),
        connection.remote().to_string()
    );
    assert!(!bool::try_from(&client_side["ServerSide"]).unwrap());
    let subs = subflows(client_side);
    assert_eq!(subs[0].local, connection.local().to_string());
    assert_eq!(subs[1].local_id, 7);
    assert!(subs[1].local.starts_with("127.0.0.2:"), "{subs:?}");
    assert_eq!(subs[1].remote, connection.remote().to_string());
    let server_side = objects
        .values()
        .find(|p| bool::try_from(&p["ServerSide"]).unwrap())
        .expect("the server's end");
    assert_eq!(
        string(&server_side["LocalAddress"]),
        connection.remote().to_string()
    );
}

/// User nobody reads the manager and lists the connections (`busctl`, as the policy allows).
fn check_unprivileged_reader(address: &str) {
    let nobody = as_nobody(
        address,
        &[
            "get-property",
            BUS_NAME,
            MANAGER_PATH,
            MANAGER_INTERFACE,
            "Version",
        ],
    );
    assert!(
        nobody.status.success(),
        "{}",
        String::from_utf8_lossy(&nobody.stderr)
    );
    let nobody = as_nobody(
        address,
        &[
            "call",
            BUS_NAME,
            MANAGER_PATH,
            "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects",
        ],
    );
    assert!(
        nobody.status.success(),
        "{}",
        String::from_utf8_lossy(&nobody.stderr)
    );
    assert!(String::from_utf8_lossy(&nobody.stdout).contains(CONNECTION_PATH_PREFIX));
}

#[test]
fn the_bus_shows_the_manager_and_follows_connections() {
    const TEST: &str = "the_bus_shows_the_manager_and_follows_connections";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let ns = namespace("mptcpd-t-dbus");
    let mut daemon = daemon(&ns, bus.address(), "dbus");
    daemon
        .wait_for_log("D-Bus: serving org.mptcpd.Mptcpd")
        .unwrap();
    runtime().block_on(async {
        let conn = dbus::client(bus.address()).await;
        let owned = DBusProxy::new(&conn)
            .await
            .unwrap()
            .name_has_owner(BUS_NAME.try_into().unwrap())
            .await
            .unwrap();
        assert!(owned, "{BUS_NAME} is owned");

        check_manager(&conn, &ns, &daemon).await;

        // A connection in the namespace: its two ends appear, with their subflows.
        let manager = ObjectManagerProxy::new(&conn, BUS_NAME, MANAGER_PATH)
            .await
            .unwrap();
        let mut added = manager.receive_interfaces_added().await.unwrap();
        let mut removed = manager.receive_interfaces_removed().await.unwrap();
        let connection = Connection::open(&ns);
        let mut added_paths = Vec::new();
        while added_paths.len() < 2 {
            let signal = tokio::time::timeout(WAIT, added.next())
                .await
                .expect("InterfacesAdded")
                .unwrap();
            let args = signal.args().unwrap();
            assert!(
                args.interfaces_and_properties
                    .contains_key(CONNECTION_INTERFACE)
            );
            added_paths.push(OwnedObjectPath::from(args.object_path.clone()));
        }
        for path in &added_paths {
            let n = path.as_str().strip_prefix(CONNECTION_PATH_PREFIX).unwrap();
            assert!(n.parse::<u64>().is_ok(), "{path}");
        }
        let objects = wait_for_objects(&conn, "both ends with two subflows", |objects| {
            objects.len() == 2 && objects.values().all(|p| subflows(p).len() == 2)
        })
        .await;
        check_objects(&objects, &connection);

        // Readers without privileges: the policy's point.
        check_unprivileged_reader(bus.address());

        // Closed: both objects go.
        connection.close();
        let mut removed_paths = Vec::new();
        while removed_paths.len() < 2 {
            let signal = tokio::time::timeout(WAIT, removed.next())
                .await
                .expect("InterfacesRemoved")
                .unwrap();
            let args = signal.args().unwrap();
            assert!(
                args.interfaces
                    .iter()
                    .any(|i| i.as_str() == CONNECTION_INTERFACE)
            );
            removed_paths.push(OwnedObjectPath::from(args.object_path.clone()));
        }
        added_paths.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        removed_paths.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(added_paths, removed_paths);
        assert_eq!(
            connections(&conn).await.len(),
            0,
            "no connection object left"
        );
    });
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

/// `ip mptcp limits show` (`add_addr_accepted N subflows N`), as the property's dictionary.
fn kernel_limits(ns: &NetNs) -> HashMap<String, u32> {
    let shown = ns.ip(&["mptcp", "limits", "show"]).unwrap();
    let words: Vec<&str> = shown.split_whitespace().collect();
    words
        .chunks(2)
        .map(|pair| (pair[0].to_owned(), pair[1].parse().unwrap()))
        .collect()
}

/// `busctl` on the bus as user nobody.
fn as_nobody(address: &str, args: &[&str]) -> Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "busctl"])
        .arg(format!("--address={address}"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn without_a_bus_or_with_the_name_taken_the_daemon_says_so_once_and_runs() {
    const TEST: &str = "without_a_bus_or_with_the_name_taken_the_daemon_says_so_once_and_runs";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("unix:path={}", dir.path().join("no-bus").display());
    let first_ns = namespace("mptcpd-t-dbus1");
    let second_ns = namespace("mptcpd-t-dbus2");
    let third_ns = namespace("mptcpd-t-dbus3");
    let mut first = daemon(&first_ns, bus.address(), "dbus1");
    first.wait_for_log("D-Bus: serving").unwrap();
    for (ns, address, pins) in [
        (&second_ns, bus.address(), "dbus2"),
        (&third_ns, nowhere.as_str(), "dbus3"),
    ] {
        let mut other = daemon(ns, address, pins);
        other
            .wait_for_log("running without the D-Bus interface")
            .unwrap();
        // Still serving the kernel's events after the refusal.
        let connection = Connection::open(ns);
        other.wait_for_log("mptcp: Established").unwrap();
        connection.close();
        other.check_running().unwrap();
        let (status, log) = other.stop().unwrap();
        assert!(status.success(), "{log}");
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("D-Bus")).collect();
        assert_eq!(lines.len(), 1, "one line: {log}");
    }
    let (status, log) = first.stop().unwrap();
    assert!(status.success(), "{log}");
}

#[test]
fn mptcpctl_connections_and_top_read_the_bus() {
    const TEST: &str = "mptcpctl_connections_and_top_read_the_bus";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let ns = namespace("mptcpd-t-dbusctl");
    // No daemon on the bus yet: one line, and a failure.
    let out = dbus::mptcpctl(&ns, bus.address(), &["connections"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("mptcpd"), "{stderr}");

    let mut daemon = daemon(&ns, bus.address(), "dbusctl");
    daemon.wait_for_log("D-Bus: serving").unwrap();
    let connection = Connection::open(&ns);
    let local = connection.local().to_string();
    // The objects follow the events: wait until both ends show both subflows.
    let deadline = Instant::now() + WAIT;
    let listed = loop {
        let out = dbus::mptcpctl(&ns, bus.address(), &["connections", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if listed.len() == 2
            && listed
                .iter()
                .all(|c| c["subflows"].as_array().is_some_and(|s| s.len() == 2))
        {
            break listed;
        }
        assert!(Instant::now() < deadline, "{listed:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let client_side = listed
        .iter()
        .find(|c| c["local"] == local.as_str())
        .expect("the client's end");
    assert_eq!(
        client_side["remote"],
        connection.remote().to_string().as_str()
    );
    assert_eq!(client_side["server_side"], false);
    assert_eq!(client_side["subflows"][1]["local_id"], 7);
    assert!(client_side.get("token").is_none());

    let text = dbus::mptcpctl(&ns, bus.address(), &["connections"]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&local), "{text}");
    assert!(text.contains("127.0.0.2:"), "{text}");

    let top = dbus::mptcpctl(&ns, bus.address(), &["top", "--iterations", "2"]);
    assert!(
        top.status.success(),
        "{}",
        String::from_utf8_lossy(&top.stderr)
    );
    let screen = String::from_utf8_lossy(&top.stdout);
    assert_eq!(
        screen.matches("\x1b[H\x1b[2J").count(),
        2,
        "two refreshes: {screen}"
    );
    assert!(screen.contains(&local), "{screen}");
    connection.close();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}
