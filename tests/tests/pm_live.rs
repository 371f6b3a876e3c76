//! `mptcp_pm` against the running kernel, each test in network namespaces of its own.
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::net::{IpAddr, SocketAddr};

use mptcp_pm::{
    Endpoint, EndpointFlags, Event, EventItem, Limits, PmClient, Subflow,
    wire::{EVENTS_GROUP, PmCmd},
};
use mptcpd_tests::{
    kernel_pm::events::{WAIT, kernel_error, wait_for},
    net::netns::NetNs,
    skip,
    sockets::mptcp_tokio,
};
use tokio::{task::JoinSet, time::timeout};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

fn sock(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

#[tokio::test]
async fn family_resolution() {
    if !skip::require_root("family_resolution") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm-", "family")).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("mptcp_pm resolves");
    let family = client.family();
    assert_eq!(family.name, "mptcp_pm");
    assert_eq!(family.version, 1);
    assert_ne!(family.id, 0);
    assert!(family.group(EVENTS_GROUP).is_some(), "{family:?}");
    for cmd in 1..=11 {
        assert!(family.supports(PmCmd::from(cmd)), "command {cmd}");
    }
}

#[tokio::test]
async fn endpoints_add_get_dump_set_flags_del_flush() {
    if !skip::require_root("endpoints_add_get_dump_set_flags_del_flush") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm-", "endpoints")).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("connect");
    assert_eq!(client.dump_addrs().await.expect("dump"), []);
    let endpoints = [
        Endpoint::new(ip("192.0.2.1"), EndpointFlags::SIGNAL).with_id(1),
        Endpoint::new(
            ip("198.51.100.1"),
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
        )
        .with_id(2)
        .with_if_idx(1),
        Endpoint::new(
            ip("2001:db8::1"),
            EndpointFlags::SUBFLOW | EndpointFlags::FULLMESH,
        )
        .with_id(3),
        Endpoint::new(
            ip("2001:db8::2"),
            EndpointFlags::SUBFLOW | EndpointFlags::LAMINAR,
        )
        .with_id(4),
    ];
    for endpoint in &endpoints {
        client.add_addr(endpoint).await.expect("add_addr");
    }
    assert_eq!(client.get_addr(2).await.expect("get_addr"), endpoints[1]);
    assert_eq!(client.dump_addrs().await.expect("dump"), endpoints);

    client
        .set_flags(2, EndpointFlags::empty())
        .await
        .expect("set_flags");
    let changed = client.get_addr(2).await.expect("get_addr");
    assert_eq!(
        changed.flags,
        EndpointFlags::SUBFLOW,
        "backup cleared, subflow kept"
    );

    // id 0: the kernel picks the next free id.
    client
        .add_addr(&Endpoint::new(ip("192.0.2.9"), EndpointFlags::SIGNAL))
        .await
        .expect("add");
    let picked = client.dump_addrs().await.expect("dump");
    assert!(
        picked
            .iter()
            .any(|e| e.addr == ip("192.0.2.9") && e.id == 5),
        "{picked:?}"
    );

    client.del_addr(1).await.expect("del_addr");
    let ids: Vec<u8> = client
        .dump_addrs()
        .await
        .expect("dump")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [2, 3, 4, 5]);
    client.flush_addrs().await.expect("flush");
    assert_eq!(client.dump_addrs().await.expect("dump"), []);
}

#[tokio::test]
async fn limits_set_get() {
    if !skip::require_root("limits_set_get") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm-", "limits")).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("connect");
    let limits = Limits {
        add_addr_accepted: 3,
        subflows: 5,
    };
    client.set_limits(limits).await.expect("set_limits");
    assert_eq!(client.get_limits().await.expect("get_limits"), limits);
    let (errno, message) = kernel_error(
        client
            .set_limits(Limits {
                add_addr_accepted: 0,
                subflows: 9,
            })
            .await,
    );
    assert_eq!(errno, libc::EINVAL);
    assert_eq!(message, "limit greater than maximum (8)");
    assert_eq!(client.get_limits().await.expect("get_limits"), limits);
}

