use std::net::IpAddr;

use mptcpd_plugin::{
    Commands as _, Endpoint, EndpointFlags, EndpointPolicy, Event, Limits, Plugin as _,
    PluginConfig,
    testing::{Call, EBUSY, RecordingPm, address_down, address_up, block_on, interface},
};

use crate::AddrAdv;

fn ip(n: u8) -> IpAddr {
    IpAddr::from([10, 0, n, 1])
}

fn plugin(flags: EndpointFlags) -> (AddrAdv, RecordingPm) {
    let pm = RecordingPm::new();
    let plugin = AddrAdv::new(&PluginConfig {
        addr_flags: flags,
        ..PluginConfig::default()
    });
    block_on(plugin.init(&pm));
    (plugin, pm)
}

fn endpoint(id: u8, n: u8, flags: EndpointFlags, ifindex: i32) -> Endpoint {
    Endpoint {
        id,
        addr: ip(n),
        port: None,
        flags,
        if_idx: Some(ifindex),
    }
}

#[test]
fn init_sets_the_c_plugins_starting_limits() {
    let (_, pm) = plugin(EndpointFlags::SUBFLOW);
    let limits = Limits {
        add_addr_accepted: 2,
        subflows: 2,
    };
    assert_eq!(pm.take_calls(), [Call::SetLimits(limits)]);
    let (_, pm) = plugin(EndpointFlags::SIGNAL);
    let limits = Limits {
        add_addr_accepted: 0,
        subflows: 2,
    };
    assert_eq!(
        pm.take_calls(),
        [Call::SetLimits(limits)],
        "add_addr_accepted follows only with subflow"
    );
}

#[test]
fn an_address_gets_an_endpoint_with_the_flags_and_loses_it() {
    let flags = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    let (p, pm) = plugin(flags);
    pm.take_calls();
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    let added = endpoint(1, 1, flags, 3);
    assert_eq!(
        pm.take_calls(),
        [
            Call::AddEndpoint(added),
            Call::SetLimits(Limits {
                add_addr_accepted: 3,
                subflows: 3
            })
        ]
    );
    // Reported again (e.g. after a monitor resync): nothing to do.
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    assert_eq!(pm.take_calls(), []);
    block_on(p.on_event(&address_down(3, ip(1)), &pm));
    assert_eq!(
        pm.take_calls(),
        [
            Call::RemoveEndpoint(1),
            Call::SetLimits(Limits {
                add_addr_accepted: 2,
                subflows: 2
            })
        ]
    );
    assert_eq!(pm.endpoints(), []);
    // An address it never had: nothing.
    block_on(p.on_event(&address_down(3, ip(9)), &pm));
    assert_eq!(pm.take_calls(), []);
}

#[test]
fn the_ninth_address_waits_for_room() {
    let (p, pm) = plugin(EndpointFlags::SIGNAL);
    for n in 1..=9 {
        block_on(p.on_event(&address_up(u32::from(n), ip(n)), &pm));
    }
    assert_eq!(pm.endpoints().len(), 8);
    assert!(!pm.endpoints().iter().any(|e| e.addr == ip(9)));
    // Limits stop following past 8.
    assert_eq!(pm.limits().subflows, 8);
    pm.take_calls();
    block_on(p.on_event(&address_down(2, ip(2)), &pm));
    let calls = pm.take_calls();
    assert_eq!(calls[0], Call::RemoveEndpoint(2));
    assert!(
        calls.contains(&Call::AddEndpoint(endpoint(2, 9, EndpointFlags::SIGNAL, 9))),
        "the waiting address takes the freed room (and the freed id): {calls:?}"
    );
    assert_eq!(pm.endpoints().len(), 8);
    // A waiting address that goes away stops waiting.
    block_on(p.on_event(&address_up(10, ip(10)), &pm));
    block_on(p.on_event(&address_down(10, ip(10)), &pm));
    block_on(p.on_event(&address_down(1, ip(1)), &pm));
    assert!(!pm.endpoints().iter().any(|e| e.addr == ip(10)));
}

