//! The `sspi` plugin in our daemon against the real kernel (userspace path manager in the
//! daemon's namespace): its listeners keep accepting joins whatever else connects to them,
//! and a dual-stack server's IPv4 connections are handled as IPv4.
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use mptcp_pm::{Endpoint, EndpointFlags, Event, Limits, NewSubflow, PmClient};
use mptcpd_tests::{
    daemon::sspi_pair::{Path, Side, SspiPair, v4, v6},
    kernel_pm::events::wait_for,
    net::sysctl,
    skip,
    sockets::mptcp_tokio,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// A bound on a hang, not a performance expectation.
const HANG: Duration = Duration::from_secs(10);

/// An MPTCP connection from `from`'s namespace to `listener`, accepted, one byte each way
/// (fully established). Returns both ends.
async fn connect(
    from: &mptcpd_tests::net::netns::NetNs,
    to: SocketAddr,
    listener: &TcpListener,
) -> (TcpStream, TcpStream) {
    let stream = {
        let _in = from.enter().unwrap();
        mptcp_tokio::connect(to).expect("an MPTCP connection")
    };
    let (accepted, _) = tokio::time::timeout(HANG, listener.accept())
        .await
        .expect("accept hangs")
        .expect("accept");
    mptcp_tokio::send(&stream, b"x").await.unwrap();
    mptcp_tokio::send(&accepted, b"y").await.unwrap();
    (stream, accepted)
}

/// The port the peer saw announced for `addr`.
async fn announced_port(events: &mut mptcp_pm::EventStream, addr: IpAddr) -> u16 {
    wait_for(events, "the announcement", |e| match e {
        Event::Announced(a) if a.addr == addr => a.port,
        _ => None,
    })
    .await
}

#[tokio::test]
async fn sspi_listeners_drain_plain_connections_so_joins_still_arrive() {
    const NAME: &str = "sspi_listeners_drain_plain_connections_so_joins_still_arrive";
    if !skip::require_root(NAME) {
        return;
    }
    let pair = SspiPair::new("mptcpd-t-sspi-drain").unwrap();
    let _daemon = pair.start_daemon(&[]).unwrap();
    // The peer: the in-kernel path manager joins one announced address per connection.
    let (mut events, listener) = {
        let _in = pair.peer.enter().unwrap();
        let pm = PmClient::connect().await.expect("mptcp_pm");
        let limits = Limits {
            add_addr_accepted: 1,
            subflows: 1,
        };
        pm.set_limits(limits).await.expect("limits");
        let listener = mptcp_tokio::listen(SocketAddr::new(v4(Path::A, Side::Peer), 5201));
        (pm.subscribe().expect("subscribe"), listener.unwrap())
    };
    let to = SocketAddr::new(v4(Path::A, Side::Peer), 5201);
    let announced_addr = v4(Path::B, Side::Daemon);
    let _first = connect(&pair.daemon, to, &listener).await;
    let port = announced_port(&mut events, announced_addr).await;
    let target = SocketAddr::new(announced_addr, port);
    let joined_target = |e: &Event| match e {
        Event::SubflowEstablished(s) if s.remote == target => Some(s.token),
        _ => None,
    };
    let first_token = wait_for(&mut events, "the first join", joined_target).await;

    // Plain TCP connections to the announced port, twice the backlog and more. Without the
    // drain the accept queue is full after 17 and the kernel drops every later SYN.
    let mut flood = Vec::new();
    {
        let _in = pair.peer.enter().unwrap();
        for _ in 0..40 {
            match tokio::time::timeout(HANG, TcpStream::connect(target)).await {
                Ok(Ok(stream)) => flood.push(stream),
                Ok(Err(e)) => panic!("plain connect to {target}: {e}"),
                Err(_hang) => break,
            }
        }
    }

    // A second connection: the same address and port are announced, and its join arrives.
    let _second = connect(&pair.daemon, to, &listener).await;
    assert_eq!(announced_port(&mut events, announced_addr).await, port);
    let joined_again = |e: &Event| joined_target(e).filter(|token| *token != first_token);
    let _token = wait_for(&mut events, "the join after the flood", joined_again).await;
    assert_eq!(flood.len(), 40, "every plain connection was accepted");
}

/// An MPTCP listener on `[::]:PORT` that also takes IPv4 (`IPV6_V6ONLY` off).
fn dual_stack_listener(port: u16) -> TcpListener {
    let socket = Socket::new(
        Domain::IPV6,
        Type::STREAM,
        Some(Protocol::from(mptcpd_tests::sockets::mptcp::IPPROTO_MPTCP)),
    )
    .expect("an MPTCP socket");
    socket.set_only_v6(false).expect("dual stack");
    let addr: SocketAddr = format!("[::]:{port}").parse().unwrap();
    socket.bind(&addr.into()).expect("bind");
    socket.listen(16).expect("listen");
    socket.set_nonblocking(true).expect("non-blocking");
    TcpListener::from_std(socket.into()).expect("a tokio listener")
}

#[tokio::test]
async fn sspi_takes_a_dual_stack_servers_ipv4_connection_for_ipv4() {
    const NAME: &str = "sspi_takes_a_dual_stack_servers_ipv4_connection_for_ipv4";
    if !skip::require_root(NAME) {
        return;
    }
    let pair = SspiPair::new("mptcpd-t-sspi-dual").unwrap();
    // The peer is a userspace-PM client too, driven by the test.
    sysctl::set_in(&pair.peer, "net.mptcp.pm_type", "1").unwrap();
    let _daemon = pair.start_daemon(&[]).unwrap();
    let listener = {
        let _in = pair.daemon.enter().unwrap();
        dual_stack_listener(5201)
    };
    let (peer, mut events) = {
        let _in = pair.peer.enter().unwrap();
        let pm = PmClient::connect().await.expect("mptcp_pm");
        let events = pm.subscribe().expect("subscribe");
        (pm, events)
    };
    // IPv4 into the AF_INET6 socket: the daemon's events carry ::ffff:192.0.2.1.
    let server = SocketAddr::new(v4(Path::A, Side::Daemon), 5201);
    let (_client, _accepted) = connect(&pair.peer, server, &listener).await;
    let token = wait_for(&mut events, "CREATED", |e| match e {
        Event::Created(c) => Some(c.token),
        _ => None,
    })
    .await;
    let announced = wait_for(&mut events, "ANNOUNCED", |e| match e {
        Event::Announced(a) => Some(a.addr),
        _ => None,
    })
    .await;
    assert_eq!(
        announced,
        v4(Path::B, Side::Daemon),
        "the other interface's IPv4 address, not {}",
        v6(Path::B, Side::Daemon)
    );

    // A second subflow to the initial interface (it arrives at the dual-stack socket, so
    // mapped too): sspi keeps one per interface and closes it.
    let local = Endpoint::new(v4(Path::B, Side::Peer), EndpointFlags::empty()).with_id(7);
    peer.subflow_create(&NewSubflow {
        token,
        local,
        remote: server,
    })
    .await
    .expect("subflow_create");
    wait_for(
        &mut events,
        "the second subflow on the interface closed",
        |e| {
            matches!(e, Event::SubflowClosed(s) if s.remote == server
            && s.local.ip() == v4(Path::B, Side::Peer))
            .then_some(())
        },
    )
    .await;
}
