//! Decoding rtnetlink messages built as the kernel sends them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    PROBE_V4, PROBE_V6, address, input, leaves_through, link, route_change, route_lookup,
    source_route_lookup,
};
use crate::{
    AddressScope as Scope, Family, IFF_LOWER_UP, IFF_RUNNING, IFF_UP, Interface, LocalAddress,
    OperState,
    state::{Input, RouteCheck},
    wire::{
        AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC, Address, Link, NextHop, RTM_F_FIB_MATCH,
        RTM_F_LOOKUP_TABLE, Route, RtMessage,
    },
};

/// `AF_MPLS`: a family the monitor does not handle.
const AF_MPLS: u8 = 28;
/// `ARPHRD_ETHER`.
const ETHER: u16 = 1;
/// `IF_OPER_UP`.
const OPER_UP: u8 = 6;
/// `RT_SCOPE_*`.
const SCOPE_UNIVERSE: u8 = 0;
const SCOPE_LINK: u8 = 253;
const SCOPE_HOST: u8 = 254;
/// `IFA_F_TENTATIVE` and `IFA_F_PERMANENT`.
const TENTATIVE: u8 = 0x40;
const PERMANENT: u32 = 0x80;

fn link_msg(family: u8, index: u32, name: Option<&str>) -> Link {
    Link {
        family,
        index,
        link_type: ETHER,
        flags: IFF_UP | IFF_RUNNING | IFF_LOWER_UP,
        name: name.map(str::to_owned),
        oper_state: Some(OPER_UP),
        ..Link::default()
    }
}

fn addr_msg(family: u8, index: u32, prefix_len: u8, addr: Option<IpAddr>) -> Address {
    Address {
        family,
        index,
        prefix_len,
        scope: SCOPE_UNIVERSE,
        address: addr,
        ..Address::default()
    }
}

fn route_msg(family: u8, dst: Option<(IpAddr, u8)>) -> Route {
    Route {
        family,
        // RT_TABLE_MAIN.
        table: 254,
        dst_len: dst.map_or(0, |(_, len)| len),
        destination: dst.map(|(prefix, _)| prefix),
        ..Route::default()
    }
}

#[test]
fn links_decode_with_name_flags_and_oper_state() {
    let decoded = link(&link_msg(AF_UNSPEC, 7, Some("veth0"))).unwrap();
    assert_eq!(
        decoded,
        Interface {
            index: 7,
            name: "veth0".to_owned(),
            flags: IFF_UP | IFF_RUNNING | IFF_LOWER_UP,
            oper_state: OperState::Up,
            link_type: 1,
        }
    );
    assert!(decoded.is_ready());

    // No IFLA_OPERSTATE: unknown, which leaves the flags to decide.
    let message = Link {
        oper_state: None,
        ..link_msg(AF_UNSPEC, 7, Some("veth0"))
    };
    assert_eq!(link(&message).unwrap().oper_state, OperState::Unknown);
}

#[test]
fn bridge_port_and_partial_link_messages_are_skipped() {
    // A bridge's RTM_DELLINK for a port that leaves it: the interface itself stays.
    let port = link_msg(AF_BRIDGE, 7, Some("veth0"));
    assert_eq!(input(&RtMessage::DelLink(port.clone())), None);
    assert_eq!(input(&RtMessage::NewLink(port)), None);
    assert_eq!(link(&link_msg(AF_UNSPEC, 7, None)), None);
    assert_eq!(link(&link_msg(AF_UNSPEC, 0, Some("x"))), None);
}

#[test]
fn link_deletions_need_only_the_index() {
    assert_eq!(
        input(&RtMessage::DelLink(link_msg(AF_UNSPEC, 9, None))),
        Some(Input::DelLink { index: 9 })
    );
}

#[test]
fn addresses_decode_for_both_families() {
    let v4: IpAddr = "192.0.2.5".parse().unwrap();
    let mut message = Address {
        local: Some(v4),
        flags: Some(PERMANENT),
        ..addr_msg(AF_INET, 3, 24, Some(v4))
    };
    assert_eq!(
        address(&message),
        Some(LocalAddress {
            ifindex: 3,
            addr: v4,
            prefix_len: 24,
            scope: Scope::Universe,
            flags: 0x80,
        })
    );
    message.scope = SCOPE_HOST;
    assert_eq!(address(&message).unwrap().scope, Scope::Host);

    let v6: IpAddr = "fe80::1".parse().unwrap();
    let message = Address {
        scope: SCOPE_LINK,
        // Without IFA_FLAGS the header's byte holds the flags.
        header_flags: TENTATIVE,
        ..addr_msg(AF_INET6, 3, 64, Some(v6))
    };
    let decoded = address(&message).unwrap();
    assert_eq!(decoded.addr, v6);
    assert_eq!(decoded.scope, Scope::Link);
    assert!(!decoded.is_usable());
    assert_eq!(
        input(&RtMessage::DelAddress(message)),
        Some(Input::DelAddress(decoded))
    );
}

#[test]
fn point_to_point_addresses_use_the_local_address() {
    let local: IpAddr = "10.0.0.1".parse().unwrap();
    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    let message = Address {
        local: Some(local),
        ..addr_msg(AF_INET, 4, 32, Some(peer))
    };
    assert_eq!(address(&message).unwrap().addr, local);
}

