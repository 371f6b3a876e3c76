//! Events of the in-kernel path manager between two namespaces, over IPv4 and IPv6: a
//! `signal` endpoint on the server is announced to the client (ANNOUNCED), which joins it
//! (`SUB_ESTABLISHED`); marking it backup sends `MP_PRIO` (`SUB_PRIORITY` on the client);
//! deleting it withdraws it (REMOVED, `SUB_CLOSED`).
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::net::SocketAddr;

use mptcp_pm::{Endpoint, EndpointFlags, Event};
use mptcpd_tests::{
    kernel_pm::{
        connection::{PORT, PmConnection},
        events::wait_for,
    },
    net::{
        sysctl,
        two_hosts::{CLIENT, IpVersion, SERVER, TwoHosts},
    },
    skip,
};

/// The id of the server's `signal` endpoint.
const SIGNAL_ID: u8 = 3;

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

/// A server that forbids joins to its initial address and port
/// (`net.mptcp.allow_join_initial_addr_port = 0`): the client's connection events carry the
/// kernel's `deny_join_id0` flag, the server's its `server_side` flag, as decoded values.
#[tokio::test]
async fn connection_events_carry_the_kernels_event_flags() {
    if !skip::require_root("connection_events_carry_the_kernels_event_flags") {
        return;
    }
    let hosts = TwoHosts::new(concat!("mptcpd-t-kpm-", "deny")).expect("namespaces");
    sysctl::set_in(&hosts.server, "net.mptcp.allow_join_initial_addr_port", "0")
        .expect("forbid joins to the initial address");
    let mut conn = PmConnection::open(&hosts, IpVersion::V4).await;
    let (client, server) = (conn.established, conn.server_established);
    assert!(client.deny_join_id0(), "{client:?}");
    assert!(!client.server_side(), "{client:?}");
    assert!(
        server.server_side() && !server.deny_join_id0(),
        "{server:?}"
    );
    conn.close().await;
}

async fn signal_endpoint_events(version: IpVersion, prefix: &str) {
    let hosts = TwoHosts::new(prefix).expect("namespaces");
    let mut conn = PmConnection::open(&hosts, version).await;
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
        (announced.token, announced.id, announced.addr),
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

    conn.close().await;
    conn.close_listener().await;
}