#[tokio::test]
async fn kernel_errors_carry_errno_and_extack() {
    if !skip::require_root("kernel_errors_carry_errno_and_extack") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm-", "errors")).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("connect");
    let first = Endpoint::new(ip("192.0.2.1"), EndpointFlags::SIGNAL).with_id(1);
    client.add_addr(&first).await.expect("add");

    let (errno, message) = kernel_error(client.add_addr(&first.with_id(9)).await);
    assert_eq!(errno, libc::EEXIST, "{message}");
    assert!(message.contains("duplicate"), "{message}");

    for i in 2..=8 {
        let addr = IpAddr::from([192, 0, 2, i]);
        client
            .add_addr(&Endpoint::new(addr, EndpointFlags::SIGNAL))
            .await
            .expect("add");
    }
    let ninth = Endpoint::new(ip("192.0.2.99"), EndpointFlags::SIGNAL);
    let (errno, message) = kernel_error(client.add_addr(&ninth).await);
    assert_eq!(errno, libc::ERANGE, "{message}");

    let err = client.get_addr(42).await.expect_err("no endpoint 42");
    assert_eq!(err.errno(), Some(libc::EINVAL));
    assert_eq!(err.kernel_message(), Some("address not found"));
    let (errno, message) = kernel_error(client.del_addr(42).await);
    assert_eq!(
        (errno, message.as_str()),
        (libc::EINVAL, "address not found")
    );

    let (errno, message) = kernel_error(client.remove(0x5a5a_5a5a, 1).await);
    assert_eq!((errno, message.as_str()), (libc::EINVAL, "invalid token"));
    let signal = Endpoint::new(ip("192.0.2.1"), EndpointFlags::SIGNAL).with_id(5);
    let (errno, message) = kernel_error(client.announce(0x5a5a_5a5a, &signal).await);
    assert_eq!((errno, message.as_str()), (libc::EINVAL, "invalid token"));
    let implicit = Endpoint::new(ip("192.0.2.50"), EndpointFlags::IMPLICIT);
    client.flush_addrs().await.expect("flush");
    let (errno, message) = kernel_error(client.add_addr(&implicit).await);
    assert_eq!(
        (errno, message.as_str()),
        (libc::EINVAL, "can't create IMPLICIT endpoint")
    );
    // The error is rendered with the errno's text and the kernel's message.
    let err = client.add_addr(&implicit).await.expect_err("refused");
    assert!(
        err.to_string().ends_with("can't create IMPLICIT endpoint"),
        "{err}"
    );
}

#[tokio::test]
async fn pipelined_requests_get_their_own_replies() {
    if !skip::require_root("pipelined_requests_get_their_own_replies") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm-", "pipeline")).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("connect");
    let mut adds = JoinSet::new();
    for id in 1..=8 {
        let client = client.clone();
        adds.spawn(async move {
            let endpoint = Endpoint::new(IpAddr::from([10, 0, 0, id]), EndpointFlags::SIGNAL);
            client.add_addr(&endpoint.with_id(id)).await
        });
    }
    while let Some(done) = adds.join_next().await {
        done.expect("task").expect("add_addr");
    }
    let mut gets = JoinSet::new();
    for round in 0..5 {
        for id in 1..=8 {
            let client = client.clone();
            gets.spawn(async move { (id, client.get_addr(id).await) });
        }
        let client = client.clone();
        gets.spawn(async move { (100 + round, client.dump_addrs().await.map(|all| all[0])) });
    }
    while let Some(done) = gets.join_next().await {
        let (id, endpoint) = done.expect("task");
        let endpoint = endpoint.expect("reply");
        let expected_id = if id >= 100 { 1 } else { id };
        assert_eq!(endpoint.id, expected_id);
        assert_eq!(endpoint.addr, IpAddr::from([10, 0, 0, expected_id]));
    }
}

