//! Decoding rtnetlink messages built as the kernel sends them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtnetlink::packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope},
    link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage, State},
    route::{RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop},
};

use super::{
    PROBE_V4, PROBE_V6, address, input, leaves_through, link, route_change, route_lookup,
    source_route_lookup,
};
use crate::{
    AddressScope as Scope, Family, IFF_LOWER_UP, IFF_RUNNING, IFF_UP, Interface, LocalAddress,
    OperState, state::Input, state::RouteCheck,
};

fn link_msg(family: AddressFamily, index: u32, name: Option<&str>) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.interface_family = family;
    message.header.index = index;
    message.header.link_layer_type = LinkLayerType::Ether;
    message.header.flags = LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp;
    if let Some(name) = name {
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
    }
    message.attributes.push(LinkAttribute::Mtu(1500));
    message.attributes.push(LinkAttribute::OperState(State::Up));
    message
}

fn addr_msg(
    family: AddressFamily,
    index: u32,
    prefix_len: u8,
    attrs: Vec<AddressAttribute>,
) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = family;
    message.header.index = index;
    message.header.prefix_len = prefix_len;
    message.header.scope = AddressScope::Universe;
    message.attributes = attrs;
    message
}

fn route_msg(
    family: AddressFamily,
    dst: Option<(IpAddr, u8)>,
    attrs: Vec<RouteAttribute>,
) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = family;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    if let Some((prefix, len)) = dst {
        message.header.destination_prefix_length = len;
        message
            .attributes
            .push(RouteAttribute::Destination(prefix.into()));
    }
    message.attributes.extend(attrs);
    message
}

#[test]
fn links_decode_with_name_flags_and_oper_state() {
    let decoded = link(&link_msg(AddressFamily::Unspec, 7, Some("veth0"))).unwrap();
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
    let mut message = link_msg(AddressFamily::Unspec, 7, Some("veth0"));
    message
        .attributes
        .retain(|a| !matches!(a, LinkAttribute::OperState(_)));
    assert_eq!(link(&message).unwrap().oper_state, OperState::Unknown);
}

#[test]
fn bridge_port_and_partial_link_messages_are_skipped() {
    // A bridge's RTM_DELLINK for a port that leaves it: the interface itself stays.
    let port = link_msg(AddressFamily::Bridge, 7, Some("veth0"));
    assert_eq!(input(&RouteNetlinkMessage::DelLink(port.clone())), None);
    assert_eq!(input(&RouteNetlinkMessage::NewLink(port)), None);
    assert_eq!(link(&link_msg(AddressFamily::Unspec, 7, None)), None);
    assert_eq!(link(&link_msg(AddressFamily::Unspec, 0, Some("x"))), None);
}

#[test]
fn link_deletions_need_only_the_index() {
    assert_eq!(
        input(&RouteNetlinkMessage::DelLink(link_msg(
            AddressFamily::Unspec,
            9,
            None
        ))),
        Some(Input::DelLink { index: 9 })
    );
}

#[test]
fn addresses_decode_for_both_families() {
    let v4: IpAddr = "192.0.2.5".parse().unwrap();
    let mut message = addr_msg(
        AddressFamily::Inet,
        3,
        24,
        vec![
            AddressAttribute::Address(v4),
            AddressAttribute::Local(v4),
            AddressAttribute::Label("eth0".to_owned()),
            AddressAttribute::Flags(AddressFlags::Permanent),
        ],
    );
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
    message.header.scope = AddressScope::Host;
    assert_eq!(address(&message).unwrap().scope, Scope::Host);

    let v6: IpAddr = "fe80::1".parse().unwrap();
    let mut message = addr_msg(
        AddressFamily::Inet6,
        3,
        64,
        vec![AddressAttribute::Address(v6)],
    );
    message.header.scope = AddressScope::Link;
    // Without IFA_FLAGS the header's byte holds the flags.
    message.header.flags = AddressHeaderFlags::Tentative;
    let decoded = address(&message).unwrap();
    assert_eq!(decoded.addr, v6);
    assert_eq!(decoded.scope, Scope::Link);
    assert!(!decoded.is_usable());
    assert_eq!(
        input(&RouteNetlinkMessage::DelAddress(message)),
        Some(Input::DelAddress(decoded))
    );
}

#[test]
fn point_to_point_addresses_use_the_local_address() {
    let local: IpAddr = "10.0.0.1".parse().unwrap();
    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    let message = addr_msg(
        AddressFamily::Inet,
        4,
        32,
        vec![
            AddressAttribute::Address(peer),
            AddressAttribute::Local(local),
        ],
    );
    assert_eq!(address(&message).unwrap().addr, local);
}

#[test]
fn malformed_addresses_are_skipped() {
    let v4: IpAddr = "192.0.2.5".parse().unwrap();
    let v6: IpAddr = "2001:db8::5".parse().unwrap();
    // No address at all.
    assert_eq!(address(&addr_msg(AddressFamily::Inet, 3, 24, vec![])), None);
    // Family and address disagree.
    assert_eq!(
        address(&addr_msg(
            AddressFamily::Inet6,
            3,
            64,
            vec![AddressAttribute::Address(v4)]
        )),
        None
    );
    // Prefix longer than the address.
    assert_eq!(
        address(&addr_msg(
            AddressFamily::Inet,
            3,
            33,
            vec![AddressAttribute::Address(v4)]
        )),
        None
    );
    assert_eq!(
        address(&addr_msg(
            AddressFamily::Inet6,
            3,
            129,
            vec![AddressAttribute::Address(v6)]
        )),
        None
    );
    // No interface.
    assert_eq!(
        address(&addr_msg(
            AddressFamily::Inet,
            0,
            24,
            vec![AddressAttribute::Address(v4)]
        )),
        None
    );
    // Another family (here: MPLS).
    assert_eq!(
        address(&addr_msg(
            AddressFamily::Mpls,
            3,
            20,
            vec![AddressAttribute::Address(v4)]
        )),
        None
    );
}

