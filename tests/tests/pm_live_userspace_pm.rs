//! Every userspace-PM command over IPv4 and IPv6 between two namespaces (the client with
//! `net.mptcp.pm_type=1`, the server with the in-kernel PM), the events each one causes, and
//! the kernel's refusal of every token command once the connection has closed.
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::net::{IpAddr, SocketAddr};

use mptcp_pm::{Endpoint, EndpointFlags, Event, NewSubflow, SubflowPath};
use mptcpd_tests::{
    kernel_pm::{
        connection::PmConnection,
        events::{kernel_error, wait_for},
    },
    net::{
        sysctl,
        two_hosts::{CLIENT, IpVersion, TwoHosts},
    },
    skip,
};

/// The id of the announced address and of the first extra subflow.
const ANNOUNCED_ID: u8 = 5;
/// The id of the subflow that is destroyed.
const DESTROYED_ID: u8 = 6;

#[tokio::test]
async fn userspace_pm_commands_and_events_ipv4() {
    if !skip::require_root("userspace_pm_commands_and_events_ipv4") {
        return;
    }
    commands_and_events(IpVersion::V4, concat!("mptcpd-t-upm-", "v4")).await;
}

#[tokio::test]
async fn userspace_pm_commands_and_events_ipv6() {
    if !skip::require_root("userspace_pm_commands_and_events_ipv6") {
        return;
    }
    commands_and_events(IpVersion::V6, concat!("mptcpd-t-upm-", "v6")).await;
}

async fn commands_and_events(version: IpVersion, prefix: &str) {
    let hosts = TwoHosts::new(prefix).expect("namespaces");
    sysctl::set_in(&hosts.client, "net.mptcp.pm_type", "1").expect("userspace PM");
    let mut conn = PmConnection::open(&hosts, version).await;
    let (token, remote) = (conn.token, conn.remote);
    let second = version.addr(2, CLIENT);

    // ANNOUNCE: the server sees ADD_ADDR.
    let announced = Endpoint::new(second, EndpointFlags::empty()).with_id(ANNOUNCED_ID);
    conn.client
        .announce(token, &announced)
        .await
        .expect("announce");
    let seen = wait_for(&mut conn.server_events, "ANNOUNCED", |e| match e {
        Event::Announced(a) => Some(*a),
        _ => None,
    })
    .await;
    assert_eq!(
        (seen.token, seen.id, seen.addr),
        (conn.server_token, ANNOUNCED_ID, second)
    );

    // SUBFLOW_CREATE from the second address: SUB_ESTABLISHED on both sides.
    conn.client
        .subflow_create(&NewSubflow {
            token,
            local: announced,
            remote,
        })
        .await
        .expect("subflow_create");
    let sub = wait_for(&mut conn.events, "SUB_ESTABLISHED", |e| match e {
        Event::SubflowEstablished(s) if s.local_id == ANNOUNCED_ID => Some(*s),
        _ => None,
    })
    .await;
    assert_eq!(
        (sub.token, sub.local.ip(), sub.remote),
        (token, second, remote)
    );
    let on_server = wait_for(
        &mut conn.server_events,
        "server SUB_ESTABLISHED",
        |e| match e {
            Event::SubflowEstablished(s) if s.remote_id == ANNOUNCED_ID => Some(*s),
            _ => None,
        },
    )
    .await;
    assert_eq!((on_server.local, on_server.remote), (sub.remote, sub.local));
    let local_addrs = conn
        .client
        .dump_addrs_for(token)
        .await
        .expect("dump by token");
    assert!(
        local_addrs
            .iter()
            .any(|e| e.id == ANNOUNCED_ID && e.addr == second),
        "{local_addrs:?}"
    );

    // SET_FLAGS by token: MP_PRIO, seen by the server.
    let path = SubflowPath {
        token,
        local: SocketAddr::new(second, 0),
        remote,
    };
    conn.client
        .set_flags_for(path, EndpointFlags::BACKUP)
        .await
        .expect("set_flags");
    let prio = wait_for(&mut conn.server_events, "SUB_PRIORITY", |e| match e {
        Event::SubflowPriority(s) => Some(*s),
        _ => None,
    })
    .await;
    assert!(prio.backup);
    assert_eq!(
        (prio.token, prio.remote_id, prio.remote),
        (conn.server_token, ANNOUNCED_ID, sub.local)
    );

    // REMOVE: RM_ADDR to the server, and the subflow from that address closes.
    conn.client
        .remove(token, ANNOUNCED_ID)
        .await
        .expect("remove");
    let removed = wait_for(&mut conn.server_events, "REMOVED", |e| match e {
        Event::Removed { token, remote_id } => Some((*token, *remote_id)),
        _ => None,
    })
    .await;
    assert_eq!(removed, (conn.server_token, ANNOUNCED_ID));
    let closed = wait_for(&mut conn.events, "SUB_CLOSED", |e| match e {
        Event::SubflowClosed(s) if s.local_id == ANNOUNCED_ID => Some(*s),
        _ => None,
    })
    .await;
    assert_eq!((closed.local, closed.remote), (sub.local, sub.remote));

    subflow_destroy(&mut conn, second).await;

    foreign_and_wrong_tokens_are_refused(&conn, second).await;

    conn.close().await;
    closed_token_is_refused(&conn, version).await;
    conn.close_listener().await;
}