#[test]
fn a_link_going_away_removes_its_endpoints_only() {
    let (p, pm) = plugin(EndpointFlags::SUBFLOW);
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    block_on(p.on_event(&address_up(3, ip(2)), &pm));
    block_on(p.on_event(&address_up(4, ip(3)), &pm));
    block_on(p.on_event(&Event::DeleteInterface(interface(3)), &pm));
    let left: Vec<IpAddr> = pm.endpoints().iter().map(|e| e.addr).collect();
    assert_eq!(left, [ip(3)]);
    // Back up: the monitor reports the addresses again.
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    assert_eq!(pm.endpoints().len(), 2);
}

#[test]
fn an_address_moving_to_another_link_is_rebound() {
    let (p, pm) = plugin(EndpointFlags::SUBFLOW);
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    block_on(p.on_event(&address_down(3, ip(1)), &pm));
    block_on(p.on_event(&address_up(5, ip(1)), &pm));
    assert_eq!(pm.endpoints(), [endpoint(1, 1, EndpointFlags::SUBFLOW, 5)]);
}

#[test]
fn the_same_address_on_two_links_keeps_its_endpoint_until_the_last_goes() {
    let flags = EndpointFlags::SUBFLOW;
    let (p, pm) = plugin(flags);
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    block_on(p.on_event(&address_up(5, ip(1)), &pm));
    assert_eq!(
        pm.endpoints(),
        [endpoint(1, 1, flags, 3)],
        "a second interface with the address changes nothing"
    );
    // Gone from the other interface: nothing to do.
    pm.take_calls();
    block_on(p.on_event(&address_down(5, ip(1)), &pm));
    assert_eq!(pm.take_calls(), []);
    assert_eq!(pm.endpoints(), [endpoint(1, 1, flags, 3)]);
    // Back on 5, then gone from 3, the interface the endpoint is bound to: it moves to 5.
    block_on(p.on_event(&address_up(5, ip(1)), &pm));
    block_on(p.on_event(&address_down(3, ip(1)), &pm));
    assert_eq!(pm.endpoints(), [endpoint(1, 1, flags, 5)]);
    // Gone from the last one: removed, and the limits follow.
    block_on(p.on_event(&address_down(5, ip(1)), &pm));
    assert_eq!(pm.endpoints(), []);
    assert_eq!(pm.limits().subflows, 2);
    // A link going away takes only its own instance of an address.
    block_on(p.on_event(&address_up(3, ip(2)), &pm));
    block_on(p.on_event(&address_up(5, ip(2)), &pm));
    block_on(p.on_event(&Event::DeleteInterface(interface(5)), &pm));
    assert_eq!(pm.endpoints(), [endpoint(1, 2, flags, 3)]);
}

#[test]
fn an_address_waiting_for_room_on_two_links_waits_until_the_last_goes() {
    let (p, pm) = plugin(EndpointFlags::SIGNAL);
    for n in 1..=8 {
        block_on(p.on_event(&address_up(u32::from(n), ip(n)), &pm));
    }
    block_on(p.on_event(&address_up(20, ip(9)), &pm));
    block_on(p.on_event(&address_up(21, ip(9)), &pm));
    block_on(p.on_event(&address_down(20, ip(9)), &pm));
    block_on(p.on_event(&address_down(1, ip(1)), &pm));
    assert!(
        pm.endpoints()
            .contains(&endpoint(1, 9, EndpointFlags::SIGNAL, 21)),
        "still waiting on 21: {:?}",
        pm.endpoints()
    );
}

#[test]
fn a_foreign_endpoint_for_the_address_is_left_alone() {
    let (p, pm) = plugin(EndpointFlags::SUBFLOW);
    let theirs = endpoint(7, 1, EndpointFlags::SIGNAL, 3);
    pm.insert_endpoint(theirs);
    pm.take_calls();
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    let calls = pm.take_calls();
    assert_eq!(
        calls,
        [
            Call::AddEndpoint(endpoint(1, 1, EndpointFlags::SUBFLOW, 3)),
            Call::DumpEndpoints
        ],
        "another tool's id is kept off; the kernel refuses the duplicate, not retried"
    );
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    assert_eq!(
        pm.take_calls(),
        [],
        "reported again: known to be the other's"
    );
    block_on(p.on_event(&address_down(3, ip(1)), &pm));
    assert_eq!(pm.take_calls(), [], "it never held it");
    assert_eq!(pm.endpoints(), [theirs]);
    block_on(p.on_event(&Event::Tick, &pm));
    assert_eq!(pm.take_calls(), [], "nothing left to watch");
    block_on(p.on_event(&address_up(3, ip(2)), &pm));
    assert_eq!(
        pm.endpoints()[0].id,
        1,
        "the refused address's id was released"
    );
}