/// Thousands of requests in flight at once (a path manager answering a connection storm): every
/// one gets its reply; none is lost to the request socket's receive buffer.
#[tokio::test]
async fn a_burst_of_pipelined_requests_loses_no_reply() {
    const NAME: &str = "a_burst_of_pipelined_requests_loses_no_reply";
    const BURST: usize = 4000;
    if !skip::require_root(NAME) {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm-", "burst")).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("connect");
    let mut gets = JoinSet::new();
    for _ in 0..BURST {
        let client = client.clone();
        gets.spawn(async move { client.get_limits().await });
    }
    let mut failed = Vec::new();
    while let Some(done) = timeout(WAIT, gets.join_next()).await.expect("a reply") {
        if let Err(e) = done.expect("task") {
            failed.push(e.to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {BURST} failed, first: {:?}",
        failed.len(),
        failed.first()
    );
}

#[tokio::test]
async fn events_of_a_connection_with_a_subflow_endpoint() {
    if !skip::require_root("events_of_a_connection_with_a_subflow_endpoint") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm-", "events")).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("connect");
    let mut events = client.subscribe().expect("subscribe");
    client
        .add_addr(&Endpoint::new(ip("127.0.0.2"), EndpointFlags::SUBFLOW).with_id(7))
        .await
        .expect("add");

    let listener = mptcp_listener(sock("0.0.0.0:5201"));
    let listening = wait_for(&mut events, "LISTENER_CREATED", |e| match e {
        Event::ListenerCreated(l) => Some(l.local),
        _ => None,
    })
    .await;
    assert_eq!(listening, sock("0.0.0.0:5201"));

    let stream = mptcp_connect(sock("127.0.0.1:5201"));
    let (accepted, _) = timeout(WAIT, listener.accept())
        .await
        .expect("accept")
        .expect("accept");
    send(&stream, b"hello").await;
    let local = stream.local_addr().expect("local address");

    // Both ends are in this netns: CREATED and ESTABLISHED come for both tokens.
    let mut client_token = None;
    let mut server_token = None;
    let mut established = 0;
    let mut joined = None;
    while client_token.is_none() || server_token.is_none() || established < 2 || joined.is_none() {
        let event = wait_for(&mut events, "connection events", |e| Some(e.clone())).await;
        match event {
            Event::Created(c) if c.server_side() => server_token = Some(c.token),
            Event::Created(c) => {
                assert_eq!(c.local, local);
                client_token = Some(c.token);
            }
            Event::Established(_) => established += 1,
            Event::SubflowEstablished(s) if s.local.ip() == ip("127.0.0.2") => joined = Some(s),
            _ => {}
        }
    }
    let joined: Subflow = joined.expect("a subflow");
    assert_eq!(Some(joined.token), client_token);
    assert_eq!(joined.local_id, 7);
    assert_eq!(joined.remote, sock("127.0.0.1:5201"));

    // A graceful close (DATA_FIN) on both sides: the client has nothing unread, the server
    // reads up to the end. (Closing with unread data sends MP_FASTCLOSE, after which the
    // peer's CLOSED event is not guaranteed.)
    drop(stream);
    timeout(WAIT, read_to_end(&accepted))
        .await
        .expect("end of stream");
    drop(accepted);
    let mut closed = Vec::new();
    while closed.len() < 2 {
        closed.push(
            wait_for(&mut events, "CLOSED", |e| match e {
                Event::Closed { token } => Some(*token),
                _ => None,
            })
            .await,
        );
    }
    closed.sort_unstable();
    let mut tokens = vec![client_token.unwrap(), server_token.unwrap()];
    tokens.sort_unstable();
    assert_eq!(closed, tokens);

    drop(listener);
    let gone = wait_for(&mut events, "LISTENER_CLOSED", |e| match e {
        Event::ListenerClosed(l) => Some(l.local),
        _ => None,
    })
    .await;
    assert_eq!(gone, sock("0.0.0.0:5201"));
}

#[tokio::test]
async fn receive_buffer_overflow_is_reported_and_the_stream_goes_on() {
    if !skip::require_root("receive_buffer_overflow_is_reported_and_the_stream_goes_on") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm-", "overrun")).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("connect");
    let mut events = client.subscribe().expect("subscribe");
    events
        .set_receive_buffer(0)
        .expect("shrink the receive buffer");
    // Each listen() and close() sends an event; a minimal buffer holds a few.
    for port in 6000..6100 {
        drop(mptcp_listener(SocketAddr::new(ip("127.0.0.1"), port)));
    }
    let mut seen = Vec::new();
    loop {
        let item = timeout(WAIT, events.recv())
            .await
            .expect("an item")
            .expect("event socket");
        let overrun = matches!(item, EventItem::Overrun);
        seen.push(item);
        if overrun {
            break;
        }
    }
    assert!(seen.len() < 20, "the overrun came late: {seen:?}");
    events
        .set_receive_buffer(1 << 20)
        .expect("grow the receive buffer");
    let _listener = mptcp_listener(sock("127.0.0.1:7000"));
    wait_for(
        &mut events,
        "LISTENER_CREATED after the overrun",
        |e| match e {
            Event::ListenerCreated(l) if l.local.port() == 7000 => Some(()),
            _ => None,
        },
    )
    .await;
}

// MPTCP sockets for the tokio runtime on the test thread.

fn mptcp_listener(addr: SocketAddr) -> tokio::net::TcpListener {
    mptcp_tokio::listen(addr).expect("an MPTCP listener")
}

fn mptcp_connect(addr: SocketAddr) -> tokio::net::TcpStream {
    mptcp_tokio::connect(addr).expect("an MPTCP connection")
}

async fn send(stream: &tokio::net::TcpStream, data: &[u8]) {
    mptcp_tokio::send(stream, data).await.expect("send");
}

async fn read_to_end(stream: &tokio::net::TcpStream) {
    mptcp_tokio::read_to_end(stream).await.expect("read");
}
