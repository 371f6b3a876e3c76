//! Messages captured from Linux 6.18 (`tests/fixtures/README.md`): the values decoded, and
//! the monitor's requests encoded to the bytes it has always sent.

use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_MULTIPART, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};

use super::{all_fixtures, encode, fixture, message};
use crate::{
    IFF_LOWER_UP, IFF_RUNNING, IFF_UP,
    decode::{self, PROBE_V4, PROBE_V6},
    state::RouteCheck,
    wire::{
        AF_INET, AF_INET6, AF_UNSPEC, Address, Link, NextHop, RTM_F_FIB_MATCH, RTM_F_LOOKUP_TABLE,
        Route, RtMessage,
    },
};

/// veth0's interface index in the capture's namespace (lo is 1, veth1 2).
const VETH0: u32 = 3;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

fn inner(name: &str) -> RtMessage {
    match message(name).payload {
        NetlinkPayload::InnerMessage(inner) => inner,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn every_fixture_decodes() {
    let fixtures = all_fixtures();
    assert!(fixtures.len() >= 17, "{} fixtures", fixtures.len());
    for (name, bytes) in fixtures {
        let decoded = NetlinkMessage::<RtMessage>::deserialize(&bytes);
        assert!(decoded.is_ok(), "{name}: {decoded:?}");
    }
}

#[test]
fn a_link_keeps_its_header_name_and_oper_state_and_skips_the_rest() {
    let expected = Link {
        family: AF_UNSPEC,
        link_type: 1,
        index: VETH0,
        // IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP.
        flags: 0x1_1043,
        change: 0,
        name: Some("veth0".to_owned()),
        // IF_OPER_UP.
        oper_state: Some(6),
    };
    assert_eq!(
        inner("newlink-veth0-up"),
        RtMessage::NewLink(expected.clone())
    );
    let dumped = message("dump-link-veth0");
    assert_ne!(dumped.header.flags & NLM_F_MULTIPART, 0);
    assert_eq!(
        dumped.payload,
        NetlinkPayload::InnerMessage(RtMessage::NewLink(expected))
    );
    let RtMessage::NewLink(link) = inner("newlink-veth0-up") else {
        panic!("an RTM_NEWLINK");
    };
    let interface = decode::link(&link).expect("an interface");
    assert!(interface.is_ready(), "{interface:?}");
    let up = IFF_UP | IFF_RUNNING | IFF_LOWER_UP;
    assert_eq!(interface.flags & up, up);

    let RtMessage::DelLink(deleted) = inner("dellink-veth2") else {
        panic!("an RTM_DELLINK");
    };
    assert_eq!((deleted.index, deleted.name.as_deref()), (5, Some("veth2")));
}

#[test]
fn addresses_keep_address_local_and_flags() {
    let v4 = Address {
        family: AF_INET,
        prefix_len: 24,
        // IFA_F_PERMANENT.
        header_flags: 0x80,
        scope: 0,
        index: VETH0,
        address: Some(ip("10.1.0.10")),
        local: Some(ip("10.1.0.10")),
        flags: Some(0x80),
    };
    assert_eq!(inner("newaddr-v4"), RtMessage::NewAddress(v4.clone()));
    assert_eq!(inner("dump-addr-v4"), RtMessage::NewAddress(v4.clone()));
    assert_eq!(inner("deladdr-v4"), RtMessage::DelAddress(v4));
    // IPv6 has no IFA_LOCAL; IFA_F_NODAD | IFA_F_PERMANENT.
    assert_eq!(
        inner("newaddr-v6"),
        RtMessage::NewAddress(Address {
            family: AF_INET6,
            prefix_len: 64,
            header_flags: 0x82,
            scope: 0,
            index: VETH0,
            address: Some(ip("2001:db8:1::10")),
            local: None,
            flags: Some(0x82),
        })
    );
}

#[test]
fn routes_keep_destination_oif_and_next_hops() {
    assert_eq!(
        inner("newroute-v4-prefix"),
        RtMessage::NewRoute(Route {
            family: AF_INET,
            dst_len: 24,
            table: 254,
            // RTPROT_KERNEL, RT_SCOPE_LINK, RTN_UNICAST.
            protocol: 2,
            scope: 253,
            kind: 1,
            destination: Some(ip("10.1.0.0")),
            oif: Some(VETH0),
            ..Route::default()
        })
    );
    let multipath = Route {
        family: AF_INET,
        table: 254,
        // RTPROT_BOOT, RTN_UNICAST.
        protocol: 3,
        kind: 1,
        multipath: vec![
            NextHop {
                ifindex: VETH0,
                ..NextHop::default()
            },
            NextHop {
                ifindex: 5,
                ..NextHop::default()
            },
        ],
        ..Route::default()
    };
    assert_eq!(
        inner("newroute-v4-multipath"),
        RtMessage::NewRoute(multipath.clone())
    );
    // The lookup answers with the same FIB entry.
    assert_eq!(
        inner("getroute-reply-v4-multipath"),
        RtMessage::NewRoute(multipath.clone())
    );
    assert!(decode::leaves_through(&multipath, VETH0));
    assert!(decode::leaves_through(&multipath, 5));
    assert!(!decode::leaves_through(&multipath, 2));
}

#[test]
fn a_failed_lookup_is_an_error_answer() {
    let NetlinkPayload::Error(error) = message("getroute-reply-v6-unreachable").payload else {
        panic!("an NLMSG_ERROR");
    };
    // ENETUNREACH.
    assert_eq!(error.to_io().raw_os_error(), Some(101));
    let done = message("dump-done");
    assert!(matches!(done.payload, NetlinkPayload::Done(_)), "{done:?}");
}

/// A request as netlink-proto sends it: our header flags, its sequence number.
fn request(inner: RtMessage, flags: u16, sequence_number: u32) -> Vec<u8> {
    let mut message = NetlinkMessage::from(inner);
    message.header.flags = flags;
    message.header.sequence_number = sequence_number;
    encode(message)
}

#[test]
fn the_dumps_ask_as_before() {
    let dump = NLM_F_REQUEST | NLM_F_DUMP;
    assert_eq!(
        request(RtMessage::GetLink(Link::default()), dump, 1),
        fixture("getlink-dump-request")
    );
    assert_eq!(
        request(RtMessage::GetAddress(Address::default()), dump, 2),
        fixture("getaddr-dump-request")
    );
    // And they read back as what was sent.
    assert_eq!(
        inner("getlink-dump-request"),
        RtMessage::GetLink(Link::default())
    );
    assert_eq!(
        inner("getaddr-dump-request"),
        RtMessage::GetAddress(Address::default())
    );
}

#[test]
fn the_lookups_ask_as_before() {
    let v4 = RouteCheck {
        id: 0,
        ifindex: VETH0,
        addr: ip("10.1.0.10"),
    };
    let v6 = RouteCheck {
        addr: ip("2001:db8:1::10"),
        ..v4
    };
    let cases = [
        (decode::route_lookup(&v4), 3, "getroute-request-v4"),
        (
            decode::source_route_lookup(&v4),
            4,
            "getroute-request-v4-source",
        ),
        (decode::route_lookup(&v6), 5, "getroute-request-v6"),
    ];
    for (lookup, sequence_number, name) in cases {
        assert_eq!(inner(name), RtMessage::GetRoute(lookup.clone()), "{name}");
        let bytes = request(RtMessage::GetRoute(lookup), NLM_F_REQUEST, sequence_number);
        assert_eq!(bytes, fixture(name), "{name}");
    }
    let RtMessage::GetRoute(lookup) = inner("getroute-request-v6") else {
        panic!("an RTM_GETROUTE");
    };
    assert_eq!(lookup.destination, Some(IpAddr::V6(PROBE_V6)));
    assert_eq!(lookup.flags, RTM_F_LOOKUP_TABLE | RTM_F_FIB_MATCH);
    let RtMessage::GetRoute(lookup) = inner("getroute-request-v4") else {
        panic!("an RTM_GETROUTE");
    };
    assert_eq!(lookup.destination, Some(IpAddr::V4(PROBE_V4)));
}