#[test]
fn only_routes_that_hold_the_probe_address_matter() {
    let default4 = route_msg(AddressFamily::Inet, None, vec![RouteAttribute::Oif(2)]);
    assert_eq!(route_change(&default4), Some(Family::V4));
    let default6 = route_msg(AddressFamily::Inet6, None, vec![RouteAttribute::Oif(2)]);
    assert_eq!(route_change(&default6), Some(Family::V6));

    let covering = [
        (AddressFamily::Inet, "192.0.2.0", 24, Some(Family::V4)),
        (AddressFamily::Inet, "192.0.0.0", 8, Some(Family::V4)),
        (AddressFamily::Inet, "192.0.2.1", 32, Some(Family::V4)),
        (AddressFamily::Inet, "10.0.0.0", 8, None),
        (AddressFamily::Inet, "192.0.2.2", 32, None),
        (AddressFamily::Inet6, "2001:db8::", 32, Some(Family::V6)),
        (AddressFamily::Inet6, "2000::", 3, Some(Family::V6)),
        (AddressFamily::Inet6, "fe80::", 64, None),
        (AddressFamily::Inet6, "ff00::", 8, None),
    ];
    for (family, prefix, len, expected) in covering {
        let message = route_msg(family, Some((prefix.parse().unwrap(), len)), vec![]);
        assert_eq!(route_change(&message), expected, "{prefix}/{len}");
    }
    assert_eq!(
        input(&RouteNetlinkMessage::DelRoute(default4)),
        Some(Input::RoutesChanged(Family::V4))
    );
    // A prefix length without a destination, or another family, is not ours to judge.
    let mut partial = route_msg(AddressFamily::Inet, None, vec![]);
    partial.header.destination_prefix_length = 8;
    assert_eq!(route_change(&partial), None);
    assert_eq!(
        route_change(&route_msg(AddressFamily::Mpls, None, vec![])),
        None
    );
}

#[test]
fn other_messages_are_skipped() {
    assert_eq!(
        input(&RouteNetlinkMessage::GetLink(LinkMessage::default())),
        None
    );
}

#[test]
fn the_lookup_asks_like_the_c_daemon() {
    let check = RouteCheck {
        id: 1,
        ifindex: 5,
        addr: "198.51.100.1".parse().unwrap(),
    };
    let request = route_lookup(&check);
    assert_eq!(request.header.address_family, AddressFamily::Inet);
    assert_eq!(request.header.destination_prefix_length, 32);
    assert_eq!(
        request.header.flags,
        RouteFlags::LookupTable | RouteFlags::FibMatch
    );
    assert_eq!(
        request.attributes,
        [
            RouteAttribute::Destination(RouteAddress::Inet(PROBE_V4)),
            RouteAttribute::Oif(5)
        ]
    );

    let check = RouteCheck {
        addr: "2001:db8:1::1".parse().unwrap(),
        ..check
    };
    let request = route_lookup(&check);
    assert_eq!(request.header.address_family, AddressFamily::Inet6);
    assert_eq!(request.header.destination_prefix_length, 128);
    assert_eq!(
        request.attributes[0],
        RouteAttribute::Destination(RouteAddress::Inet6(PROBE_V6))
    );
    assert_eq!(PROBE_V4, Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(PROBE_V6, "2001:db8::".parse::<Ipv6Addr>().unwrap());
}

#[test]
fn only_a_default_route_through_the_interface_counts() {
    let gateway = RouteAttribute::Gateway("192.0.2.254".parse::<IpAddr>().unwrap().into());
    let via = |oif| {
        route_msg(
            AddressFamily::Inet,
            None,
            vec![gateway.clone(), RouteAttribute::Oif(oif)],
        )
    };
    assert!(leaves_through(&via(5), 5));
    assert!(!leaves_through(&via(6), 5));

    // A more specific route matched instead.
    let specific = route_msg(
        AddressFamily::Inet,
        Some(("192.0.2.0".parse().unwrap(), 24)),
        vec![RouteAttribute::Oif(5)],
    );
    assert!(!leaves_through(&specific, 5));
    // A default route with no way out (blackhole).
    assert!(!leaves_through(
        &route_msg(AddressFamily::Inet, None, vec![]),
        5
    ));

    let mut hop = RouteNextHop::default();
    hop.interface_index = 5;
    let mut other = RouteNextHop::default();
    other.interface_index = 6;
    let multipath = route_msg(
        AddressFamily::Inet6,
        None,
        vec![RouteAttribute::MultiPath(vec![other, hop])],
    );
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
    assert_eq!(request.header.source_prefix_length, 32);
    assert_eq!(
        request.attributes,
        [
            RouteAttribute::Destination(RouteAddress::Inet(PROBE_V4)),
            RouteAttribute::Oif(5),
            RouteAttribute::Source(RouteAddress::Inet("198.51.100.1".parse().unwrap())),
        ]
    );
    let v6 = RouteCheck {
        addr: "2001:db8:1::1".parse().unwrap(),
        ..check
    };
    assert_eq!(source_route_lookup(&v6).header.source_prefix_length, 128);
}
