//! The `sock_diag` wire format against messages captured from the real kernel
//! (`mptcpd/tests/fixtures/diag/`, see its README.md). The `diag` fuzz target (`tests/fuzz`)
//! mutates them.

use std::{net::SocketAddr, path::PathBuf};

use super::{
    mark_fully_established,
    wire::{
        Attr, DiagMsg, DiagWireError, INET_DIAG_INFO, InfoFlags, MptcpSocket, SOCK_DIAG_BY_FAMILY,
        SubflowSocket, dump_request, read_reply, state, subflow_dump_request,
    },
};
fn fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diag");
    mptcpd_hex_fixtures::read(&dir, name)
}

fn sock(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Decodes the one message of `name`, checks that it encodes back to the same bytes.
fn socket_of(name: &str) -> (DiagMsg, MptcpSocket) {
    let bytes = fixture(name);
    let mut msgs = Vec::new();
    assert!(
        !read_reply(&bytes, &mut msgs).unwrap(),
        "{name}: not the end"
    );
    assert_eq!(msgs.len(), 1, "{name}");
    let msg = msgs.remove(0);
    assert_eq!(msg.encode(), bytes[16..], "{name}: round trip");
    let socket = msg.socket().unwrap();
    (msg, socket)
}

#[test]
fn the_request_is_what_the_kernel_answered() {
    assert_eq!(dump_request(2, 1), fixture("request-inet"));
    assert_eq!(dump_request(10, 2), fixture("request-inet6"));
}

#[test]
fn ipv4_connections_of_both_ends() {
    let (msg, client) = socket_of("diag-cli-inet-00");
    assert_eq!(msg.attr(INET_DIAG_INFO).map(<[u8]>::len), Some(96));
    assert_eq!(
        client,
        MptcpSocket {
            state: state::ESTABLISHED,
            local: sock("192.0.2.1:50110"),
            remote: sock("192.0.2.2:5201"),
            token: 0x03a3_1455,
            flags: InfoFlags::REMOTE_KEY_RECEIVED,
            orphan: false,
            retransmits: Some(0),
            bytes_retrans: Some(0),
            fully_established: None,
        }
    );
    let (_, server) = socket_of("diag-srv-inet-00");
    assert_eq!(server.local, sock("192.0.2.2:5201"));
    assert_eq!(server.remote, sock("192.0.2.1:50110"));
    assert_eq!(server.token, 0x8c28_f15f);
}

#[test]
fn a_dual_stack_socket_carrying_ipv4_has_mapped_addresses() {
    let (msg, mapped) = socket_of("diag-srv-inet6-00");
    assert_eq!(msg.family, 10);
    assert_eq!(mapped.local, sock("[::ffff:192.0.2.2]:5202"));
    assert_eq!(mapped.remote, sock("[::ffff:192.0.2.1]:47720"));
    assert_eq!(mapped.token, 0xb72f_0320);
    let (_, v6) = socket_of("diag-srv-inet6-01");
    assert_eq!(v6.local, sock("[2001:db8:a::2]:5202"));
    assert_eq!(v6.remote, sock("[2001:db8:a::1]:33446"));
    let (_, client) = socket_of("diag-cli-inet6-00");
    assert_eq!(client.remote, sock("[2001:db8:a::2]:5202"));
}

#[test]
fn a_datagram_with_sockets_and_the_end() {
    let datagram = [
        fixture("diag-cli-inet-00"),
        fixture("diag-cli-inet-01"),
        fixture("diag-cli-inet-done"),
    ]
    .concat();
    let mut msgs = Vec::new();
    assert!(read_reply(&datagram, &mut msgs).unwrap(), "the end is seen");
    let tokens: Vec<u32> = msgs.iter().map(|m| m.socket().unwrap().token).collect();
    assert_eq!(tokens, [0x03a3_1455, 0x2b7d_4c35]);
}

#[test]
fn bad_input_is_an_error_never_a_panic() {
    let whole = fixture("diag-srv-inet6-00");
    for len in 0..whole.len() {
        let mut cut = whole[..len].to_vec();
        if cut.len() >= 4 {
            // A consistent header, so that the message body itself is short.
            let len = u32::try_from(cut.len()).unwrap().to_ne_bytes();
            cut[..4].copy_from_slice(&len);
        }
        let mut msgs = Vec::new();
        let _ignored = read_reply(&cut, &mut msgs);
    }
    assert!(matches!(
        DiagMsg::decode(&whole[16..40]),
        Err(DiagWireError::Truncated { .. })
    ));
    let mut other_family = DiagMsg::decode(&whole[16..]).unwrap();
    other_family.family = 1;
    assert_eq!(other_family.socket(), Err(DiagWireError::Family(1)));
    // No INET_DIAG_INFO: no token.
    other_family.family = 10;
    other_family.attrs.retain(|a| a.kind != INET_DIAG_INFO);
    assert_eq!(other_family.socket().unwrap().token, 0);
    // Another message type, and a kernel error ending the dump.
    let mut wrong = whole.clone();
    wrong[4..6].copy_from_slice(&(SOCK_DIAG_BY_FAMILY + 1).to_ne_bytes());
    assert_eq!(
        read_reply(&wrong, &mut Vec::new()),
        Err(DiagWireError::MessageType(SOCK_DIAG_BY_FAMILY + 1))
    );
    let mut error = fixture("diag-srv-inet-done");
    error[4..6].copy_from_slice(&2_u16.to_ne_bytes());
    error[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
    assert!(matches!(
        read_reply(&error, &mut Vec::new()),
        Err(DiagWireError::Kernel(e)) if e.errno == libc::ENOENT
    ));
}

/// The bytes of `msg`'s `struct mptcp_info`.
fn info_of(msg: &mut DiagMsg) -> &mut Vec<u8> {
    let attr = msg.attrs.iter_mut().find(|a| a.kind == INET_DIAG_INFO);
    &mut attr.expect("INET_DIAG_INFO").value
}

#[test]
fn mptcp_level_retransmissions_by_the_length_of_mptcp_info() {
    // 6.18: the whole struct (96 bytes); a connection without retransmissions.
    let (mut msg, socket) = socket_of("diag-srv-inet-00");
    assert_eq!(
        (socket.retransmits, socket.bytes_retrans),
        (Some(0), Some(0))
    );
    // Counts where the kernel writes them.
    let info = info_of(&mut msg);
    info[44..48].copy_from_slice(&5_u32.to_ne_bytes());
    info[48..56].copy_from_slice(&70_000_u64.to_ne_bytes());
    let counted = msg.socket().unwrap();
    assert_eq!(
        (counted.retransmits, counted.bytes_retrans),
        (Some(5), Some(70_000))
    );
    // Before 6.5 the struct ends at 48 (what follows mptcpi_csum_enabled is padding, even
    // if not zero): no counts, not a count of 5.
    info_of(&mut msg).truncate(48);
    let old = msg.socket().unwrap();
    assert_eq!((old.retransmits, old.bytes_retrans), (None, None));
    assert_eq!(old.token, socket.token, "the rest is read as before");
}

/// An attribute as the kernel writes it (padded to 4 bytes).
fn attr_bytes(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut buf = u16::try_from(value.len() + 4)
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
    buf
}

/// A TCP socket of a TCP dump, with `INET_DIAG_ULP_INFO` as `subflow_get_info` fills it
/// (`linux/net/mptcp/diag.c`) when `ulp` is given: (local token, subflow flags).
fn tcp_socket(ulp: Option<(u32, u32)>) -> DiagMsg {
    let mut msg = DiagMsg::decode(&fixture("diag-cli-inet-00")[16..]).unwrap();
    msg.attrs.retain(|a| a.kind != INET_DIAG_INFO);
    if let Some((token, flags)) = ulp {
        let mptcp = [
            attr_bytes(1, &0x1111_u32.to_ne_bytes()),
            attr_bytes(2, &token.to_ne_bytes()),
            attr_bytes(3, &0_u32.to_ne_bytes()),
            attr_bytes(8, &flags.to_ne_bytes()),
            attr_bytes(9, &[0]),
            attr_bytes(10, &[0]),
        ]
        .concat();
        // INET_ULP_INFO_NAME, then INET_ULP_INFO_MPTCP (NLA_F_NESTED set: it is ignored).
        let ulp = [attr_bytes(1, b"mptcp\0"), attr_bytes(3 | 0x8000, &mptcp)].concat();
        msg.attrs.push(Attr {
            kind: 19,
            value: ulp,
        });
    }
    msg
}

#[test]
fn subflows_of_a_tcp_dump_say_whether_their_connection_is_fully_established() {
    // MCAP_REM | MCAP_LOC | CONNECTED: the peer's key from the SYN-ACK, not acked yet.
    let connecting = tcp_socket(Some((7, 0b1000_0011))).subflow();
    assert_eq!(
        connecting,
        Some(SubflowSocket {
            token: 7,
            fully_established: false
        })
    );
    // ... | FULLY_ESTABLISHED.
    let established = tcp_socket(Some((7, 0b1100_0011))).subflow();
    assert_eq!(established.map(|s| s.fully_established), Some(true));
    // Plain TCP, or no CAP_NET_ADMIN: no ULP info.
    assert_eq!(tcp_socket(None).subflow(), None);
    // A broken nest is no subflow, not a panic.
    let mut broken = tcp_socket(Some((7, 0)));
    broken.attrs.last_mut().unwrap().value.truncate(13);
    assert_eq!(broken.subflow(), None);
}

#[test]
fn a_connection_is_fully_established_when_one_of_its_subflows_is() {
    let (_, socket) = socket_of("diag-cli-inet-00");
    let mut live = [1, 2, 3].map(|token| MptcpSocket { token, ..socket });
    let subflows =
        [(1, false), (1, true), (2, false)].map(|(token, fully_established)| SubflowSocket {
            token,
            fully_established,
        });
    mark_fully_established(&mut live, &subflows);
    let marked = live.map(|s| s.fully_established);
    assert_eq!(
        marked,
        [Some(true), Some(false), None],
        "3 has no subflow listed"
    );
}

#[test]
fn the_subflow_request_is_a_plain_tcp_dump_with_info() {
    let tcp = subflow_dump_request(2, 3);
    let mptcp = dump_request(2, 3);
    assert_eq!(tcp.len(), mptcp.len() - 8, "no INET_DIAG_REQ_PROTOCOL");
    assert_eq!(u32::from_ne_bytes(tcp[..4].try_into().unwrap()), 72);
    assert_eq!(tcp[4..20], mptcp[4..20], "the same header and family");
    assert_eq!(tcp[24..], mptcp[24..72], "and no filter");
    let states = u32::from_ne_bytes(tcp[20..24].try_into().unwrap());
    for kept in [state::ESTABLISHED, state::FIN_WAIT1, 8, state::CLOSING] {
        assert_ne!(states & 1 << kept, 0, "state {kept}");
    }
    for left in [state::SYN_SENT, state::TIME_WAIT, state::CLOSE, 10] {
        assert_eq!(states & 1 << left, 0, "state {left}");
    }
}
