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

/// The namespaces (`mptcpd-t-mesh-SUFFIX`), the peer's listener (the peer announcing
/// `announce`) and the daemon namespace's events.
async fn prepare(suffix: &str, announce: Option<IpAddr>) -> (SspiPair, TcpListener, EventStream) {
    let pair = SspiPair::new(&format!("mptcpd-t-mesh-{suffix}")).unwrap();
    let listener = peer(&pair, announce).await;
    let events = pair.daemon_events().await;
    (pair, listener, events)
}

/// Our daemon with `mesh` and `args`, and one connection from its side.
async fn start(
    pair: &SspiPair,
    listener: &TcpListener,
    args: &[&str],
) -> (Daemon, (TcpStream, TcpStream)) {
    let daemon = pair.start_plugin("mesh", args, &[]).unwrap();
    let ends = pair.connect_established(listener, PORT, HANG).await;
    (daemon, ends)
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
    let (pair, listener, mut events) = prepare("path", None).await;
    let (mut daemon, ends) = start(&pair, &listener, &["--max-subflows=8"]).await;
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
    let (pair, listener, mut events) = prepare("ann", Some(v4(Path::B, Side::Peer))).await;
    // Three pairs to make (d-b to the peer's A, d-a and d-b to its announced B), room for two.
    let (mut daemon, ends) = start(&pair, &listener, &["--max-subflows=2"]).await;
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
    let (pair, listener, mut events) = prepare("lim", Some(v4(Path::B, Side::Peer))).await;
    pair.daemon
        .ip(&["mptcp", "limits", "set", "subflows", "1"])
        .unwrap();
    let (mut daemon, ends) = start(&pair, &listener, &[]).await;
    let (_token, seen) = joined(&mut events, 1, true).await;
    assert_eq!(seen.len(), 1);
    close(&mut daemon, &pair, ends, &[v4(Path::B, Side::Daemon)]);
    assert_eq!(attempts(&daemon), 1, "{}", daemon.log());
}

/// `SUBFLOW_DESTROY` drops the local address from the connection's list; the next subflow
/// from it, under the same id, puts it back (the kernel takes the id again).
#[tokio::test]
async fn mesh_joins_again_from_an_address_whose_subflow_was_destroyed() {
    const NAME: &str = "mesh_joins_again_from_an_address_whose_subflow_was_destroyed";
    if !skip::require_root(NAME) {
        return;
    }
    let (pair, listener, mut events) = prepare("again", None).await;
    let (mut daemon, ends) = start(&pair, &listener, &["--max-subflows=8"]).await;
    let first = wait_for(&mut events, "the subflow from path B", |e| match e {
        Event::SubflowEstablished(s) if s.local.ip() == v4(Path::B, Side::Daemon) => Some(*s),
        _ => None,
    })
    .await;
    let (local_pm, peer_pm) = {
        let _in = pair.daemon.enter().unwrap();
        let local = PmClient::connect().await.expect("mptcp_pm");
        let _peer_in = pair.peer.enter().unwrap();
        (local, PmClient::connect().await.expect("mptcp_pm"))
    };
    local_pm
        .subflow_destroy(first.path())
        .await
        .expect("subflow_destroy");
    wait_for(&mut events, "the destroyed subflow's close", |e| {
        matches!(e, Event::SubflowClosed(s) if s.local == first.local).then_some(())
    })
    .await;
    let has_b = |list: &[Endpoint]| {
        list.iter()
            .find(|e| e.addr == first.local.ip())
            .map(|e| e.id)
    };
    let listed = local_pm.dump_addrs_for(first.token).await.unwrap();
    assert_eq!(
        has_b(&listed),
        None,
        "the trap: gone from the list: {listed:?}"
    );

    // The peer announces path B: mesh joins it from both addresses, B under its old id.
    let endpoint = Endpoint::new(v4(Path::B, Side::Peer), EndpointFlags::SIGNAL).with_id(5);
    peer_pm
        .add_addr(&endpoint)
        .await
        .expect("a signal endpoint");
    let again = wait_for(&mut events, "a subflow from B again", |e| match e {
        Event::SubflowEstablished(s) if s.local.ip() == first.local.ip() => Some(*s),
        _ => None,
    })
    .await;
    assert_eq!(again.remote, SocketAddr::new(v4(Path::B, Side::Peer), PORT));
    assert_eq!(again.local_id, first.local_id, "the same id");
    let listed = local_pm.dump_addrs_for(first.token).await.unwrap();
    assert_eq!(
        has_b(&listed),
        Some(first.local_id),
        "back in the list: {listed:?}"
    );
    close(
        &mut daemon,
        &pair,
        ends,
        &[v4(Path::A, Side::Daemon), v4(Path::B, Side::Daemon)],
    );
}

/// A burst of connections, each established while the daemon still handles the ones before:
/// every one gets its subflow from path B (none waits behind another's kernel round trips,
/// none is lost).
#[tokio::test]
async fn mesh_gives_every_connection_of_a_burst_its_subflow() {
    const NAME: &str = "mesh_gives_every_connection_of_a_burst_its_subflow";
    const BURST: usize = 300;
    if !skip::require_root(NAME) {
        return;
    }
    let (pair, listener, mut events) = prepare("burst", None).await;
    let _daemon = pair.start_plugin("mesh", &[], &[]).unwrap();
    // Connected and accepted one by one (the listener's backlog is short), then data on all
    // at once: they become fully established together.
    let mut held = Vec::new();
    for _ in 0..BURST {
        let stream = {
            let _in = pair.daemon.enter().unwrap();
            mptcp_tokio::connect(SocketAddr::new(v4(Path::A, Side::Peer), PORT)).unwrap()
        };
        let (accepted, _) = tokio::time::timeout(HANG, listener.accept())
            .await
            .expect("accept hangs")
            .expect("accept");
        held.push((stream, accepted));
    }
    for (stream, _) in &held {
        mptcp_tokio::send(stream, b"x").await.unwrap();
    }
    for (_, accepted) in &held {
        mptcp_tokio::send(accepted, b"y").await.unwrap();
    }
    let mut established = BTreeSet::new();
    let mut joined = BTreeSet::new();
    while established.len() < BURST || joined.len() < BURST {
        let what = format!(
            "every connection joined ({} established, {} joined)",
            established.len(),
            joined.len()
        );
        match wait_for(&mut events, &what, |e| match e {
            Event::Established(_) | Event::SubflowEstablished(_) => Some(e.clone()),
            _ => None,
        })
        .await
        {
            Event::Established(c) => {
                established.insert(c.token);
            }
            Event::SubflowEstablished(s) => {
                assert_eq!(s.local.ip(), v4(Path::B, Side::Daemon), "{s:?}");
                joined.insert(s.token);
            }
            _ => unreachable!("picked above"),
        }
    }
    assert_eq!(joined, established, "each connection its own subflow");
    drop(held);
}
