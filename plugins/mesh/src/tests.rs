use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use mptcpd_plugin::{
    Commands as _, Connection, Event, EventFlags, Limits, NewSubflow, PathManager as _,
    Plugin as _, PluginConfig, RemoteAddress, Subflow, SubflowPath,
    testing::{self, Call, RecordingPm, address_up, block_on},
};

use crate::Mesh;

const TOKEN: u32 = 0xabcd;

fn sock(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn conn() -> Connection {
    testing::connection(SubflowPath {
        token: TOKEN,
        local: sock("10.0.1.1:40000"),
        remote: sock("10.0.1.2:5201"),
    })
}

/// Interfaces 1 (10.0.1.1, the connection's), 2 (10.0.2.1), 3 (10.0.3.1, an IPv6 address
/// and a link-local one).
fn setup(max_subflows: Option<u32>) -> (Mesh, RecordingPm) {
    setup_with(Mesh::new(&PluginConfig {
        max_subflows,
        ..PluginConfig::default()
    }))
}

fn setup_with(p: Mesh) -> (Mesh, RecordingPm) {
    let pm = RecordingPm::new();
    for (index, addr) in [
        (1, "10.0.1.1"),
        (2, "10.0.2.1"),
        (3, "10.0.3.1"),
        (3, "2001:db8::1"),
        (3, "fe80::1"),
    ] {
        block_on(p.on_event(&address_up(index, ip(addr)), &pm));
    }
    (p, pm)
}

/// Sets the (fake) kernel's subflow limit and forgets the call.
fn kernel_limit(pm: &RecordingPm, subflows: u32) {
    block_on(pm.set_limits(Limits {
        add_addr_accepted: 0,
        subflows,
    }))
    .unwrap();
    pm.take_calls();
}

fn established(p: &Mesh, pm: &RecordingPm, conn: Connection) {
    block_on(p.on_event(&Event::NewConnection(conn), pm));
    block_on(p.on_event(&Event::ConnectionEstablished(conn), pm));
}

fn created(calls: &[Call]) -> Vec<NewSubflow> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::SubflowCreate(s) => Some(*s),
            _ => None,
        })
        .collect()
}

/// (local address, interface, remote) of each created subflow.
fn pairs(calls: &[Call]) -> Vec<(IpAddr, Option<i32>, SocketAddr)> {
    created(calls)
        .iter()
        .map(|s| (s.local.addr, s.local.if_idx, s.remote))
        .collect()
}

fn announce(p: &Mesh, pm: &RecordingPm, id: u8, addr: &str, port: Option<u16>) {
    let addr = RemoteAddress {
        token: TOKEN,
        id,
        addr: ip(addr),
        port,
    };
    block_on(p.on_event(&Event::NewAddress(addr), pm));
}

/// The subflow `local` -> `remote` of the connection.
fn subflow(local: &str, remote: &str) -> Subflow {
    testing::subflow(SubflowPath {
        token: TOKEN,
        local: sock(local),
        remote: sock(remote),
    })
}

fn closed(p: &Mesh, pm: &RecordingPm, local: &str, remote: &str) {
    block_on(p.on_event(&Event::SubflowClosed(subflow(local, remote)), pm));
}

fn joined(p: &Mesh, pm: &RecordingPm, local: &str, remote: &str) {
    block_on(p.on_event(&Event::NewSubflow(subflow(local, remote)), pm));
}

#[test]
fn a_subflow_from_every_other_address_bound_to_its_interface_with_its_id() {
    let (p, pm) = setup(Some(8));
    block_on(p.on_event(&Event::NewConnection(conn()), &pm));
    assert_eq!(pm.take_calls(), [], "nothing before ESTABLISHED");
    block_on(p.on_event(&Event::ConnectionEstablished(conn()), &pm));
    let calls = pm.take_calls();
    assert_eq!(
        pairs(&calls),
        [
            (ip("10.0.2.1"), Some(2), sock("10.0.1.2:5201")),
            (ip("10.0.3.1"), Some(3), sock("10.0.1.2:5201")),
        ],
        "not from the initial address, the other family or a link-local one: {calls:?}"
    );
    for s in created(&calls) {
        assert_eq!(s.token, TOKEN);
        assert_eq!(
            s.local.id,
            pm.address_id(s.local.addr).unwrap(),
            "the shared id"
        );
        assert_ne!(s.local.id, 0);
    }
    assert_eq!(p.subflows_of(TOKEN), 2);
    assert!(pm.listeners().is_empty(), "no listener taken");
}

