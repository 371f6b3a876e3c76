//! Every request: encoded, decoded back to the same message and request; a few against the
//! exact bytes the reference client (`mptcp_pm_nl.py`) sends.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_generic::GenlMessage;

use crate::{
    Endpoint, EndpointFlags,
    wire::{
        AddrAttr, Address, FrameKind, PmAttr, PmCmd, PmMessage, Request, WireError, decode_genl,
        encode_request, frames,
    },
};

const FAMILY_ID: u16 = 0x1c;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

fn all_requests() -> Vec<Request> {
    let endpoint = Endpoint::new(
        v4(192, 0, 2, 1),
        EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
    )
    .with_id(7)
    .with_if_idx(3);
    let signal = Endpoint::new(v6(1), EndpointFlags::SIGNAL)
        .with_id(9)
        .with_port(8080);
    let remote = Address {
        addr: Some(v4(198, 51, 100, 2)),
        port: Some(5201),
        ..Address::default()
    };
    let remote6 = Address {
        addr: Some(v6(2)),
        port: Some(443),
        ..Address::default()
    };
    let by_id = Address {
        id: Some(4),
        ..Address::default()
    };
    vec![
        Request::AddAddr(endpoint.to_address()),
        Request::AddAddr(signal.to_address()),
        Request::DelAddr(by_id),
        Request::DelAddr(Address {
            id: Some(0),
            addr: Some(v6(5)),
            ..Address::default()
        }),
        Request::GetAddr {
            addr: by_id,
            token: None,
        },
        Request::GetAddr {
            addr: by_id,
            token: Some(0xdead_beef),
        },
        Request::DumpAddrs { token: None },
        Request::DumpAddrs { token: Some(42) },
        Request::FlushAddrs,
        Request::SetLimits {
            add_addr_accepted: Some(2),
            subflows: Some(8),
        },
        Request::SetLimits {
            add_addr_accepted: None,
            subflows: Some(1),
        },
        Request::GetLimits,
        Request::SetFlags {
            token: None,
            local: Address {
                id: Some(4),
                flags: Some(EndpointFlags::BACKUP),
                ..Address::default()
            },
            remote: None,
        },
        Request::SetFlags {
            token: Some(1),
            local: Address {
                addr: Some(v4(192, 0, 2, 1)),
                flags: Some(EndpointFlags::BACKUP),
                ..Address::default()
            },
            remote: Some(remote),
        },
        Request::Announce {
            token: 7,
            local: signal.to_address(),
        },
        Request::Remove {
            token: 7,
            local_id: 9,
        },
        Request::SubflowCreate {
            token: 7,
            local: endpoint.to_address(),
            remote,
        },
        Request::SubflowCreate {
            token: 7,
            local: signal.to_address(),
            remote: remote6,
        },
        Request::SubflowDestroy {
            token: 7,
            local: Address {
                addr: Some(v4(192, 0, 2, 1)),
                port: Some(40000),
                ..Address::default()
            },
            remote,
        },
    ]
}

#[test]
fn every_request_encodes_and_decodes_back() {
    let mut commands = Vec::new();
    for (seq, request) in (1..).zip(all_requests()) {
        let flags = if request.is_dump() {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST | NLM_F_ACK
        };
        let message = request.to_message();
        let bytes = encode_request(FAMILY_ID, message.clone(), flags, seq);
        let all: Vec<_> = frames(&bytes).collect();
        assert_eq!(all.len(), 1);
        let frame = all[0].as_ref().unwrap();
        assert!(matches!(frame.kind(), FrameKind::Data));
        assert_eq!(frame.header.message_type, FAMILY_ID);
        assert_eq!(frame.header.sequence_number, seq);
        assert_eq!(frame.header.flags, flags);
        assert_eq!(usize::try_from(frame.header.length).unwrap(), bytes.len());
        let genl: GenlMessage<PmMessage> = decode_genl(frame).unwrap();
        assert_eq!(genl.header.cmd, u8::from(request.cmd()));
        assert_eq!(genl.header.version, 1);
        assert_eq!(genl.payload, message, "{request:?}");
        let dump = frame.header.flags & NLM_F_DUMP == NLM_F_DUMP;
        assert_eq!(Request::from_message(&genl.payload, dump).unwrap(), request);
        commands.push(request.cmd());
    }
    for cmd in 1..=11 {
        assert!(
            commands.contains(&PmCmd::from(cmd)),
            "command {cmd} not covered"
        );
    }
}

