//! Path managers outside the daemon (`org.mptcpd.Control1.RegisterPathManager`) on a private
//! system-like bus, against the real kernel: the Python example (`plugins/examples/
//! external_pm.py`, Debian's python3-dbus-next) handles a connection under the userspace path
//! manager and gets the subflow it asked for while the daemon's default plugin (`mesh`) stays
//! away; once the example is killed, the old connection and a new one are the default
//! plugin's. Under the in-kernel path manager the request is refused with a named error; bad
//! arguments, commands on connections the client does not hold, and a client that leaves the
//! bus (before or after its call is answered) each end in a D-Bus error or a release.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::SocketAddr,
    path::{Path as FsPath, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use mptcp_pm::{Event, EventStream, Limits, PmClient};
use mptcpd_common::dbus::{BUS_NAME, CONTROL_INTERFACE, MANAGER_PATH};
use mptcpd_tests::{
    daemon::{
        process::Daemon,
        sspi_pair::{Path, Side, SspiPair, v4},
    },
    dbus::{self, SystemLikeBus},
    kernel_pm::events::wait_for,
    net::{netns::NetNs, sysctl},
    skip,
    sockets::mptcp_tokio,
};
use tokio::net::TcpListener;
use zbus::zvariant::{OwnedValue, Value};

/// A bound on a hang while waiting for the kernel, the daemon, the bus or the example.
const WAIT: Duration = Duration::from_secs(20);
const PORT: u16 = 5341;
/// Debian's Python, which python3-dbus-next installs into (not a pyenv's).
const PYTHON: &str = "/usr/bin/python3";

/// Root and `dbus-daemon`, or a skip.
/// Whether Debian's python3-dbus-next is there, else a skip.
fn python_or_skip(test: &str) -> bool {
    let found = Command::new(PYTHON)
        .args(["-c", "import dbus_next"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip::skip(
            test,
            "no python3-dbus-next here (cargo xtask setup installs it)",
        );
    }
    found
}

fn example() -> PathBuf {
    FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/external_pm.py")
}

/// The example running in the daemon's namespace; killed on drop.
struct Example {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Example {
    fn start(ns: &NetNs, address: &str) -> Self {
        let mut cmd = ns.command(PYTHON).unwrap();
        cmd.arg(example())
            .env("DBUS_SYSTEM_BUS_ADDRESS", address)
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line of its output that contains `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => self.seen.push(line),
                Err(e) => panic!(
                    "the example never said {needle:?} ({e}); it said {:?}",
                    self.seen
                ),
            }
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

/// The peer: the in-kernel path manager accepting joins, an MPTCP listener on every address.
async fn peer(pair: &SspiPair) -> TcpListener {
    let _in = pair.peer.enter().unwrap();
    let pm = PmClient::connect().await.expect("mptcp_pm");
    let limits = Limits {
        add_addr_accepted: 8,
        subflows: 8,
    };
    pm.set_limits(limits).await.expect("limits");
    mptcp_tokio::listen(SocketAddr::new("0.0.0.0".parse().unwrap(), PORT)).unwrap()
}

/// The next subflow established from path B's address in the daemon's namespace.
async fn subflow_from_b(events: &mut EventStream) -> mptcp_pm::Subflow {
    wait_for(events, "a subflow from path B", |e| match e {
        Event::SubflowEstablished(s) if s.local.ip() == v4(Path::B, Side::Daemon) => Some(*s),
        _ => None,
    })
    .await
}

/// How many subflows the default plugin (`mesh`) asked for.
fn mesh_attempts(daemon: &Daemon) -> usize {
    let log = daemon.log();
    log.matches("subflow created").count() + log.matches("creating subflow").count()
}

fn ifindex(ns: &NetNs, dev: &str) -> i32 {
    let shown = ns.ip(&["-o", "link", "show", dev]).unwrap();
    shown.split(':').next().unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn the_python_example_handles_connections_until_it_goes_then_the_default_plugin_does() {
    const TEST: &str =
        "the_python_example_handles_connections_until_it_goes_then_the_default_plugin_does";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    if !python_or_skip(TEST) {
        return;
    }
    let pair = SspiPair::new("mptcpd-t-extpm").unwrap();
    let listener = peer(&pair).await;
    let mut events = pair.daemon_events().await;
    let env = [("DBUS_SYSTEM_BUS_ADDRESS", bus.address())];
    let mut daemon = pair
        .start_plugin("mesh", &["--max-subflows=8"], &env)
        .unwrap();
    daemon.wait_for_log("D-Bus: serving").unwrap();
    let mut example = Example::start(&pair.daemon, bus.address());
    example.wait_for("registered as");

    // The example's connection: the subflow it asked for, and nothing from mesh.
    let old = pair.connect_established(&listener, PORT, WAIT).await;
    let asked = subflow_from_b(&mut events).await;
    assert_eq!(asked.remote, SocketAddr::new(v4(Path::A, Side::Peer), PORT));
    let said = example.wait_for("requested");
    assert!(
        said.starts_with(&format!("subflow from {} (d-b)", v4(Path::B, Side::Daemon))),
        "{said}"
    );
    assert_eq!(mesh_attempts(&daemon), 0, "{}", daemon.log());

    // Killed: its connection goes back to mesh, which now handles it as its own.
    drop(example);
    daemon
        .wait_for_log("left the bus: 1 connections back to the default plugin")
        .unwrap();
    daemon
        .wait_for_log("1 connections of an external path manager adopted")
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while mesh_attempts(&daemon) == 0 {
        assert!(
            Instant::now() < deadline,
            "mesh never acted on the old connection: {}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A new connection is mesh's from the start: its subflow is bound to path B's interface.
    let new = pair.connect_established(&listener, PORT, WAIT).await;
    let joined = loop {
        let s = subflow_from_b(&mut events).await;
        if s.token != asked.token {
            break s;
        }
    };
    assert_eq!(joined.if_idx, Some(ifindex(&pair.daemon, "d-b")));
    drop((old, new));
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Calls a `Control1` method on `bus`; `Err` is the D-Bus error's name and message.
async fn call<B, R>(bus: &zbus::Connection, method: &str, body: &B) -> Result<R, (String, String)>
where
    B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    let proxy = zbus::Proxy::new(bus, BUS_NAME, MANAGER_PATH, CONTROL_INTERFACE)
        .await
        .unwrap();
    proxy.call(method, body).await.map_err(|e| match e {
        zbus::Error::MethodError(name, text, _) => (name.to_string(), text.unwrap_or_default()),
        other => (String::new(), other.to_string()),
    })
}

/// A match rule from `(key, value)` pairs.
fn rule(pairs: &[(&str, Value<'_>)]) -> std::collections::HashMap<String, OwnedValue> {
    pairs
        .iter()
        .map(|(k, v)| {
            let v = OwnedValue::try_from(v.try_clone().unwrap()).unwrap();
            ((*k).to_owned(), v)
        })
        .collect()
}

/// The registered path managers (the `PathManagers` property).
async fn registered(address: &str) -> Vec<String> {
    let bus = dbus::client(address).await;
    let proxy = zbus::Proxy::new(&bus, BUS_NAME, MANAGER_PATH, CONTROL_INTERFACE)
        .await
        .unwrap();
    proxy.get_property("PathManagers").await.unwrap()
}

/// Polls until no path manager is registered and `done` holds (bounded).
async fn until_released(address: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = registered(address).await;
        if left.is_empty() && done() {
            return;
        }
        assert!(Instant::now() < deadline, "still registered: {left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A daemon in a namespace of its own (its state in a directory of its own); `userspace`:
/// `net.mptcp.pm_type=1`.
fn lone_daemon(prefix: &str, address: &str, userspace: bool) -> (NetNs, Daemon, tempfile::TempDir) {
    let ns = NetNs::new(prefix).unwrap();
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    if userspace {
        sysctl::set_in(&ns, "net.mptcp.pm_type", "1").unwrap();
    }
    let plugin = if userspace { "mesh" } else { "addr_adv" };
    let mut cmd = dbus::daemon_command(&ns, address).unwrap();
    cmd.args(["--path-manager", plugin, "--load-plugins", plugin])
        .arg(format!("--bpf-pin-dir=/sys/fs/bpf/{}", ns.name()));
    let state = tempfile::tempdir().unwrap();
    cmd.arg("--state-dir").arg(state.path());
    let mut daemon = Daemon::start(cmd).unwrap();
    daemon.wait_for_log("D-Bus: serving").unwrap();
    (ns, daemon, state)
}

#[test]
fn under_the_in_kernel_path_manager_the_request_is_refused_by_name() {
    const TEST: &str = "under_the_in_kernel_path_manager_the_request_is_refused_by_name";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let (_ns, daemon, _state) = lone_daemon("mptcpd-t-extpm-k", bus.address(), false);
    runtime().block_on(async {
        let conn = dbus::client(bus.address()).await;
        let refused = call::<_, ()>(&conn, "RegisterPathManager", &(rule(&[]),))
            .await
            .unwrap_err();
        assert_eq!(
            refused.0, "org.mptcpd.Error.WrongPathManager",
            "{refused:?}"
        );
        assert!(refused.1.contains("in-kernel"), "{}", refused.1);
        assert!(refused.1.contains("net.mptcp.pm_type=1"), "{}", refused.1);
        assert!(!refused.1.contains('\n'));
        assert!(
            registered(bus.address()).await.is_empty(),
            "nothing registered"
        );
    });
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

/// `ClaimedConnections`' answer: token, local, remote, established, subflows.
type Claimed = Vec<(u32, String, String, bool, Vec<(String, String)>)>;

/// Arguments of the wrong type or value, and an unregistration without registration: each a
/// named error, nothing registered.
async fn refused_arguments(conn: &zbus::Connection, address: &str) {
    let wrong_type = call::<_, ()>(conn, "RegisterPathManager", &("all",))
        .await
        .unwrap_err();
    // zbus's own answer to a body of the wrong signature.
    assert_eq!(wrong_type.0, "org.freedesktop.zbus.Error", "{wrong_type:?}");
    assert!(
        wrong_type.1.contains("expected `a{sv}`"),
        "{}",
        wrong_type.1
    );
    for (bad, says) in [
        (
            rule(&[("port", Value::from(80_u16))]),
            "unknown match key \"port\"",
        ),
        (
            rule(&[("remote_port", Value::from("80"))]),
            "takes q (uint16), not s",
        ),
        (
            rule(&[("local_address", Value::from("here"))]),
            "is not an IP address",
        ),
    ] {
        let refused = call::<_, ()>(conn, "RegisterPathManager", &(bad,))
            .await
            .unwrap_err();
        assert_eq!(refused.0, "org.mptcpd.Error.InvalidArgument", "{refused:?}");
        assert!(refused.1.contains(says), "{}", refused.1);
    }
    // An object the daemon does not serve.
    let proxy = zbus::Proxy::new(
        conn,
        BUS_NAME,
        "/org/mptcpd/Mptcpd/nowhere",
        CONTROL_INTERFACE,
    )
    .await
    .unwrap();
    let unknown = proxy
        .call::<_, _, ()>("RegisterPathManager", &(rule(&[]),))
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, zbus::Error::MethodError(name, _, _)
            if name.as_str() == "org.freedesktop.DBus.Error.UnknownObject"),
        "{unknown:?}"
    );
    let not_registered = call::<_, u32>(conn, "UnregisterPathManager", &())
        .await
        .unwrap_err();
    assert_eq!(
        not_registered.0, "org.mptcpd.Error.NotHeld",
        "{not_registered:?}"
    );
    assert!(
        registered(address).await.is_empty(),
        "nothing half-registered"
    );
}

/// A registered client may command only the connections it holds; an endpoint it adds goes
/// when it leaves.
async fn commands_need_a_held_connection(conn: zbus::Connection, address: &str, ns: &NetNs) {
    // Registered: it may command only the connections it holds.
    call::<_, ()>(
        &conn,
        "RegisterPathManager",
        &(rule(&[("remote_port", Value::from(9_u16))]),),
    )
    .await
    .unwrap();
    let name = conn.unique_name().unwrap().to_string();
    assert_eq!(registered(address).await, [name]);
    let not_held = call::<_, ()>(
        &conn,
        "CreateSubflow",
        &(12345_u32, "198.51.100.7", 3_u8, "203.0.113.1:80"),
    )
    .await
    .unwrap_err();
    assert_eq!(not_held.0, "org.mptcpd.Error.NotHeld", "{not_held:?}");
    let not_held = call::<_, ()>(
        &conn,
        "Announce",
        &(12345_u32, "198.51.100.7", 3_u8, 7000_u16),
    )
    .await
    .unwrap_err();
    assert_eq!(not_held.0, "org.mptcpd.Error.NotHeld", "{not_held:?}");
    let claimed: Claimed = call(&conn, "ClaimedConnections", &()).await.unwrap();
    assert_eq!(claimed, Claimed::new());
    // An endpoint it adds is removed when it goes.
    let id: u8 = call(
        &conn,
        "AddEndpoint",
        &("198.51.100.7", 0_u16, 0_u32, vec!["signal"], 0_u8),
    )
    .await
    .unwrap();
    assert!(
        ns.ip(&["mptcp", "endpoint", "show"])
            .unwrap()
            .contains("198.51.100.7")
    );
    drop(conn);
    until_released(address, || {
        !ns.ip(&["mptcp", "endpoint", "show"])
            .unwrap()
            .contains("198.51.100.7")
    })
    .await;
    assert!(id > 0);
}

/// A client that leaves before its call is answered is not left registered.
async fn leaving_mid_call(address: &str) {
    // A client that leaves before its call is answered is not left registered.
    for _ in 0..3 {
        let conn = dbus::client(address).await;
        let message = zbus::message::Message::method_call(MANAGER_PATH, "RegisterPathManager")
            .unwrap()
            .destination(BUS_NAME)
            .unwrap()
            .interface(CONTROL_INTERFACE)
            .unwrap()
            .build(&(rule(&[]),))
            .unwrap();
        conn.send(&message).await.unwrap();
        drop(conn);
    }
    until_released(address, || true).await;
}

#[test]
fn bad_input_is_refused_by_name_and_a_client_that_leaves_takes_its_endpoints_along() {
    const TEST: &str =
        "bad_input_is_refused_by_name_and_a_client_that_leaves_takes_its_endpoints_along";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let address = bus.address();
    let (ns, daemon, _state) = lone_daemon("mptcpd-t-extpm-b", address, true);
    runtime().block_on(async {
        let conn = dbus::client(address).await;
        refused_arguments(&conn, address).await;
        commands_need_a_held_connection(conn, address, &ns).await;
        leaving_mid_call(address).await;
    });
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// Whether something listens on TCP `port` in `ns` (MPTCP listeners show as their TCP
/// listening subflow; the thread's own view, `/proc/net` being the main thread's namespace).
fn listening(ns: &NetNs, port: u16) -> bool {
    let port = format!(":{port:04X}");
    ns.run(|| {
        std::fs::read_to_string("/proc/thread-self/net/tcp")
            .unwrap()
            .lines()
            .skip(1)
            .any(|line| {
                let mut fields = line.split_whitespace();
                let local = fields.nth(1).unwrap_or_default();
                local.ends_with(&port) && fields.nth(1) == Some("0A")
            })
    })
    .unwrap()
}

#[test]
fn a_client_sees_its_connections_and_its_listeners_close_when_it_leaves() {
    const TEST: &str = "a_client_sees_its_connections_and_its_listeners_close_when_it_leaves";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let address = bus.address();
    let (ns, daemon, _state) = lone_daemon("mptcpd-t-extpm-l", address, true);
    runtime().block_on(async {
        let conn = dbus::client(address).await;
        call::<_, ()>(&conn, "RegisterPathManager", &(rule(&[]),))
            .await
            .unwrap();
        // Both ends of a connection on loopback are its own.
        let (_client, _server) = ns
            .run(|| {
                let listener =
                    mptcpd_tests::sockets::mptcp::listen("127.0.0.1:0".parse().unwrap()).unwrap();
                let client =
                    mptcpd_tests::sockets::mptcp::connect(listener.local_addr().unwrap()).unwrap();
                let (mut server, _) = listener.accept().unwrap();
                // A byte each way: both ends established.
                let mut byte = [0_u8; 1];
                (&client).write_all(b"x").unwrap();
                server.read_exact(&mut byte).unwrap();
                server.write_all(b"y").unwrap();
                (&client).read_exact(&mut byte).unwrap();
                (client, server)
            })
            .unwrap();
        let deadline = Instant::now() + WAIT;
        let claimed = loop {
            let claimed: Claimed = call(&conn, "ClaimedConnections", &()).await.unwrap();
            if claimed.len() == 2 && claimed.iter().all(|c| c.3) {
                break claimed;
            }
            assert!(Instant::now() < deadline, "{claimed:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (token, ref local, _, _, ref subflows) = claimed[0];
        assert!(local.starts_with("127.0.0.1:"), "{claimed:?}");
        assert_eq!(subflows.len(), 1, "{claimed:?}");
        // An announcement with a port opens the listener joins to it need.
        assert!(!listening(&ns, 7000));
        call::<_, ()>(&conn, "Announce", &(token, "127.0.0.1", 3_u8, 7000_u16))
            .await
            .unwrap();
        assert!(listening(&ns, 7000), "the announcement's listener");
        drop(conn);
        until_released(address, || !listening(&ns, 7000)).await;
    });
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("left the bus: 2 connections back to the default plugin, 0 endpoints and 1 listeners removed"),
        "{log}"
    );
}