#[test]
fn at_most_max_subflows_and_the_default_is_the_kernels_limit() {
    let (p, pm) = setup(Some(1));
    established(&p, &pm, conn());
    let calls = pm.take_calls();
    assert_eq!(created(&calls).len(), 1, "{calls:?}");
    assert!(!calls.contains(&Call::GetLimits), "a configured limit wins");
    announce(&p, &pm, 1, "10.0.9.2", None);
    assert_eq!(created(&pm.take_calls()), [], "still one");

    let (p, pm) = setup(None);
    kernel_limit(&pm, 1);
    established(&p, &pm, conn());
    let calls = pm.take_calls();
    assert_eq!(calls.first(), Some(&Call::GetLimits), "{calls:?}");
    assert_eq!(created(&calls).len(), 1, "the kernel's limit: {calls:?}");

    let (p, pm) = setup(Some(0));
    established(&p, &pm, conn());
    assert_eq!(created(&pm.take_calls()), [], "0: none at all");
}

fn conn_with(token: u32) -> Connection {
    testing::connection(SubflowPath {
        token,
        local: sock("10.0.1.1:40000"),
        remote: sock("10.0.1.2:5201"),
    })
}

fn limits_read(calls: &[Call]) -> usize {
    calls.iter().filter(|c| **c == Call::GetLimits).count()
}

#[test]
fn the_kernels_limit_is_read_once_for_connections_established_together() {
    let (p, pm) = setup(None);
    kernel_limit(&pm, 2);
    for token in 1..=3 {
        established(&p, &pm, conn_with(token));
    }
    let calls = pm.take_calls();
    assert_eq!(limits_read(&calls), 1, "{calls:?}");
    assert_eq!(created(&calls).len(), 6, "two each: {calls:?}");
}

#[test]
fn a_changed_kernel_limit_applies_once_the_reading_is_old() {
    let (p, pm) = setup_with(Mesh::with_limit_max_age(
        &PluginConfig::default(),
        Duration::ZERO,
    ));
    kernel_limit(&pm, 2);
    established(&p, &pm, conn_with(1));
    assert_eq!(created(&pm.take_calls()).len(), 2, "the first limit");
    kernel_limit(&pm, 1);
    established(&p, &pm, conn_with(2));
    let calls = pm.take_calls();
    assert_eq!(limits_read(&calls), 1, "read again: {calls:?}");
    assert_eq!(created(&calls).len(), 1, "the new limit: {calls:?}");
}

#[test]
fn announced_addresses_get_a_subflow_from_every_address() {
    let (p, pm) = setup(Some(8));
    established(&p, &pm, conn());
    pm.take_calls();
    // No port: the initial subflow's peer port.
    announce(&p, &pm, 1, "10.0.2.2", None);
    assert_eq!(
        pairs(&pm.take_calls()),
        [
            (ip("10.0.1.1"), Some(1), sock("10.0.2.2:5201")),
            (ip("10.0.2.1"), Some(2), sock("10.0.2.2:5201")),
            (ip("10.0.3.1"), Some(3), sock("10.0.2.2:5201")),
        ]
    );
    announce(&p, &pm, 2, "2001:db8::2", Some(7000));
    assert_eq!(
        pairs(&pm.take_calls()),
        [(ip("2001:db8::1"), Some(3), sock("[2001:db8::2]:7000"))],
        "the family's addresses only"
    );
    assert_eq!(p.subflows_of(TOKEN), 6);
}

#[test]
fn an_announcement_before_establishment_waits_for_it() {
    let (p, pm) = setup(Some(8));
    block_on(p.on_event(&Event::NewConnection(conn()), &pm));
    announce(&p, &pm, 1, "10.0.2.2", Some(6000));
    assert_eq!(pm.take_calls(), []);
    block_on(p.on_event(&Event::ConnectionEstablished(conn()), &pm));
    assert_eq!(created(&pm.take_calls()).len(), 5);
}

#[test]
fn the_server_side_joins_only_announced_addresses() {
    let (p, pm) = setup(Some(8));
    let server = Connection {
        flags: EventFlags::SERVER_SIDE,
        ..conn()
    };
    established(&p, &pm, server);
    assert_eq!(
        created(&pm.take_calls()),
        [],
        "the client's port listens for nothing"
    );
    announce(&p, &pm, 1, "10.0.1.2", Some(6000));
    assert_eq!(
        pairs(&pm.take_calls()),
        [
            (ip("10.0.2.1"), Some(2), sock("10.0.1.2:6000")),
            (ip("10.0.3.1"), Some(3), sock("10.0.1.2:6000")),
        ],
        "not the initial pair again"
    );
}