/// `NetworkManager`'s way: its `subflow` endpoint, bound to the interface, came first.
#[test]
fn the_address_is_taken_up_again_when_the_other_tools_endpoint_goes() {
    let (p, pm) = plugin(EndpointFlags::SIGNAL);
    let nm = endpoint(4, 1, EndpointFlags::SUBFLOW, 3);
    pm.insert_endpoint(nm);
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    block_on(p.on_event(&Event::Tick, &pm));
    assert_eq!(
        pm.endpoints(),
        [nm],
        "still there: left alone, no duplicate"
    );
    pm.take_calls();

    // The other tool removes it (re-adding it under another id would keep it theirs).
    block_on(pm.remove_endpoint(4)).unwrap();
    let again = endpoint(5, 1, EndpointFlags::SUBFLOW, 3);
    pm.insert_endpoint(again);
    block_on(p.on_event(&Event::Tick, &pm));
    assert_eq!(pm.endpoints(), [again]);
    block_on(pm.remove_endpoint(5)).unwrap();
    pm.take_calls();
    block_on(p.on_event(&Event::Tick, &pm));
    let ours = endpoint(1, 1, EndpointFlags::SIGNAL, 3);
    assert_eq!(
        pm.take_calls(),
        [
            Call::DumpEndpoints,
            Call::AddEndpoint(ours),
            Call::SetLimits(Limits {
                add_addr_accepted: 0,
                subflows: 3
            })
        ]
    );
    assert_eq!(pm.endpoints(), [ours]);
    block_on(p.on_event(&Event::Tick, &pm));
    assert_eq!(pm.take_calls(), [], "ours now: nothing to watch");
    block_on(p.on_event(&address_down(3, ip(1)), &pm));
    assert_eq!(pm.endpoints(), [], "ours, removed with the address");
}

#[test]
fn a_taken_id_is_not_an_endpoint() {
    let (p, pm) = plugin(EndpointFlags::SUBFLOW);
    pm.fail_next("add_endpoint", EBUSY);
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    assert_eq!(pm.endpoints(), []);
    assert_eq!(pm.limits().subflows, 2, "not counted");
    block_on(p.on_event(&address_down(3, ip(1)), &pm));
    assert!(
        !pm.take_calls()
            .iter()
            .any(|c| matches!(c, Call::RemoveEndpoint(_))),
        "nothing to remove"
    );
}

#[test]
fn a_failed_add_frees_the_id() {
    let (p, pm) = plugin(EndpointFlags::SUBFLOW);
    pm.fail_next("add_endpoint", 22);
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    assert_eq!(pm.endpoints(), []);
    block_on(p.on_event(&address_up(3, ip(2)), &pm));
    assert_eq!(pm.endpoints()[0].id, 1, "id 1 was released");
}

fn with_policy(flags: EndpointFlags, policy: EndpointPolicy) -> (AddrAdv, RecordingPm) {
    let pm = RecordingPm::new();
    let plugin = AddrAdv::new(&PluginConfig {
        addr_flags: flags,
        policy,
        ..PluginConfig::default()
    });
    block_on(plugin.init(&pm));
    (plugin, pm)
}

#[test]
fn an_interface_section_gives_its_endpoints_their_flags() {
    let backup = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    let (p, pm) = with_policy(
        EndpointFlags::SUBFLOW,
        EndpointPolicy {
            // `interface(3)` is eth3.
            interface_flags: vec![("eth3".parse().unwrap(), backup)],
            ..EndpointPolicy::default()
        },
    );
    block_on(p.on_event(&address_up(3, ip(1)), &pm));
    block_on(p.on_event(&address_up(4, ip(2)), &pm));
    assert_eq!(
        pm.endpoints(),
        [
            endpoint(1, 1, backup, 3),
            endpoint(2, 2, EndpointFlags::SUBFLOW, 4)
        ]
    );
}

