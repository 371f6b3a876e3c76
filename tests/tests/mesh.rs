//! The `mesh` plugin in our daemon against the real kernel (userspace path manager in the
//! daemon's namespace, the daemon the client): a subflow from each other local address, bound
//! to its interface, and to the addresses the peer announces, at most `max-subflows` of them
//! (else the kernel's subflow limit); the connection's close releases the ids.
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use mptcp_pm::{Endpoint, EndpointFlags, Event, EventStream, Limits, PmClient};
use mptcpd_tests::{
    daemon::{
        process::Daemon,
        sspi_pair::{Path, Side, SspiPair, v4},
    },
    kernel_pm::{endpoints, events::wait_for},
    skip,
    sockets::mptcp_tokio,
};
use tokio::net::{TcpListener, TcpStream};

/// A bound on a hang, not a performance expectation.
const HANG: Duration = Duration::from_secs(10);

const PORT: u16 = 5201;

/// The peer: the in-kernel path manager accepting joins (and announcing `announce`), an
/// MPTCP listener on every address.
async fn peer(pair: &SspiPair, announce: Option<IpAddr>) -> TcpListener {
    let _in = pair.peer.enter().unwrap();
    let pm = PmClient::connect().await.expect("mptcp_pm");
    let limits = Limits {
        add_addr_accepted: 8,
        subflows: 8,
    };
    pm.set_limits(limits).await.expect("limits");
    if let Some(addr) = announce {
        let endpoint = Endpoint::new(addr, EndpointFlags::SIGNAL).with_id(5);
        pm.add_addr(&endpoint).await.expect("a signal endpoint");
    }
    mptcp_tokio::listen(SocketAddr::new("0.0.0.0".parse().unwrap(), PORT)).unwrap()
}

/// The `mptcp_pm` events of the daemon's namespace.
async fn daemon_events(pair: &SspiPair) -> EventStream {
    let _in = pair.daemon.enter().unwrap();
    let pm = PmClient::connect().await.expect("mptcp_pm");
    pm.subscribe().expect("subscribe")
}

/// An MPTCP connection from the daemon's namespace to the peer's path-A address, accepted,
/// one byte each way (fully established).
async fn connect(pair: &SspiPair, listener: &TcpListener) -> (TcpStream, TcpStream) {
    let stream = {
        let _in = pair.daemon.enter().unwrap();
        mptcp_tokio::connect(SocketAddr::new(v4(Path::A, Side::Peer), PORT)).unwrap()
    };
    let (accepted, _) = tokio::time::timeout(HANG, listener.accept())
        .await
        .expect("accept hangs")
        .expect("accept");
    mptcp_tokio::send(&stream, b"x").await.unwrap();
    mptcp_tokio::send(&accepted, b"y").await.unwrap();
    (stream, accepted)
}

