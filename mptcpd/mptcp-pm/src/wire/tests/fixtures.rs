//! Messages captured from Linux 6.18 (`tests/fixtures/README.md`): decoded values, and
//! encoding back to the kernel's exact bytes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use netlink_packet_core::{Emitable as _, NetlinkPayload};
use netlink_packet_generic::GenlMessage;

use super::{all_fixtures, fixture};
use crate::{
    Connection, Endpoint, EndpointFlags, Event, EventFlags, Limits, Listener, RemoteAddress,
    Subflow,
    wire::{
        EVENTS_GROUP, Family, FrameKind, KernelError, PmCmd, PmEvent, PmMessage, decode_genl,
        decode_message, frames,
    },
};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

fn sock(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

/// The one message of a fixture.
fn frame_kind(name: &str) -> FrameKind {
    let bytes = fixture(name);
    let frame = frames(&bytes)
        .next()
        .expect("a message")
        .expect("a well-formed message");
    frame.kind()
}

fn reply(name: &str) -> PmMessage {
    let bytes = fixture(name);
    let frame = frames(&bytes)
        .next()
        .expect("a message")
        .expect("a well-formed message");
    assert!(matches!(frame.kind(), FrameKind::Data), "{name}");
    let genl: GenlMessage<PmMessage> = decode_genl(&frame).expect("a mptcp_pm reply");
    genl.payload
}

fn event(name: &str) -> Event {
    let bytes = fixture(name);
    let frame = frames(&bytes)
        .next()
        .expect("a message")
        .expect("a well-formed message");
    let genl: GenlMessage<PmEvent> = decode_genl(&frame).expect("a mptcp_pm event");
    Event::try_from(&genl.payload).expect("a complete event")
}

fn error(name: &str) -> KernelError {
    match frame_kind(name) {
        FrameKind::Error(err) => err,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn every_fixture_is_one_message_that_encodes_back_to_the_same_bytes() {
    let fixtures = all_fixtures();
    assert!(fixtures.len() >= 60, "{} fixtures", fixtures.len());
    for (name, bytes) in fixtures {
        let all: Vec<_> = frames(&bytes).collect();
        assert_eq!(all.len(), 1, "{name}");
        let frame = all[0].as_ref().expect("a well-formed message");
        assert_eq!(frame.bytes, bytes.as_slice(), "{name}");
        if name.starts_with("ctrl-") {
            continue; // Family is a typed view, not an encodable message.
        }
        let emitted = if name.starts_with("ev-") {
            let msg = decode_message::<PmEvent>(&bytes).expect(&name);
            assert!(
                matches!(msg.payload, NetlinkPayload::InnerMessage(_)),
                "{name}"
            );
            let mut out = vec![0; msg.buffer_len()];
            msg.emit(&mut out);
            out
        } else {
            let msg = decode_message::<PmMessage>(&bytes).expect(&name);
            let mut out = vec![0; msg.buffer_len()];
            msg.emit(&mut out);
            out
        };
        assert_eq!(emitted, bytes, "{name}");
    }
}

#[test]
fn family_resolution_reply() {
    let bytes = fixture("ctrl-getfamily-reply");
    let frame = frames(&bytes).next().unwrap().unwrap();
    let family = Family::parse(frame.payload().get(4..).unwrap()).unwrap();
    assert_eq!(family.name, "mptcp_pm");
    assert_eq!(family.version, 1);
    assert_ne!(family.id, 0);
    assert!(family.group(EVENTS_GROUP).is_some(), "{family:?}");
    assert!(family.group("mptcp_pm_cmds").is_some(), "{family:?}");
    assert_eq!(family.group("nope"), None);
    for cmd in 1..=11 {
        assert!(
            family.supports(PmCmd::from(cmd)),
            "command {cmd}: {family:?}"
        );
    }
    assert!(!family.supports(PmCmd::Other(12)));
}

#[test]
fn limits_reply() {
    let reply = reply("get-limits-reply");
    assert_eq!(reply.cmd, PmCmd::GetLimits);
    assert_eq!(
        reply.limits().unwrap(),
        Limits {
            add_addr_accepted: 3,
            subflows: 4
        }
    );
    assert!(reply.endpoint().is_err());
}

#[test]
fn get_addr_reply_with_host_order_port() {
    let bytes = fixture("get-addr-reply");
    // MPTCP_PM_ADDR_ATTR_PORT 12345 = 0x3039, host (little endian) order: 39 30.
    assert!(
        bytes.windows(6).any(|w| w == [6, 0, 5, 0, 0x39, 0x30]),
        "{bytes:02x?}"
    );
    // MPTCP_PM_ADDR_ATTR_ADDR4 192.0.2.1, network order.
    assert!(
        bytes.windows(8).any(|w| w == [8, 0, 3, 0, 192, 0, 2, 1]),
        "{bytes:02x?}"
    );
    let expected = Endpoint::new(ip("192.0.2.1"), EndpointFlags::SIGNAL)
        .with_id(4)
        .with_port(12345);
    assert_eq!(reply("get-addr-reply").endpoint().unwrap(), expected);
}

#[test]
fn dump_of_endpoints_with_every_settable_flag() {
    let expected = [
        Endpoint::new(ip("192.0.2.1"), EndpointFlags::SIGNAL).with_id(1),
        Endpoint::new(
            ip("198.51.100.1"),
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
        )
        .with_id(2)
        .with_if_idx(3),
        Endpoint::new(
            ip("2001:db8:a::1"),
            EndpointFlags::SUBFLOW | EndpointFlags::FULLMESH,
        )
        .with_id(3),
        Endpoint::new(ip("192.0.2.1"), EndpointFlags::SIGNAL)
            .with_id(4)
            .with_port(12345),
        Endpoint::new(
            ip("2001:db8:b::1"),
            EndpointFlags::SUBFLOW | EndpointFlags::LAMINAR,
        )
        .with_id(5),
    ];
    for (i, endpoint) in expected.iter().enumerate() {
        let reply = reply(&format!("dump-addrs-{i:02}"));
        assert_eq!(reply.cmd, PmCmd::GetAddr);
        assert_eq!(&reply.endpoint().unwrap(), endpoint);
    }
    assert!(matches!(frame_kind("dump-addrs-05"), FrameKind::Done));
    assert!(matches!(frame_kind("dump-addrs-empty"), FrameKind::Done));
}

#[test]
fn implicit_endpoint_and_userspace_pm_addresses() {
    let implicit = reply("dump-addrs-kpm-01").endpoint().unwrap();
    assert_eq!(
        implicit,
        Endpoint::new(ip("198.51.100.1"), EndpointFlags::IMPLICIT).with_id(2)
    );
    let by_token = reply("dump-addrs-token-00").endpoint().unwrap();
    assert_eq!(
        by_token,
        Endpoint::new(ip("198.51.100.1"), EndpointFlags::SIGNAL).with_id(5)
    );
}

#[test]
fn acks() {
    for name in [
        "announce-ack",
        "flush-ack",
        "remove-ack",
        "set-flags-ack",
        "set-flags-token-ack",
        "set-limits-ack",
        "subflow-create-ack",
        "subflow-destroy-ack",
    ] {
        assert!(matches!(frame_kind(name), FrameKind::Ack), "{name}");
    }
}

#[test]
fn errors_carry_errno_and_extack_message() {
    let cases = [
        (
            "add-addr-eexist",
            libc::EEXIST,
            "too many addresses or duplicate one: -17",
        ),
        (
            "add-addr-id-taken",
            libc::EBUSY,
            "too many addresses or duplicate one: -16",
        ),
        (
            "add-addr-ninth",
            libc::ERANGE,
            "too many addresses or duplicate one: -34",
        ),
        (
            "add-addr-implicit",
            libc::EINVAL,
            "can't create IMPLICIT endpoint",
        ),
        ("get-addr-unknown", libc::EINVAL, "address not found"),
        ("del-addr-unknown", libc::EINVAL, "address not found"),
        (
            "set-limits-over-max",
            libc::EINVAL,
            "limit greater than maximum (8)",
        ),
        ("remove-bad-token", libc::EINVAL, "invalid token"),
    ];
    for (name, errno, message) in cases {
        let err = error(name);
        assert_eq!(err.errno, errno, "{name}");
        assert_eq!(err.message.as_deref(), Some(message), "{name}");
        assert_eq!(err.io_error().raw_os_error(), Some(errno));
    }
    // The kernel points at the token attribute: right after nlmsghdr + genlmsghdr.
    assert_eq!(error("remove-bad-token").offset, Some(20));
    assert_eq!(
        error("remove-bad-token").to_string(),
        format!(
            "{}: invalid token",
            std::io::Error::from_raw_os_error(libc::EINVAL)
        )
    );
}

#[test]
fn connection_events_of_both_sides() {
    let client = Connection {
        token: 1_617_931_497,
        local: sock("192.0.2.1:49666"),
        remote: sock("192.0.2.2:5201"),
        local_id: Some(0),
        remote_id: Some(0),
        flags: EventFlags::empty(),
    };
    assert!(!client.server_side() && !client.deny_join_id0());
    assert_eq!(event("ev-kpm-cli-00-created"), Event::Created(client));
    assert_eq!(
        event("ev-kpm-cli-01-established"),
        Event::Established(client)
    );
    assert_eq!(
        event("ev-kpm-cli-05-closed"),
        Event::Closed {
            token: client.token
        }
    );
    let server = Connection {
        token: 1_845_971_711,
        local: client.remote,
        remote: client.local,
        flags: EventFlags::SERVER_SIDE,
        ..client
    };
    assert!(server.server_side());
    assert_eq!(event("ev-kpm-srv-01-created"), Event::Created(server));
    assert_eq!(
        event("ev-kpm-srv-02-established"),
        Event::Established(server)
    );
    // MPTCP_ATTR_SPORT 5201 = 0x1451 in network order: 14 51.
    let bytes = fixture("ev-kpm-srv-01-created");
    assert!(
        bytes.windows(6).any(|w| w == [6, 0, 9, 0, 0x14, 0x51]),
        "{bytes:02x?}"
    );
}

#[test]
fn address_and_subflow_events() {
    assert_eq!(
        event("ev-kpm-cli-02-announced"),
        Event::Announced(RemoteAddress {
            token: 1_617_931_497,
            id: 1,
            addr: ip("198.51.100.2"),
            port: Some(5201),
        })
    );
    let bound = Subflow {
        token: 1_617_931_497,
        local: sock("198.51.100.3:41985"),
        remote: sock("192.0.2.2:5201"),
        local_id: 1,
        remote_id: 0,
        backup: false,
        if_idx: Some(3),
        error: None,
        reset_reason: None,
        reset_flags: None,
    };
    assert_eq!(
        event("ev-kpm-cli-04-sub_established"),
        Event::SubflowEstablished(bound)
    );
    let Event::SubflowClosed(refused) = event("ev-upm-srv-03-sub_closed") else {
        panic!("not SUB_CLOSED");
    };
    assert_eq!(refused.error, Some(111));
    let Event::SubflowPriority(prio) = event("ev-upm-srv-05-sub_priority") else {
        panic!("not SUB_PRIORITY");
    };
    assert!(prio.backup);
    assert_eq!((prio.local_id, prio.remote_id), (0, 5));
    assert_eq!(
        event("ev-upm-srv-06-removed"),
        Event::Removed {
            token: 1_076_763_938,
            remote_id: 5
        }
    );
}

#[test]
fn listener_and_ipv6_events() {
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5201);
    assert_eq!(
        event("ev-kpm-srv-00-listener_created"),
        Event::ListenerCreated(Listener { local: any })
    );
    assert_eq!(
        event("ev-v6-srv-03-listener_closed"),
        Event::ListenerClosed(Listener {
            local: sock("[2001:db8:a::2]:5202")
        })
    );
    let Event::Created(v6) = event("ev-v6-cli-00-created") else {
        panic!("not CREATED");
    };
    assert_eq!(v6.local, sock("[2001:db8:a::1]:35854"));
    assert_eq!(v6.remote, sock("[2001:db8:a::2]:5202"));
}

#[test]
fn every_event_fixture_decodes_to_the_kind_in_its_name() {
    for (name, _) in all_fixtures()
        .into_iter()
        .filter(|(n, _)| n.starts_with("ev-"))
    {
        let kind = name.rsplit('-').next().unwrap();
        let decoded = event(&name);
        let matches = matches!(
            (kind, &decoded),
            ("created", Event::Created(_))
                | ("established", Event::Established(_))
                | ("closed", Event::Closed { .. })
                | ("announced", Event::Announced(_))
                | ("removed", Event::Removed { .. })
                | ("sub_established", Event::SubflowEstablished(_))
                | ("sub_closed", Event::SubflowClosed(_))
                | ("sub_priority", Event::SubflowPriority(_))
                | ("listener_created", Event::ListenerCreated(_))
                | ("listener_closed", Event::ListenerClosed(_))
        );
        assert!(matches, "{name}: {decoded:?}");
        let token = decoded.token();
        assert_eq!(token.is_none(), kind.starts_with("listener"), "{name}");
    }
}
