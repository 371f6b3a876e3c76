use std::net::{IpAddr, SocketAddr};

use mptcpd_plugin::{
    Connection, Endpoint, EndpointFlags, Event, Plugin as _, Subflow, SubflowPath,
    testing::{self, Call, RecordingPm, address_down, address_up, block_on},
};

use crate::Sspi;

const TOKEN: u32 = 0xabcd;

fn sock(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn path(local: &str, remote: &str) -> SubflowPath {
    SubflowPath {
        token: TOKEN,
        local: sock(local),
        remote: sock(remote),
    }
}

fn conn() -> Connection {
    testing::connection(path("10.0.1.1:40000", "10.0.1.2:5201"))
}

fn subflow(local: &str, remote: &str) -> Subflow {
    testing::subflow(path(local, remote))
}

/// Interfaces 1 (10.0.1.1), 2 (10.0.2.1, 10.0.2.9), 3 (10.0.3.1 and an IPv6 address).
fn setup() -> (Sspi, RecordingPm) {
    let pm = RecordingPm::new();
    let p = Sspi::new();
    for (index, addr) in [
        (1, "10.0.1.1"),
        (2, "10.0.2.1"),
        (2, "10.0.2.9"),
        (3, "10.0.3.1"),
        (3, "2001:db8::1"),
    ] {
        block_on(p.on_event(&address_up(index, ip(addr)), &pm));
    }
    (p, pm)
}

#[test]
fn announces_one_address_per_other_interface_with_real_ids_and_listeners() {
    let (p, pm) = setup();
    block_on(p.on_event(&Event::NewConnection(conn()), &pm));
    assert_eq!(pm.take_calls(), [], "nothing before ESTABLISHED");
    block_on(p.on_event(&Event::ConnectionEstablished(conn()), &pm));
    let calls = pm.take_calls();
    let announced: Vec<Endpoint> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Announce(TOKEN, e) => Some(*e),
            _ => None,
        })
        .collect();
    assert_eq!(announced.len(), 2, "{calls:?}");
    assert_eq!(announced[0].addr, ip("10.0.2.1"));
    assert_eq!(announced[1].addr, ip("10.0.3.1"));
    for e in &announced {
        assert_ne!(e.id, 0, "id 0 is never announced");
        assert!(e.port.is_some_and(|p| p != 0), "{e:?}");
        assert!(e.flags.contains(EndpointFlags::SIGNAL));
    }
    assert_eq!(pm.listeners().len(), 2);
    // Closing the connection releases them.
    block_on(p.on_event(&Event::ConnectionClosed(TOKEN), &pm));
    assert!(pm.listeners().is_empty());
    assert_eq!(
        p.subflows_of(TOKEN),
        0,
        "state of a closed connection is dropped"
    );
}

#[test]
fn a_failed_announcement_releases_its_listener() {
    let (p, pm) = setup();
    block_on(p.on_event(&Event::NewConnection(conn()), &pm));
    pm.fail_next("announce", 22);
    block_on(p.on_event(&Event::ConnectionEstablished(conn()), &pm));
    assert_eq!(pm.listeners().len(), 1);
}

#[test]
fn a_second_subflow_on_an_interface_is_closed() {
    let (p, pm) = setup();
    block_on(p.on_event(&Event::NewConnection(conn()), &pm));
    // A join on interface 2: kept.
    block_on(p.on_event(
        &Event::NewSubflow(subflow("10.0.2.1:41000", "10.0.1.2:5201")),
        &pm,
    ));
    assert_eq!(pm.take_calls(), []);
    // Another one on interface 2 (other address of the same interface): closed.
    let extra = subflow("10.0.2.9:41001", "10.0.2.2:5201");
    block_on(p.on_event(&Event::NewSubflow(extra), &pm));
    assert_eq!(pm.take_calls(), [Call::SubflowDestroy(extra.path())]);
    // A second one on the initial subflow's interface: closed too.
    let extra1 = subflow("10.0.1.1:41002", "10.0.2.2:5201");
    block_on(p.on_event(&Event::NewSubflow(extra1), &pm));
    assert_eq!(pm.take_calls(), [Call::SubflowDestroy(extra1.path())]);
    // The extra one closing does not free interface 2 (the C plugin's bug) ...
    block_on(p.on_event(&Event::SubflowClosed(extra), &pm));
    let again = subflow("10.0.2.9:41003", "10.0.2.2:5201");
    block_on(p.on_event(&Event::NewSubflow(again), &pm));
    assert_eq!(pm.take_calls(), [Call::SubflowDestroy(again.path())]);
    // ... the kept one closing does.
    block_on(p.on_event(
        &Event::SubflowClosed(subflow("10.0.2.1:41000", "10.0.1.2:5201")),
        &pm,
    ));
    block_on(p.on_event(&Event::NewSubflow(again), &pm));
    assert_eq!(pm.take_calls(), []);
    assert_eq!(p.subflows_of(TOKEN), 2);
}

#[test]
fn unknown_addresses_are_left_alone() {
    let (p, pm) = setup();
    block_on(p.on_event(
        &Event::NewSubflow(subflow("192.0.2.1:1", "10.0.1.2:5201")),
        &pm,
    ));
    block_on(p.on_event(
        &Event::NewSubflow(subflow("192.0.2.1:2", "10.0.1.2:5201")),
        &pm,
    ));
    assert_eq!(pm.take_calls(), []);
}

#[test]
fn an_address_on_two_interfaces_stays_known_when_one_loses_it() {
    let (p, pm) = setup();
    // 10.0.2.1 is also on interface 4; it goes from 2.
    block_on(p.on_event(&address_up(4, ip("10.0.2.1")), &pm));
    block_on(p.on_event(&address_down(2, ip("10.0.2.1")), &pm));
    block_on(p.on_event(&Event::NewConnection(conn()), &pm));
    block_on(p.on_event(
        &Event::NewSubflow(subflow("10.0.2.1:41000", "10.0.1.2:5201")),
        &pm,
    ));
    let extra = subflow("10.0.2.1:41001", "10.0.2.2:5201");
    block_on(p.on_event(&Event::NewSubflow(extra), &pm));
    assert_eq!(
        pm.take_calls(),
        [Call::SubflowDestroy(extra.path())],
        "still on interface 4: one subflow there"
    );
    // A subflow bound to the other interface of a shared address counts there.
    block_on(p.on_event(&address_up(2, ip("10.0.2.1")), &pm));
    let mut bound = subflow("10.0.2.1:41002", "10.0.2.2:5201");
    bound.if_idx = Some(2);
    block_on(p.on_event(&Event::NewSubflow(bound), &pm));
    assert_eq!(pm.take_calls(), [], "interface 2 had no subflow");
}

#[test]
fn a_shared_address_is_announced_once() {
    let (p, pm) = setup();
    block_on(p.on_event(&address_up(5, ip("10.0.2.1")), &pm));
    block_on(p.on_event(&Event::NewConnection(conn()), &pm));
    block_on(p.on_event(&Event::ConnectionEstablished(conn()), &pm));
    let announced: Vec<IpAddr> = pm
        .take_calls()
        .iter()
        .filter_map(|c| match c {
            Call::Announce(_, e) => Some(e.addr),
            _ => None,
        })
        .collect();
    assert_eq!(announced, [ip("10.0.2.1"), ip("10.0.3.1")]);
}