/// The ifindex of `dev` in the daemon's namespace.
fn ifindex(pair: &SspiPair, dev: &str) -> i32 {
    let shown = pair.daemon.ip(&["-o", "link", "show", dev]).unwrap();
    shown
        .split(':')
        .next()
        .and_then(|index| index.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ifindex in {shown:?}"))
}

/// The next `n` subflows established in the daemon's namespace: (local address, remote,
/// interface); with `announced`, also waits for the peer's announcement.
async fn joined(
    events: &mut EventStream,
    n: usize,
    announced: bool,
) -> (u32, BTreeSet<(IpAddr, SocketAddr, Option<i32>)>) {
    let mut token = 0;
    let mut seen = BTreeSet::new();
    let mut heard = !announced;
    while seen.len() < n || !heard {
        let event = wait_for(events, "a subflow or the announcement", |e| match e {
            Event::SubflowEstablished(_) | Event::Announced(_) => Some(e.clone()),
            _ => None,
        })
        .await;
        match event {
            Event::SubflowEstablished(sub) => {
                token = sub.token;
                seen.insert((sub.local.ip(), sub.remote, sub.if_idx));
            }
            _ => heard = true,
        }
    }
    (token, seen)
}

/// Closes both ends and waits until the plugin released the ids of `addrs`; then nothing of
/// the connection is left: no endpoint, and no listener (the plugin takes none).
fn close(daemon: &mut Daemon, pair: &SspiPair, ends: (TcpStream, TcpStream), addrs: &[IpAddr]) {
    drop(ends);
    for addr in addrs {
        daemon
            .wait_for_log(&format!("address id released addr={addr}"))
            .unwrap();
    }
    let table = endpoints::show(&pair.daemon).unwrap();
    assert!(table.is_empty(), "{}", endpoints::display(&table));
    // The thread's own view (`/proc/net` is the main thread's namespace); MPTCP listeners
    // show as their TCP listening subflow.
    let listening = pair
        .daemon
        .run(|| {
            ["tcp", "tcp6"]
                .iter()
                .map(|table| {
                    std::fs::read_to_string(format!("/proc/thread-self/net/{table}"))
                        .unwrap()
                        .lines()
                        .skip(1)
                        .filter(|line| line.split_whitespace().nth(3) == Some("0A"))
                        .count()
                })
                .sum::<usize>()
        })
        .unwrap();
    assert_eq!(listening, 0, "no listener in the daemon's namespace");
}

/// How many subflows the plugin asked for, created or refused (the kernel may enforce its
/// own limit too).
fn attempts(daemon: &Daemon) -> usize {
    let log = daemon.log();
    log.matches("subflow created").count() + log.matches("creating subflow").count()
}

#[tokio::test]
async fn mesh_opens_a_subflow_from_the_other_path_bound_to_its_interface() {
    const NAME: &str = "mesh_opens_a_subflow_from_the_other_path_bound_to_its_interface";
    if !skip::require_root(NAME) {
        return;
    }
    let pair = SspiPair::new("mptcpd-t-mesh-path").unwrap();
    let listener = peer(&pair, None).await;
    let mut events = daemon_events(&pair).await;
    let mut daemon = pair
        .start_plugin("mesh", &["--max-subflows=8"], &[])
        .unwrap();
    let ends = connect(&pair, &listener).await;
    let (token, seen) = joined(&mut events, 1, false).await;
    let expected = (
        v4(Path::B, Side::Daemon),
        SocketAddr::new(v4(Path::A, Side::Peer), PORT),
        Some(ifindex(&pair, "d-b")),
    );
    assert_eq!(
        seen,
        BTreeSet::from([expected]),
        "path B's address, bound to d-b"
    );
    // The connection's address list names it under a real id.
    let listed = {
        let _in = pair.daemon.enter().unwrap();
        let pm = PmClient::connect().await.expect("mptcp_pm");
        pm.dump_addrs_for(token)
            .await
            .expect("the connection's addresses")
    };
    assert!(
        listed
            .iter()
            .any(|e| e.addr == v4(Path::B, Side::Daemon) && e.id != 0),
        "{listed:?}"
    );
    close(&mut daemon, &pair, ends, &[v4(Path::B, Side::Daemon)]);
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

#[tokio::test]
async fn mesh_joins_announced_addresses_within_max_subflows() {
    const NAME: &str = "mesh_joins_announced_addresses_within_max_subflows";
    if !skip::require_root(NAME) {
        return;
    }
    let pair = SspiPair::new("mptcpd-t-mesh-ann").unwrap();
    let listener = peer(&pair, Some(v4(Path::B, Side::Peer))).await;
    let mut events = daemon_events(&pair).await;
    // Three pairs to make (d-b to the peer's A, d-a and d-b to its announced B), room for two.
    let mut daemon = pair
        .start_plugin("mesh", &["--max-subflows=2"], &[])
        .unwrap();
    let ends = connect(&pair, &listener).await;
    let (_token, seen) = joined(&mut events, 2, true).await;
    let (dev_a, dev_b) = (ifindex(&pair, "d-a"), ifindex(&pair, "d-b"));
    assert_eq!(
        seen,
        BTreeSet::from([
            (
                v4(Path::B, Side::Daemon),
                SocketAddr::new(v4(Path::A, Side::Peer), PORT),
                Some(dev_b)
            ),
            (
                v4(Path::A, Side::Daemon),
                SocketAddr::new(v4(Path::B, Side::Peer), PORT),
                Some(dev_a)
            ),
        ]),
        "the initial address's pair, then the announced one's in address order"
    );
    // The close comes after the announcement in the connection's lane: every create the
    // plugin made is logged by then.
    close(
        &mut daemon,
        &pair,
        ends,
        &[v4(Path::A, Side::Daemon), v4(Path::B, Side::Daemon)],
    );
    assert_eq!(attempts(&daemon), 2, "{}", daemon.log());
}

#[tokio::test]
async fn mesh_defaults_to_the_kernels_subflow_limit() {
    const NAME: &str = "mesh_defaults_to_the_kernels_subflow_limit";
    if !skip::require_root(NAME) {
        return;
    }
    let pair = SspiPair::new("mptcpd-t-mesh-lim").unwrap();
    pair.daemon
        .ip(&["mptcp", "limits", "set", "subflows", "1"])
        .unwrap();
    let listener = peer(&pair, Some(v4(Path::B, Side::Peer))).await;
    let mut events = daemon_events(&pair).await;
    let mut daemon = pair.start_plugin("mesh", &[], &[]).unwrap();
    let ends = connect(&pair, &listener).await;
    let (_token, seen) = joined(&mut events, 1, true).await;
    assert_eq!(seen.len(), 1);
    close(&mut daemon, &pair, ends, &[v4(Path::B, Side::Daemon)]);
    assert_eq!(attempts(&daemon), 1, "{}", daemon.log());
}
