//! The in-kernel PM's endpoint commands with IPv6 endpoints, and their refusals.
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::net::IpAddr;

use mptcp_pm::{Endpoint, EndpointFlags, PmClient};
use mptcpd_tests::{
    kernel_pm::events::kernel_error,
    net::{netns::NetNs, veth::Address},
    skip,
};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

#[tokio::test]
async fn ipv6_endpoints_add_get_dump_set_flags_del() {
    if !skip::require_root("ipv6_endpoints_add_get_dump_set_flags_del") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm6-", "endpoints")).unwrap();
    // A signal endpoint with a port listens on it: the address must be local.
    let _local = Address::add(&ns, "lo", "2001:db8::1/128").unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("connect");
    let endpoints = [
        Endpoint::new(ip("2001:db8::1"), EndpointFlags::SIGNAL)
            .with_id(1)
            .with_port(8080),
        Endpoint::new(
            ip("2001:db8:1::1"),
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
        )
        .with_id(2)
        .with_if_idx(1),
        Endpoint::new(ip("fe80::1"), EndpointFlags::SUBFLOW).with_id(3),
    ];
    for endpoint in &endpoints {
        client.add_addr(endpoint).await.expect("add_addr");
    }
    for endpoint in &endpoints {
        assert_eq!(
            client.get_addr(endpoint.id).await.expect("get_addr"),
            *endpoint
        );
    }
    assert_eq!(client.dump_addrs().await.expect("dump"), endpoints);

    // SET_FLAGS: backup off, then fullmesh on (the two flags the kernel changes).
    client
        .set_flags(2, EndpointFlags::SUBFLOW)
        .await
        .expect("set_flags");
    let changed = client.get_addr(2).await.expect("get_addr");
    assert_eq!(changed.flags, EndpointFlags::SUBFLOW);
    client
        .set_flags(2, EndpointFlags::SUBFLOW | EndpointFlags::FULLMESH)
        .await
        .expect("set_flags");
    let changed = client.get_addr(2).await.expect("get_addr");
    assert_eq!(
        changed.flags,
        EndpointFlags::SUBFLOW | EndpointFlags::FULLMESH
    );
    assert_eq!(changed.addr, ip("2001:db8:1::1"));

    // Id 0: the kernel picks the next free one.
    client
        .add_addr(&Endpoint::new(ip("2001:db8::9"), EndpointFlags::SIGNAL))
        .await
        .expect("add");
    let picked = client.dump_addrs().await.expect("dump");
    assert!(
        picked
            .iter()
            .any(|e| e.addr == ip("2001:db8::9") && e.id == 4),
        "{picked:?}"
    );

    client.del_addr(1).await.expect("del_addr");
    let left: Vec<(u8, IpAddr)> = client
        .dump_addrs()
        .await
        .expect("dump")
        .iter()
        .map(|e| (e.id, e.addr))
        .collect();
    assert_eq!(
        left,
        [
            (2, ip("2001:db8:1::1")),
            (3, ip("fe80::1")),
            (4, ip("2001:db8::9"))
        ]
    );
    client.flush_addrs().await.expect("flush");
    assert_eq!(client.dump_addrs().await.expect("dump"), []);
}

#[tokio::test]
async fn ipv6_endpoint_errors() {
    if !skip::require_root("ipv6_endpoint_errors") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pm6-", "errors")).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.expect("connect");
    let first = Endpoint::new(ip("2001:db8::1"), EndpointFlags::SIGNAL).with_id(1);
    client.add_addr(&first).await.expect("add");

    let (errno, message) = kernel_error(client.add_addr(&first.with_id(9)).await);
    assert_eq!(errno, libc::EEXIST, "{message}");
    assert!(message.contains("duplicate"), "{message}");

    // IPv4 and IPv6 endpoints share the limit of 8.
    for i in 2..=7_u16 {
        let addr = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]);
        client
            .add_addr(&Endpoint::new(addr, EndpointFlags::SIGNAL))
            .await
            .expect("add");
    }
    client
        .add_addr(&Endpoint::new(ip("192.0.2.8"), EndpointFlags::SIGNAL))
        .await
        .expect("add");
    let ninth = Endpoint::new(ip("2001:db8::99"), EndpointFlags::SIGNAL);
    let (errno, message) = kernel_error(client.add_addr(&ninth).await);
    assert_eq!(errno, libc::ERANGE, "{message}");
}