/// `mptcp_pm_nl.py sf-create 7 192.0.2.1 5 198.51.100.2 5201` with seq 1 and family 0x1c.
#[test]
fn subflow_create_matches_the_reference_client_bytes() {
    let local = Address {
        id: Some(5),
        addr: Some(v4(192, 0, 2, 1)),
        ..Address::default()
    };
    let remote = Address {
        addr: Some(v4(198, 51, 100, 2)),
        port: Some(5201),
        ..Address::default()
    };
    let request = Request::SubflowCreate {
        token: 7,
        local,
        remote,
    };
    let bytes = encode_request(
        FAMILY_ID,
        request.to_message(),
        NLM_F_REQUEST | NLM_F_ACK,
        1,
    );
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x54, 0, 0, 0, 0x1c, 0, 0x05, 0, 1, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr
        10, 1, 0, 0,                                              // SUBFLOW_CREATE, version 1
        8, 0, 4, 0, 7, 0, 0, 0,                                   // TOKEN 7
        0x1c, 0, 0x01, 0x80,                                      // ADDR, nested
        6, 0, 1, 0, 2, 0, 0, 0,                                   //   FAMILY AF_INET
        5, 0, 2, 0, 5, 0, 0, 0,                                   //   ID 5
        8, 0, 3, 0, 192, 0, 2, 1,                                 //   ADDR4, network order
        0x1c, 0, 0x06, 0x80,                                      // ADDR_REMOTE, nested
        6, 0, 1, 0, 2, 0, 0, 0,                                   //   FAMILY AF_INET
        8, 0, 3, 0, 198, 51, 100, 2,                              //   ADDR4
        6, 0, 5, 0, 0x51, 0x14, 0, 0,                             //   PORT 5201, host order
    ];
    assert_eq!(bytes, expected);
}

#[test]
fn ipv6_address_nest_layout() {
    let attrs = Endpoint::new(v6(1), EndpointFlags::SIGNAL)
        .with_id(9)
        .to_address()
        .to_attrs();
    assert_eq!(
        attrs,
        [
            AddrAttr::Family(10),
            AddrAttr::Id(9),
            AddrAttr::Addr6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            AddrAttr::Flags(EndpointFlags::SIGNAL),
        ]
    );
}

#[test]
fn requests_missing_what_the_command_needs_are_typed_errors() {
    let cases = [
        (PmCmd::Announce, vec![PmAttr::Addr(Vec::new())], "TOKEN"),
        (PmCmd::Remove, vec![PmAttr::Token(1)], "LOC_ID"),
        (
            PmCmd::SubflowCreate,
            vec![PmAttr::Token(1), PmAttr::Addr(Vec::new())],
            "ADDR_REMOTE",
        ),
        (PmCmd::AddAddr, Vec::new(), "ADDR"),
    ];
    for (cmd, attrs, missing) in cases {
        match Request::from_message(&PmMessage::new(cmd, attrs), false) {
            Err(WireError::MissingAttribute { attr, .. }) => assert_eq!(attr, missing),
            other => panic!("{cmd:?}: {other:?}"),
        }
    }
    assert!(matches!(
        Request::from_message(&PmMessage::new(PmCmd::Other(99), Vec::new()), false),
        Err(WireError::UnexpectedCommand { cmd: 99, .. })
    ));
}

#[test]
fn endpoint_address_conversions() {
    let endpoint = Endpoint::new(v4(10, 0, 0, 1), EndpointFlags::SIGNAL)
        .with_id(3)
        .with_port(80)
        .with_if_idx(2);
    assert_eq!(
        Endpoint::from_address(&endpoint.to_address()).unwrap(),
        endpoint
    );
    assert_eq!(
        Endpoint::new(v4(10, 0, 0, 1), EndpointFlags::SIGNAL)
            .with_port(0)
            .port,
        None
    );
    let no_id = Address {
        addr: Some(v4(10, 0, 0, 1)),
        ..Address::default()
    };
    assert!(matches!(
        Endpoint::from_address(&no_id),
        Err(WireError::MissingAttribute {
            attr: "MPTCP_PM_ADDR_ATTR_ID",
            ..
        })
    ));
}