#[test]
fn a_preferred_address_takes_the_room_of_a_worse_one_and_freed_room_goes_to_the_best() {
    let flags = EndpointFlags::SUBFLOW;
    let (p, pm) = with_policy(
        flags,
        EndpointPolicy {
            interface_order: vec!["eth1".parse().unwrap(), "eth2".parse().unwrap()],
            ..EndpointPolicy::default()
        },
    );
    // Eight addresses on unlisted interfaces (eth10..) fill the kernel.
    for n in 10..=17 {
        block_on(p.on_event(&address_up(u32::from(n), ip(n)), &pm));
    }
    assert_eq!(pm.endpoints().len(), 8);
    // One on eth2 outranks them: the worst (by rank, then address: ip(17)) gives way.
    block_on(p.on_event(&address_up(2, ip(2)), &pm));
    let held =
        |pm: &RecordingPm| -> Vec<IpAddr> { pm.endpoints().iter().map(|e| e.addr).collect() };
    assert!(held(&pm).contains(&ip(2)), "{:?}", held(&pm));
    assert!(!held(&pm).contains(&ip(17)), "{:?}", held(&pm));
    // Another unlisted one outranks nobody: it waits.
    block_on(p.on_event(&address_up(18, ip(18)), &pm));
    assert!(!held(&pm).contains(&ip(18)));
    // eth1 outranks eth2's address too, but an unlisted one goes first.
    block_on(p.on_event(&address_up(1, ip(1)), &pm));
    assert!(held(&pm).contains(&ip(1)) && held(&pm).contains(&ip(2)));
    assert_eq!(pm.endpoints().len(), 8);
    // Freed room goes to the best waiting address (ip(16) and ip(17) before ip(18)).
    block_on(p.on_event(&address_down(1, ip(1)), &pm));
    let now = held(&pm);
    assert!(now.contains(&ip(16)), "{now:?}");
    assert!(!now.contains(&ip(17)) && !now.contains(&ip(18)), "{now:?}");
}

#[test]
fn without_a_policy_nobody_is_displaced() {
    let (p, pm) = plugin(EndpointFlags::SUBFLOW);
    for n in 10..=17 {
        block_on(p.on_event(&address_up(u32::from(n), ip(n)), &pm));
    }
    block_on(p.on_event(&address_up(1, ip(1)), &pm));
    assert!(!pm.endpoints().iter().any(|e| e.addr == ip(1)));
}

/// SIGHUP: new `[interface]` flags reach the held endpoints with the next event (a tick), in
/// place where the kernel allows it, and a new order re-ranks who waits.
#[test]
fn a_reloaded_policy_reflags_and_reranks() {
    let flags = EndpointFlags::SUBFLOW;
    let (p, pm) = plugin(flags);
    for n in 10..=17 {
        block_on(p.on_event(&address_up(u32::from(n), ip(n)), &pm));
    }
    block_on(p.on_event(&address_up(2, ip(2)), &pm));
    assert!(!pm.endpoints().iter().any(|e| e.addr == ip(2)), "waits");
    pm.take_calls();

    let backup = flags | EndpointFlags::BACKUP;
    let policy = EndpointPolicy {
        interface_flags: vec![
            ("eth10".parse().unwrap(), backup),
            ("eth11".parse().unwrap(), EndpointFlags::SIGNAL),
        ],
        interface_order: vec!["eth2".parse().unwrap()],
        ..EndpointPolicy::default()
    };
    p.reconfigure(&PluginConfig {
        addr_flags: flags,
        policy,
        ..PluginConfig::default()
    });
    assert_eq!(pm.take_calls(), [], "nothing before the next event");
    block_on(p.on_event(&Event::Tick, &pm));
    let calls = pm.take_calls();
    assert!(
        calls.contains(&Call::SetEndpointFlags(1, backup)),
        "{calls:?}"
    );
    let now = pm.endpoints();
    let of = |n: u8| now.iter().find(|e| e.addr == ip(n)).copied();
    assert_eq!(
        of(10).map(|e| (e.id, e.flags)),
        Some((1, backup)),
        "in place"
    );
    assert_eq!(
        of(11).map(|e| e.flags),
        Some(EndpointFlags::SIGNAL),
        "signal cannot be set in place: added again"
    );
    assert!(of(2).is_some(), "eth2 now first: takes a room\n{now:?}");
    assert_eq!(now.len(), 8);
    block_on(p.on_event(&Event::Tick, &pm));
    assert_eq!(pm.take_calls(), [], "applied once");
}
