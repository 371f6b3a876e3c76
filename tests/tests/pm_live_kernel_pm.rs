//! Events of the in-kernel path manager between two namespaces, over IPv4 and IPv6: a
//! `signal` endpoint on the server is announced to the client (ANNOUNCED), which joins it
//! (`SUB_ESTABLISHED`); marking it backup sends `MP_PRIO` (`SUB_PRIORITY` on the client);
//! deleting it withdraws it (REMOVED, `SUB_CLOSED`).
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::net::SocketAddr;

use mptcpd::pm::{
    EventStream, PmClient,
    wire::{Endpoint, EndpointFlags, Event, Limits},
};
use mptcpd_tests::{
    mptcp_tokio,
    pm::{WAIT, wait_for},
    skip,
    two_hosts::{CLIENT, IpVersion, SERVER, TwoHosts},
};
use tokio::time::timeout;

const PORT: u16 = 5201;
/// The id of the server's `signal` endpoint.
const SIGNAL_ID: u8 = 3;
/// Room for one announced address and one extra subflow on each side.
const LIMITS: Limits = Limits {
    add_addr_accepted: 2,
    subflows: 2,
};

#[tokio::test]
async fn kernel_pm_signal_endpoint_events_ipv4() {
    if !skip::require_root("kernel_pm_signal_endpoint_events_ipv4") {
        return;
    }
    signal_endpoint_events(IpVersion::V4, concat!("mptcpd-t-kpm-", "v4")).await;
}

#[tokio::test]
async fn kernel_pm_signal_endpoint_events_ipv6() {
    if !skip::require_root("kernel_pm_signal_endpoint_events_ipv6") {
        return;
    }
    signal_endpoint_events(IpVersion::V6, concat!("mptcpd-t-kpm-", "v6")).await;
}

/// A PM client, its event stream, with the limits set, in the namespace entered.
async fn pm() -> (PmClient, EventStream) {
    let client = PmClient::connect().await.expect("connect");
    let events = client.subscribe().expect("subscribe");
    client.set_limits(LIMITS).await.expect("set_limits");
    (client, events)
}

/// One connection from the client's first address to the server, with both PMs listening.
struct Connected {
    server: PmClient,
    server_events: EventStream,
    events: EventStream,
    stream: tokio::net::TcpStream,
    accepted: tokio::net::TcpStream,
    /// The client's token.
    token: u32,
    server_token: u32,
    // Kept for the test's duration.
    _client: PmClient,
    _listener: tokio::net::TcpListener,
}

async fn signal_endpoint_events(version: IpVersion, prefix: &str) {
    let hosts = TwoHosts::new(prefix).expect("namespaces");
    let mut conn = connect(&hosts, version).await;
    let token = conn.token;
    let announced_addr = version.addr(2, SERVER);

    // A signal endpoint on the server: ADD_ADDR to the client, which joins it.
    let signal = Endpoint::new(announced_addr, EndpointFlags::SIGNAL).with_id(SIGNAL_ID);
    conn.server
        .add_addr(&signal)
        .await
        .expect("add signal endpoint");
    let announced = wait_for(&mut conn.events, "ANNOUNCED", |e| match e {
        Event::Announced(a) => Some(*a),
        _ => None,
    })
    .await;
    assert_eq!(
        (announced.token, announced.remote_id, announced.addr),
        (token, SIGNAL_ID, announced_addr)
    );
    let joined = wait_for(&mut conn.events, "SUB_ESTABLISHED", |e| match e {
        Event::SubflowEstablished(s) if s.remote_id == SIGNAL_ID => Some(*s),
        _ => None,
    })
    .await;
    assert_eq!(joined.token, token);
    assert_eq!(joined.remote, SocketAddr::new(announced_addr, PORT));
    assert_eq!(joined.local.ip(), version.addr(2, CLIENT));
    assert!(!joined.backup);

    // Backup on the endpoint: the server sends MP_PRIO on the joined subflow.
    conn.server
        .set_flags(SIGNAL_ID, EndpointFlags::SIGNAL | EndpointFlags::BACKUP)
        .await
        .expect("set_flags");
    let prio = wait_for(&mut conn.events, "SUB_PRIORITY", |e| match e {
        Event::SubflowPriority(s) => Some(*s),
        _ => None,
    })
    .await;
    assert!(prio.backup);
    assert_eq!(
        (prio.token, prio.remote_id, prio.local, prio.remote),
        (token, SIGNAL_ID, joined.local, joined.remote)
    );

    // Deleting the endpoint: RM_ADDR to the client and the joined subflow closes, in
    // whichever order the two arrive.
    conn.server
        .del_addr(SIGNAL_ID)
        .await
        .expect("del signal endpoint");
    let (mut removed, mut closed) = (None, None);
    while removed.is_none() || closed.is_none() {
        match wait_for(&mut conn.events, "REMOVED and SUB_CLOSED", |e| {
            Some(e.clone())
        })
        .await
        {
            Event::Removed { token, remote_id } => removed = Some((token, remote_id)),
            Event::SubflowClosed(s) if s.remote_id == SIGNAL_ID => closed = Some(s),
            _ => {}
        }
    }
    assert_eq!(removed, Some((token, SIGNAL_ID)));
    let closed = closed.expect("SUB_CLOSED");
    assert_eq!(
        (closed.token, closed.local, closed.remote),
        (token, joined.local, joined.remote)
    );

    close(conn).await;
}

