//! What the kernel never sends but the decoder must survive: truncations, values of the wrong
//! size, unknown attributes; and every field encoded and decoded back.

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};

use super::{all_fixtures, encode};
use crate::wire::{
    AF_INET, AF_INET6, Address, Link, NextHop, RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK,
    RTM_NEWROUTE, Route, RtMessage, WireError,
};

/// A netlink message of type `kind` around `body`.
fn raw(kind: u16, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(16 + body.len()).expect("a short message");
    let mut bytes = Vec::with_capacity(16 + body.len());
    bytes.extend_from_slice(&len.to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(&[0; 10]);
    bytes.extend_from_slice(body);
    bytes
}

/// An attribute, padded.
fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + value.len()).expect("a short value");
    let mut bytes = len.to_ne_bytes().to_vec();
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(value);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes
}

/// The body decoded as a message of type `kind`.
fn parse(kind: u16, body: &[u8]) -> Result<RtMessage, WireError> {
    let mut header = NetlinkHeader::default();
    header.message_type = kind;
    <RtMessage as netlink_packet_core::NetlinkDeserializable>::deserialize(&header, body)
}

#[test]
fn every_truncation_of_every_fixture_is_refused_or_decoded_without_panic() {
    let (mut refused, mut decoded) = (0, 0);
    for (name, bytes) in all_fixtures() {
        for cut in 16..bytes.len() {
            let mut short = bytes[..cut].to_vec();
            short[..4].copy_from_slice(&u32::try_from(cut).expect("short").to_ne_bytes());
            match NetlinkMessage::<RtMessage>::deserialize(&short) {
                Ok(_) => decoded += 1,
                Err(_) => refused += 1,
            }
        }
        // A body cut inside the fixed header is refused.
        let kind = u16::from_ne_bytes([bytes[4], bytes[5]]);
        if let RTM_NEWLINK | RTM_NEWADDR | RTM_NEWROUTE | RTM_GETROUTE = kind {
            let error = parse(kind, &bytes[16..20]).expect_err(&name);
            assert!(
                matches!(error, WireError::Truncated { len: 4, .. }),
                "{name}: {error:?}"
            );
        }
    }
    // Cuts between attributes decode, cuts through one do not.
    assert!(
        refused > 100 && decoded > 10,
        "{refused} refused, {decoded} decoded"
    );
}

#[test]
fn values_of_the_wrong_size_are_refused() {
    let link_header = [0_u8; 16];
    let address_header = [AF_INET, 24, 0, 0, 3, 0, 0, 0];
    let route_header = [AF_INET, 0, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0];
    let cases: [(u16, &[u8], Vec<u8>); 7] = [
        // IFLA_OPERSTATE of two bytes.
        (RTM_NEWLINK, &link_header, attribute(16, &[6, 0])),
        // IFLA_IFNAME that is not UTF-8.
        (RTM_NEWLINK, &link_header, attribute(3, &[0xff, 0xfe, 0])),
        // IFA_ADDRESS of five bytes.
        (
            RTM_NEWADDR,
            &address_header,
            attribute(1, &[10, 0, 0, 1, 0]),
        ),
        // IFA_FLAGS of two bytes.
        (RTM_NEWADDR, &address_header, attribute(8, &[0x80, 0])),
        // RTA_OIF of three bytes.
        (RTM_NEWROUTE, &route_header, attribute(4, &[3, 0, 0])),
        // RTA_MULTIPATH whose next hop is shorter than its header, then one past the end.
        (
            RTM_NEWROUTE,
            &route_header,
            attribute(9, &[4, 0, 0, 0, 3, 0, 0, 0]),
        ),
        (
            RTM_NEWROUTE,
            &route_header,
            attribute(9, &[16, 0, 0, 0, 3, 0, 0, 0]),
        ),
    ];
    for (kind, header, attribute) in cases {
        let body = [header, attribute.as_slice()].concat();
        let error = parse(kind, &body).expect_err(&format!("{body:02x?}"));
        assert!(matches!(error, WireError::Value { .. }), "{error:?}");
        // The socket's decoding refuses the whole message likewise.
        assert!(NetlinkMessage::<RtMessage>::deserialize(&raw(kind, &body)).is_err());
    }
    // An attribute whose length runs past the message.
    let mut body = link_header.to_vec();
    body.extend_from_slice(&[40, 0, 3, 0, b'x', 0, 0, 0]);
    let error = parse(RTM_NEWLINK, &body).expect_err("a framing error");
    assert!(matches!(error, WireError::Framing(_)), "{error:?}");
}

#[test]
fn unknown_attributes_and_types_are_skipped() {
    let mut body = vec![0_u8; 16];
    body.extend(attribute(3, b"eth0\0"));
    // IFLA_MTU, IFLA_LINKINFO (nested) and a type no kernel has yet.
    body.extend(attribute(4, &1500_u32.to_ne_bytes()));
    body.extend(attribute(0x12 | 0x8000, &attribute(1, b"bond\0")));
    body.extend(attribute(0x3fff, &[1, 2, 3]));
    let Ok(RtMessage::NewLink(link)) = parse(RTM_NEWLINK, &body) else {
        panic!("a link");
    };
    assert_eq!(
        link,
        Link {
            name: Some("eth0".to_owned()),
            ..Link::default()
        }
    );
    // RTM_NEWNEIGH: not read at all, whatever its body.
    assert_eq!(parse(28, &[1, 2, 3]).ok(), Some(RtMessage::Other(28)));
}

#[test]
fn every_field_encodes_and_decodes_back() {
    let messages = [
        RtMessage::NewLink(Link {
            family: 7,
            link_type: 772,
            index: 0x0102_0304,
            flags: 0x1_1043,
            change: u32::MAX,
            name: Some("wwan0".to_owned()),
            oper_state: Some(2),
        }),
        RtMessage::DelAddress(Address {
            family: AF_INET6,
            prefix_len: 64,
            header_flags: 0x40,
            scope: 253,
            index: 9,
            address: Some("fe80::1".parse().expect("an address")),
            local: Some("192.0.2.7".parse().expect("an address")),
            flags: Some(0x200),
        }),
        RtMessage::DelRoute(Route {
            family: AF_INET,
            dst_len: 8,
            src_len: 16,
            tos: 4,
            table: 100,
            protocol: 4,
            scope: 200,
            kind: 2,
            flags: 0x3000,
            destination: Some("10.0.0.0".parse().expect("an address")),
            source: Some("198.51.100.0".parse().expect("an address")),
            oif: Some(4),
            multipath: vec![
                NextHop {
                    flags: 1,
                    hops: 2,
                    ifindex: 3,
                },
                NextHop {
                    flags: 0,
                    hops: 0,
                    ifindex: 7,
                },
            ],
        }),
        RtMessage::Other(64),
    ];
    for original in messages {
        let bytes = encode(NetlinkMessage::from(original.clone()));
        let decoded = NetlinkMessage::<RtMessage>::deserialize(&bytes).expect("our own message");
        assert_eq!(decoded.payload, NetlinkPayload::InnerMessage(original));
    }
}
