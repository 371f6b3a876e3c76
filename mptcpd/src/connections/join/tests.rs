//! The join of the table's view with records and dumped sockets.

use std::net::SocketAddr;

use mptcpd_common::{AF_INET, AF_INET6, telemetry::SubflowRecord};
use mptcpd_plugin::{ConnectionView, SubflowView};

use super::{Figures, mptcp_figures};
use crate::diag::{InfoFlags, MptcpSocket, wire::state};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A record as the kernel hands it: IPv4 subflows of an `AF_INET6` socket are IPv4-mapped.
fn record(local: &str, remote: &str, token: u32, srtt_us: u32, last: u64) -> SubflowRecord {
    let words = |a: SocketAddr| match a {
        SocketAddr::V4(a) => (AF_INET, [u32::from_ne_bytes(a.ip().octets()), 0, 0, 0]),
        SocketAddr::V6(a) => {
            let o = a.ip().octets();
            let w = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            (AF_INET6, [w(0), w(4), w(8), w(12)])
        }
    };
    let (local, remote) = (addr(local), addr(remote));
    let (family, local_addr) = words(local);
    SubflowRecord {
        family,
        local_addr,
        remote_addr: words(remote).1,
        local_port: local.port().into(),
        remote_port: remote.port().into(),
        token,
        srtt_us,
        last_activity_ns: last,
        bytes_acked: 1000,
        rto_count: 2,
        state: 1,
        ..SubflowRecord::default()
    }
}

fn view() -> ConnectionView {
    let local = addr("192.0.2.1:4000");
    let remote = addr("198.51.100.2:80");
    let mut view = ConnectionView::new(7, local, remote);
    view.subflows.push(SubflowView::new(local, remote));
    view.subflows.push(SubflowView::new(
        addr("203.0.113.1:5000"),
        addr("198.51.100.2:80"),
    ));
    view.subflows
        .push(SubflowView::new(addr("192.0.2.1:4001"), remote));
    view
}

fn socket(token: u32, flags: InfoFlags, retrans: Option<(u32, u64)>) -> MptcpSocket {
    MptcpSocket {
        state: state::ESTABLISHED,
        local: addr("192.0.2.1:4000"),
        remote: addr("198.51.100.2:80"),
        token,
        flags,
        orphan: false,
        retransmits: retrans.map(|r| r.0),
        bytes_retrans: retrans.map(|r| r.1),
        fully_established: None,
    }
}

#[test]
fn subflows_get_their_records_by_addresses_and_token() {
    let records = [
        // The initial subflow, from an AF_INET6 socket: mapped addresses.
        record(
            "[::ffff:192.0.2.1]:4000",
            "[::ffff:198.51.100.2]:80",
            7,
            10,
            5,
        ),
        // The second subflow: a record without token (no BTF offsets) and an older one.
        record("203.0.113.1:5000", "198.51.100.2:80", 0, 20, 9),
        record("203.0.113.1:5000", "198.51.100.2:80", 0, 99, 1),
        // Same addresses as the third subflow but another connection's token.
        record("192.0.2.1:4001", "198.51.100.2:80", 8, 30, 9),
    ];
    let sockets = [
        socket(7, InfoFlags::REMOTE_KEY_RECEIVED, Some((3, 4096))),
        socket(8, InfoFlags::FALLBACK, None),
    ];
    let figures = Figures::new(&records, Some(&sockets));
    let mut view = view();
    figures.fill(&mut view);
    let srtts: Vec<Option<u32>> = view
        .subflows
        .iter()
        .map(|s| s.figures.map(|f| f.srtt_us))
        .collect();
    assert_eq!(srtts, [Some(10), Some(20), None]);
    let first = view.subflows[0].figures.unwrap();
    assert_eq!(
        (
            first.bytes_acked,
            first.rtos,
            first.tcp_state,
            first.last_activity_ns
        ),
        (1000, 2, 1, 5)
    );
    let mptcp = view.mptcp.unwrap();
    assert_eq!(
        (mptcp.retransmits, mptcp.bytes_retrans, mptcp.fallback),
        (Some(3), Some(4096), false)
    );

    // Nothing read: no figures at all; a socket that fell back says so.
    let mut bare = self::view();
    Figures::new(&[], None).fill(&mut bare);
    assert!(bare.subflows.iter().all(|s| s.figures.is_none()));
    assert_eq!(bare.mptcp, None);
    assert!(mptcp_figures(&sockets[1]).fallback);
    assert_eq!(mptcp_figures(&sockets[1]).retransmits, None, "before 6.5");
}

#[test]
fn probed_retransmissions_fill_in_where_mptcp_info_has_none() {
    let probed = [(7, 5)].into_iter().collect();
    // Before 6.5: the probe's count; a connection it never saw retransmit has 0.
    let old = [socket(7, InfoFlags::empty(), None)];
    let mut view = view();
    Figures::new(&[], Some(&old))
        .with_probed_retransmits(Some(&probed))
        .fill(&mut view);
    assert_eq!(view.mptcp.unwrap().retransmits, Some(5));
    let mut other = ConnectionView::new(8, addr("192.0.2.1:4000"), addr("198.51.100.2:80"));
    let unseen = [socket(8, InfoFlags::empty(), None)];
    Figures::new(&[], Some(&unseen))
        .with_probed_retransmits(Some(&probed))
        .fill(&mut other);
    assert_eq!(other.mptcp.unwrap().retransmits, Some(0));

    // MPTCP_INFO's own figure wins; no probe leaves `None`.
    let new = [socket(7, InfoFlags::empty(), Some((1, 10)))];
    let mut view = self::view();
    Figures::new(&[], Some(&new))
        .with_probed_retransmits(Some(&probed))
        .fill(&mut view);
    assert_eq!(view.mptcp.unwrap().retransmits, Some(1));
    let mut view = self::view();
    Figures::new(&[], Some(&old))
        .with_probed_retransmits(None)
        .fill(&mut view);
    assert_eq!(view.mptcp.unwrap().retransmits, None);
}