/// Connects from the client's first address; checks CREATED and ESTABLISHED on both sides.
async fn connect(hosts: &TwoHosts, version: IpVersion) -> Connected {
    let server_addr = SocketAddr::new(version.addr(1, SERVER), PORT);
    let (server, mut server_events, listener) = {
        let _in = hosts.server.enter().unwrap();
        let (client, events) = pm().await;
        let listen_on = SocketAddr::new(version.unspecified(), PORT);
        let listener = mptcp_tokio::listen(listen_on).expect("listen");
        (client, events, listener)
    };
    let (client, mut events, stream) = {
        let _in = hosts.client.enter().unwrap();
        let (client, events) = pm().await;
        let stream = mptcp_tokio::connect(server_addr).expect("connect");
        (client, events, stream)
    };
    let (accepted, _) = timeout(WAIT, listener.accept())
        .await
        .expect("accept")
        .expect("accept");
    mptcp_tokio::send(&stream, b"x").await.expect("send");
    let local = stream.local_addr().expect("local address");

    let created = wait_for(&mut events, "CREATED", |e| match e {
        Event::Created(c) => Some(*c),
        _ => None,
    })
    .await;
    assert_eq!(
        (created.local, created.remote, created.server_side),
        (local, server_addr, false)
    );
    let established = wait_for(&mut events, "ESTABLISHED", |e| match e {
        Event::Established(c) => Some(*c),
        _ => None,
    })
    .await;
    assert_eq!(established.token, created.token);
    assert_eq!(
        (established.local, established.remote),
        (local, server_addr)
    );
    let on_server = wait_for(&mut server_events, "server ESTABLISHED", |e| match e {
        Event::Established(c) => Some(*c),
        _ => None,
    })
    .await;
    assert!(on_server.server_side);
    assert_eq!((on_server.local, on_server.remote), (server_addr, local));
    Connected {
        server,
        server_events,
        events,
        stream,
        accepted,
        token: created.token,
        server_token: on_server.token,
        _client: client,
        _listener: listener,
    }
}

/// A graceful close on both sides: CLOSED on each.
async fn close(conn: Connected) {
    let Connected {
        mut server_events,
        mut events,
        stream,
        accepted,
        token,
        server_token,
        ..
    } = conn;
    drop(stream);
    timeout(WAIT, mptcp_tokio::read_to_end(&accepted))
        .await
        .expect("end of stream")
        .expect("read");
    drop(accepted);
    let closed = wait_for(&mut events, "CLOSED", |e| match e {
        Event::Closed { token } => Some(*token),
        _ => None,
    })
    .await;
    assert_eq!(closed, token);
    let closed = wait_for(&mut server_events, "server CLOSED", |e| match e {
        Event::Closed { token } => Some(*token),
        _ => None,
    })
    .await;
    assert_eq!(closed, server_token);
}