#[test]
fn a_closed_subflow_frees_its_place_for_the_next_untried_pair_and_is_not_retried() {
    let (p, pm) = setup(Some(2));
    established(&p, &pm, conn());
    pm.take_calls();
    announce(&p, &pm, 1, "10.0.2.2", None);
    assert_eq!(created(&pm.take_calls()), [], "full");
    closed(&p, &pm, "10.0.2.1:41000", "10.0.1.2:5201");
    assert_eq!(pm.take_calls(), [], "not at once");
    assert_eq!(p.subflows_of(TOKEN), 1);
    announce(&p, &pm, 2, "10.0.3.2", None);
    assert_eq!(
        pairs(&pm.take_calls()),
        [(ip("10.0.1.1"), Some(1), sock("10.0.2.2:5201"))],
        "the next untried pair, not the closed one"
    );
    // A subflow the plugin did not make frees nothing.
    closed(&p, &pm, "10.0.1.1:40000", "10.0.1.2:5201");
    assert_eq!(pm.take_calls(), []);
    assert_eq!(p.subflows_of(TOKEN), 2);
}

#[test]
fn a_subflow_of_its_own_pair_re_created_by_another_plugin_counts_against_the_limit() {
    let (p, pm) = setup(Some(2));
    established(&p, &pm, conn());
    assert_eq!(created(&pm.take_calls()).len(), 2);
    // `health` closes the subflow from 10.0.2.1 (dead path), then re-creates it (re-probe).
    closed(&p, &pm, "10.0.2.1:41000", "10.0.1.2:5201");
    assert_eq!(p.subflows_of(TOKEN), 1);
    joined(&p, &pm, "10.0.2.1:41001", "10.0.1.2:5201");
    assert_eq!(p.subflows_of(TOKEN), 2, "its pair is open again");
    announce(&p, &pm, 1, "10.0.2.2", None);
    assert_eq!(created(&pm.take_calls()), [], "the limit holds");
    // A join the plugin never tried (the peer's) takes no place of its own.
    joined(&p, &pm, "10.0.1.1:40000", "10.0.4.2:5201");
    assert_eq!(p.subflows_of(TOKEN), 2);
}

#[test]
fn a_refused_create_frees_its_place() {
    let (p, pm) = setup(Some(1));
    pm.fail_next("subflow_create", testing::EINVAL);
    established(&p, &pm, conn());
    assert_eq!(created(&pm.take_calls()).len(), 1);
    assert_eq!(p.subflows_of(TOKEN), 0);
    announce(&p, &pm, 1, "10.0.2.2", None);
    assert_eq!(
        pairs(&pm.take_calls()),
        [(ip("10.0.3.1"), Some(3), sock("10.0.1.2:5201"))],
        "the place is free; the refused pair is not tried again"
    );
}

#[test]
fn close_releases_ids_no_other_connection_holds() {
    let (p, pm) = setup(Some(8));
    established(&p, &pm, conn());
    let other = Connection {
        token: TOKEN + 1,
        local: sock("10.0.3.1:40001"),
        ..conn()
    };
    established(&p, &pm, other);
    let ids = |addr| pm.address_id(ip(addr)).unwrap();
    let (id2, id3) = (ids("10.0.2.1"), ids("10.0.3.1"));
    block_on(p.on_event(&Event::ConnectionClosed(TOKEN), &pm));
    assert_eq!(p.subflows_of(TOKEN), 0);
    // 10.0.2.1 is still used by the other connection: same id.
    assert_eq!(ids("10.0.2.1"), id2);
    block_on(p.on_event(&Event::ConnectionClosed(TOKEN + 1), &pm));
    assert_eq!(p.connections(), 0);
    // Both released: a new address takes the lowest id, the one 10.0.2.1 had.
    let fresh = pm.address_id(ip("10.0.7.7")).unwrap();
    assert_eq!(fresh, id2.min(id3), "released ids are free again");
    assert!(pm.listeners().is_empty());
}

#[test]
fn no_subflow_from_a_path_judged_dead_until_it_is_back() {
    let (p, pm) = setup(Some(8));
    let dead = |to| mptcpd_plugin::PathDecision {
        plugin: "health",
        addr: ip("10.0.2.1"),
        from: mptcpd_plugin::PathHealth::Healthy,
        to,
        reason: String::new(),
        action: String::new(),
    };
    pm.report_decision(dead(mptcpd_plugin::PathHealth::Dead));
    established(&p, &pm, conn());
    assert_eq!(
        pairs(&pm.take_calls()),
        [(ip("10.0.3.1"), Some(3), sock("10.0.1.2:5201"))],
        "not from the dead 10.0.2.1"
    );
    // Back: the next announcement takes the pair, which was never tried.
    pm.report_decision(dead(mptcpd_plugin::PathHealth::Healthy));
    announce(&p, &pm, 9, "10.0.9.2", Some(5201));
    let pairs = pairs(&pm.take_calls());
    assert!(
        pairs.contains(&(ip("10.0.2.1"), Some(2), sock("10.0.1.2:5201"))),
        "{pairs:?}"
    );
}