#[test]
fn malformed_addresses_are_skipped() {
    let v4: IpAddr = "192.0.2.5".parse().unwrap();
    let v6: IpAddr = "2001:db8::5".parse().unwrap();
    // No address at all.
    assert_eq!(address(&addr_msg(AF_INET, 3, 24, None)), None);
    // Family and address disagree.
    assert_eq!(address(&addr_msg(AF_INET6, 3, 64, Some(v4))), None);
    // Prefix longer than the address.
    assert_eq!(address(&addr_msg(AF_INET, 3, 33, Some(v4))), None);
    assert_eq!(address(&addr_msg(AF_INET6, 3, 129, Some(v6))), None);
    // No interface.
    assert_eq!(address(&addr_msg(AF_INET, 0, 24, Some(v4))), None);
    // Another family (here: MPLS).
    assert_eq!(address(&addr_msg(AF_MPLS, 3, 20, Some(v4))), None);
}

#[test]
fn only_routes_that_hold_the_probe_address_matter() {
    let default4 = Route {
        oif: Some(2),
        ..route_msg(AF_INET, None)
    };
    assert_eq!(route_change(&default4), Some(Family::V4));
    let default6 = Route {
        oif: Some(2),
        ..route_msg(AF_INET6, None)
    };
    assert_eq!(route_change(&default6), Some(Family::V6));

    let covering = [
        (AF_INET, "192.0.2.0", 24, Some(Family::V4)),
        (AF_INET, "192.0.0.0", 8, Some(Family::V4)),
        (AF_INET, "192.0.2.1", 32, Some(Family::V4)),
        (AF_INET, "10.0.0.0", 8, None),
        (AF_INET, "192.0.2.2", 32, None),
        (AF_INET6, "2001:db8::", 32, Some(Family::V6)),
        (AF_INET6, "2000::", 3, Some(Family::V6)),
        (AF_INET6, "fe80::", 64, None),
        (AF_INET6, "ff00::", 8, None),
    ];
    for (family, prefix, len, expected) in covering {
        let message = route_msg(family, Some((prefix.parse().unwrap(), len)));
        assert_eq!(route_change(&message), expected, "{prefix}/{len}");
    }
    assert_eq!(
        input(&RtMessage::DelRoute(default4)),
        Some(Input::RoutesChanged(Family::V4))
    );
    // A prefix length without a destination, or another family, is not ours to judge.
    let partial = Route {
        dst_len: 8,
        ..route_msg(AF_INET, None)
    };
    assert_eq!(route_change(&partial), None);
    assert_eq!(route_change(&route_msg(AF_MPLS, None)), None);
}

#[test]
fn other_messages_are_skipped() {
    assert_eq!(input(&RtMessage::GetLink(Link::default())), None);
    // RTM_NEWNEIGH.
    assert_eq!(input(&RtMessage::Other(28)), None);
}

#[test]
fn the_lookup_asks_like_the_c_daemon() {
    let check = RouteCheck {
        id: 1,
        ifindex: 5,
        addr: "198.51.100.1".parse().unwrap(),
    };
    assert_eq!(
        route_lookup(&check),
        Route {
            family: AF_INET,
            dst_len: 32,
            flags: RTM_F_LOOKUP_TABLE | RTM_F_FIB_MATCH,
            destination: Some(IpAddr::V4(PROBE_V4)),
            oif: Some(5),
            ..Route::default()
        }
    );

    let check = RouteCheck {
        addr: "2001:db8:1::1".parse().unwrap(),
        ..check
    };
    let request = route_lookup(&check);
    assert_eq!(request.family, AF_INET6);
    assert_eq!(request.dst_len, 128);
    assert_eq!(request.destination, Some(IpAddr::V6(PROBE_V6)));
    assert_eq!(PROBE_V4, Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(PROBE_V6, "2001:db8::".parse::<Ipv6Addr>().unwrap());
}

#[test]
fn only_a_default_route_through_the_interface_counts() {
    let via = |oif| Route {
        oif: Some(oif),
        ..route_msg(AF_INET, None)
    };
    assert!(leaves_through(&via(5), 5));
    assert!(!leaves_through(&via(6), 5));

    // A more specific route matched instead.
    let specific = Route {
        oif: Some(5),
        ..route_msg(AF_INET, Some(("192.0.2.0".parse().unwrap(), 24)))
    };
    assert!(!leaves_through(&specific, 5));
    // A destination even with a zero prefix length is not a default route.
    let odd = Route {
        destination: Some("0.0.0.0".parse().unwrap()),
        ..via(5)
    };
    assert!(!leaves_through(&odd, 5));
    // A default route with no way out (blackhole).
    assert!(!leaves_through(&route_msg(AF_INET, None), 5));

    let hop = |ifindex| NextHop {
        ifindex,
        ..NextHop::default()
    };
    let multipath = Route {
        multipath: vec![hop(6), hop(5)],
        ..route_msg(AF_INET6, None)
    };
    assert!(leaves_through(&multipath, 5));
    assert!(leaves_through(&multipath, 6));
    assert!(!leaves_through(&multipath, 7));
}

#[test]
fn the_routing_sanity_lookup_asks_from_the_address() {
    let check = RouteCheck {
        id: 1,
        ifindex: 5,
        addr: "198.51.100.1".parse().unwrap(),
    };
    let request = source_route_lookup(&check);
    assert_eq!(
        request,
        Route {
            src_len: 32,
            source: Some("198.51.100.1".parse().unwrap()),
            ..route_lookup(&check)
        }
    );
    let v6 = RouteCheck {
        addr: "2001:db8:1::1".parse().unwrap(),
        ..check
    };
    assert_eq!(source_route_lookup(&v6).src_len, 128);
}