/// The server's connection belongs to the in-kernel PM, and a token that names no connection is
/// no token: both are refused.
async fn foreign_and_wrong_tokens_are_refused(conn: &PmConnection, second: IpAddr) {
    let (token, remote) = (conn.token, conn.remote);
    let (errno, message) = kernel_error(conn.server.remove(conn.server_token, 1).await);
    assert_eq!(errno, libc::EINVAL);
    assert!(message.contains("userspace PM not selected"), "{message}");
    let wrong = conn
        .client
        .set_flags_for(
            SubflowPath {
                token: token ^ 1,
                local: SocketAddr::new(second, 0),
                remote,
            },
            EndpointFlags::BACKUP,
        )
        .await;
    let (errno, message) = kernel_error(wrong);
    assert_eq!(errno, libc::EINVAL, "{message}");
}

/// Every command that takes a token, with the token of the connection that just closed.
///
/// The kernel can send CLOSED before it releases the token (seen on a loaded machine, where
/// the first command after CLOSED was still accepted): a read-only dump waits for the token
/// to go (bounded), then every command must be refused.
async fn closed_token_is_refused(conn: &PmConnection, version: IpVersion) {
    let (client, token, remote) = (&conn.client, conn.token, conn.remote);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while client.dump_addrs_for(token).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the closed connection's token is still valid after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let second = version.addr(2, CLIENT);
    let endpoint = Endpoint::new(second, EndpointFlags::empty()).with_id(7);
    let from = SocketAddr::new(second, 0);
    let results = [
        (
            "announce",
            kernel_error(client.announce(token, &endpoint).await),
        ),
        (
            "remove",
            kernel_error(client.remove(token, ANNOUNCED_ID).await),
        ),
        (
            "subflow_create",
            kernel_error(
                client
                    .subflow_create(&NewSubflow {
                        token,
                        local: endpoint,
                        remote,
                    })
                    .await,
            ),
        ),
        (
            "subflow_destroy",
            kernel_error(
                client
                    .subflow_destroy(SubflowPath {
                        token,
                        local: conn.local,
                        remote,
                    })
                    .await,
            ),
        ),
        (
            "set_flags",
            kernel_error(
                client
                    .set_flags_for(
                        SubflowPath {
                            token,
                            local: from,
                            remote,
                        },
                        EndpointFlags::BACKUP,
                    )
                    .await,
            ),
        ),
        (
            "dump_addrs",
            kernel_error(client.dump_addrs_for(token).await),
        ),
    ];
    for (command, (errno, message)) in results {
        assert_eq!(
            (errno, message.as_str()),
            (libc::EINVAL, "invalid token"),
            "{command}"
        );
    }
}

/// `SUBFLOW_DESTROY` of a fresh subflow from `from`.
async fn subflow_destroy(conn: &mut PmConnection, from: IpAddr) {
    let third = Endpoint::new(from, EndpointFlags::empty()).with_id(DESTROYED_ID);
    conn.client
        .subflow_create(&NewSubflow {
            token: conn.token,
            local: third,
            remote: conn.remote,
        })
        .await
        .expect("subflow_create");
    let sub = wait_for(&mut conn.events, "SUB_ESTABLISHED", |e| match e {
        Event::SubflowEstablished(s) if s.local_id == DESTROYED_ID => Some(*s),
        _ => None,
    })
    .await;
    conn.client
        .subflow_destroy(sub.path())
        .await
        .expect("subflow_destroy");
    let closed = wait_for(&mut conn.events, "SUB_CLOSED", |e| match e {
        Event::SubflowClosed(s) if s.local_id == DESTROYED_ID => Some(*s),
        _ => None,
    })
    .await;
    assert_eq!((closed.local, closed.remote), (sub.local, sub.remote));
}
