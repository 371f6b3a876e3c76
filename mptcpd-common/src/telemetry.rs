//! Per-subflow telemetry: the `sock_ops` program keeps one [`SubflowRecord`] per MPTCP subflow
//! of the observed cgroup, keyed by the subflow's socket cookie, and pushes a
//! [`TelemetryEvent`] to a ring buffer when a path manager must hear at once (RTO,
//! retransmission burst, subflow closed or reset).
//!
//! `bpf_sock_ops` has no field for the MPTCP token or the RTT variance and our programs have no
//! CO-RE: user space reads the offsets of `mptcp_sock.token` and `tcp_sock.mdev_us` from the
//! kernel's BTF into [`TelemetryConfig`]; without them both read 0 and the 4-tuple (with the
//! netns cookie) joins a record with the path manager's `SUB_ESTABLISHED` events.

/// The `sock_ops` program (its name in the kernel is the first 15 bytes).
pub const PROGRAM: &str = "subflow_ops";
/// LRU hash: socket cookie (`u64`) -> [`SubflowRecord`].
pub const SUBFLOWS_MAP: &str = "TELEMETRY_SUBFLOWS";
/// Ring buffer of [`TelemetryEvent`]s.
pub const EVENTS_MAP: &str = "TELEMETRY_EVENTS";
/// Array of `u64` counters, indexed by the `STAT_*` slots.
pub const STATS_MAP: &str = "TELEMETRY_STATS";

/// Array of one [`TelemetryConfig`].
pub const CONFIG_MAP: &str = "TELEMETRY_CFG";

/// Kernel field offsets read from BTF by user space before the program runs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// 1 once the offsets are written; until then token and RTT variance read 0.
    pub ready: u64,
    /// `offsetof(struct mptcp_sock, token)` (a `u32`).
    pub mptcp_sock_token: u64,
    /// `offsetof(struct tcp_sock, mdev_us)` (a `u32`: RTT variance << 2).
    pub tcp_sock_mdev_us: u64,
    /// `offsetof(struct sock, sk_err)` (an `int`): 0 at an abrupt close means a local abort,
    /// whose reset the kernel sends right after the close.
    pub sock_sk_err: u64,
    /// `offsetof(struct sock_common, skc_cookie)` (a `u64`, set once a cookie was asked for).
    pub sock_skc_cookie: u64,
    /// `offsetof(struct mptcp_subflow_context, tcp_sock)` (a pointer).
    pub subflow_tcp_sock: u64,
}

/// The `tp_btf` program on `tcp:tcp_send_reset` that reads the reset reason (Linux 6.10+).
pub const RESET_SENT_REASON_PROGRAM: &str = "reset_sent_why";
/// The `tp_btf` program on `tcp:tcp_send_reset` for kernels whose tracepoint has no reason.
pub const RESET_SENT_PROGRAM: &str = "reset_sent";
/// The `tp_btf` program on `tcp:tcp_receive_reset`.
pub const RESET_RECEIVED_PROGRAM: &str = "reset_received";
/// The `tp_btf` program on `mptcp:mptcp_subflow_get_send`.
pub const SCHED_PROGRAM: &str = "sched_get_send";
/// The kprobe on `__mptcp_retrans`, loaded only where `MPTCP_INFO` lacks `mptcpi_retransmits`.
pub const MPTCP_RETRANS_PROGRAM: &str = "mptcp_retrans";
/// The kernel function it probes.
pub const MPTCP_RETRANS_FUNCTION: &str = "__mptcp_retrans";
/// LRU hash: MPTCP token (`u32`) -> MPTCP-level retransmission rounds (`u64`).
pub const MPTCP_RETRANS_MAP: &str = "TELEMETRY_MPTCP_RETRANS";
/// Connections whose count it keeps at once (the LRU drops the oldest).
pub const MPTCP_RETRANS_MAX_ENTRIES: u32 = 8192;

/// [`SubflowRecord::reset_direction`]: no reset seen.
pub const RESET_NONE: u32 = 0;
/// [`SubflowRecord::reset_direction`]: this side sent the reset.
pub const RESET_SENT: u32 = 1;
/// [`SubflowRecord::reset_direction`]: the peer (or a middlebox) sent it.
pub const RESET_RECEIVED: u32 = 2;
/// [`SubflowRecord::reset_reason`] when the kernel gave none (received resets, kernels before
/// 6.10, local aborts whose reset follows the close).
pub const RESET_REASON_UNKNOWN: u32 = u32::MAX;

/// Most subflows tracked at once: far above the concurrent subflows of a host (the in-kernel
/// PM allows 8 per connection); the LRU evicts the least recently active beyond it.
pub const SUBFLOWS_MAX_ENTRIES: u32 = 16_384;
/// Ring buffer size in bytes (a power of two, a multiple of the page size): ~1,700 events.
pub const EVENTS_BYTE_SIZE: u32 = 256 * 1024;

/// Records created (an MPTCP subflow reached ESTABLISHED).
pub const STAT_CREATED: u32 = 0;
/// Records gone at their subflow's close: removed then, or taken by the LRU during that last
/// callback.
pub const STAT_REMOVED: u32 = 1;
/// Callbacks of an MPTCP subflow whose record was gone: the LRU evicted it (it is recreated).
pub const STAT_EVICTED: u32 = 2;
/// Events dropped because the ring buffer was full.
pub const STAT_EVENTS_LOST: u32 = 3;
/// Records that could not be inserted (the map refused).
pub const STAT_INSERT_FAILED: u32 = 4;
/// Number of counter slots.
pub const STAT_SLOTS: u32 = 5;

/// [`TelemetryEvent::kind`]: a retransmission timeout fired (`detail`: the socket's
/// consecutive RTOs so far, `icsk_retransmits`).
pub const EVENT_RTO: u32 = 1;
/// [`TelemetryEvent::kind`]: [`RETRANS_BURST_THRESHOLD`] retransmissions within
/// [`RETRANS_BURST_WINDOW_NS`] (`detail`: retransmissions counted in the window).
pub const EVENT_RETRANS_BURST: u32 = 2;
/// [`TelemetryEvent::kind`]: the subflow closed after an orderly shutdown (`detail`: the
/// TCP state it left).
pub const EVENT_CLOSED: u32 = 3;
/// [`TelemetryEvent::kind`]: the subflow went from a synchronised state straight to CLOSE
/// (a reset received or sent, or an abort) (`detail`: the TCP state it left); the record's
/// `reset_direction` and `reset_reason` say who reset it and why, where the kernel tells.
pub const EVENT_RESET: u32 = 4;

/// Retransmissions within [`RETRANS_BURST_WINDOW_NS`] that make a burst.
pub const RETRANS_BURST_THRESHOLD: u32 = 8;
/// The window of a retransmission burst.
pub const RETRANS_BURST_WINDOW_NS: u64 = 1_000_000_000;
/// The RTT callback (every ACK with an RTT sample) refreshes a record at most this often
/// (measured from its last refresh by any callback, `last_activity_ns`): readers refresh the
/// figures from the socket anyway (`iter/tcp`), and the ACK clock of a bulk transfer would
/// otherwise rewrite the record thousands of times a second.
pub const RTT_REFRESH_INTERVAL_NS: u64 = 10_000_000;

/// Linux TCP states (`include/net/tcp_states.h`) the program tells apart.
pub mod tcp_state {
    /// `TCP_ESTABLISHED`.
    pub const ESTABLISHED: u32 = 1;
    /// `TCP_SYN_SENT`.
    pub const SYN_SENT: u32 = 2;
    /// `TCP_SYN_RECV`.
    pub const SYN_RECV: u32 = 3;
    /// `TCP_CLOSE`.
    pub const CLOSE: u32 = 7;
    /// `TCP_CLOSE_WAIT`.
    pub const CLOSE_WAIT: u32 = 8;
}

/// Whether leaving `old` straight for CLOSE is a reset or an abort rather than the end of an
/// orderly shutdown (which passes through `FIN_WAIT*`, `CLOSING`, `LAST_ACK` or `TIME_WAIT`).
#[must_use]
pub const fn closed_abruptly(old: u32) -> bool {
    matches!(
        old,
        tcp_state::ESTABLISHED | tcp_state::SYN_SENT | tcp_state::SYN_RECV | tcp_state::CLOSE_WAIT
    )
}

/// One MPTCP subflow as `sock_ops` last saw it. Addresses and ports as the kernel hands them
/// to `sock_ops`: addresses in network byte order (IPv4 in `[0]`), ports in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubflowRecord {
    /// The subflow's socket cookie (`SO_COOKIE`), the map key.
    pub cookie: u64,
    /// The cookie of its network namespace (`SO_NETNS_COOKIE`).
    pub netns_cookie: u64,
    /// `tcpi_bytes_acked`.
    pub bytes_acked: u64,
    /// `tcpi_bytes_received`.
    pub bytes_received: u64,
    /// `CLOCK_MONOTONIC` ns of the last callback that refreshed the record.
    pub last_activity_ns: u64,
    /// Start of the current retransmission-burst window (program state).
    pub burst_start_ns: u64,
    /// `AF_INET` or `AF_INET6`.
    pub family: u32,
    /// TCP state (`tcp_state`).
    pub state: u32,
    /// Local address, network byte order.
    pub local_addr: [u32; 4],
    /// Remote address, network byte order.
    pub remote_addr: [u32; 4],
    /// Local port.
    pub local_port: u32,
    /// Remote port.
    pub remote_port: u32,
    /// Smoothed RTT, us (`tcpi_rtt`).
    pub srtt_us: u32,
    /// RTT variance, us (`tcpi_rttvar`); 0 until the program can read it.
    pub rttvar_us: u32,
    /// Minimum RTT seen, us (`tcpi_min_rtt`).
    pub rtt_min_us: u32,
    /// Congestion window, segments.
    pub snd_cwnd: u32,
    /// Segments received.
    pub segs_in: u32,
    /// Segments sent.
    pub segs_out: u32,
    /// Retransmitted segments (`tcpi_total_retrans`).
    pub total_retrans: u32,
    /// Retransmission timeouts.
    pub rto_count: u32,
    /// Retransmissions in the current burst window (program state).
    pub burst_retrans: u32,
    /// The MPTCP connection's token (`MPTCP_INFO`'s `mptcpi_token`), 0 if unknown.
    pub token: u32,
    /// Who reset the subflow (`RESET_*`), set just before its close.
    pub reset_direction: u32,
    /// The kernel's `enum sk_rst_reason` of a reset this side sent, or
    /// [`RESET_REASON_UNKNOWN`].
    pub reset_reason: u32,
    /// Times the MPTCP scheduler (`mptcp_subflow_get_send`) evaluated this subflow for sending
    /// (its tracepoint fires once per subflow looked at, not for the one it picks).
    pub sched_evaluated: u32,
    /// Zero: keeps the layout free of implicit padding (the next `u32` figure goes here).
    pub reserved: u32,
}

impl SubflowRecord {
    /// The local address and port.
    #[must_use]
    pub fn local(&self) -> core::net::SocketAddr {
        socket_addr(self.family, self.local_addr, self.local_port)
    }

    /// The remote address and port.
    #[must_use]
    pub fn remote(&self) -> core::net::SocketAddr {
        socket_addr(self.family, self.remote_addr, self.remote_port)
    }
}

/// An address in network byte order (words as the kernel stored them) and a host-order port.
fn socket_addr(family: u32, words: [u32; 4], port: u32) -> core::net::SocketAddr {
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = if family == crate::AF_INET {
        IpAddr::V4(Ipv4Addr::from(words[0].to_ne_bytes()))
    } else {
        let mut bytes = [0_u8; 16];
        for (chunk, word) in bytes.as_chunks_mut::<4>().0.iter_mut().zip(words) {
            *chunk = word.to_ne_bytes();
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    };
    // Ports are 16 bits; the kernel widens them to u32.
    core::net::SocketAddr::new(ip, u16::try_from(port).unwrap_or(0))
}

/// The name of an `EVENT_*` kind, for logs.
#[must_use]
pub const fn event_name(kind: u32) -> &'static str {
    match kind {
        EVENT_RTO => "RTO",
        EVENT_RETRANS_BURST => "retransmission burst",
        EVENT_CLOSED => "closed",
        EVENT_RESET => "reset",
        _ => "unknown event",
    }
}

/// The name of a `RESET_*` direction, for logs.
#[must_use]
pub const fn reset_direction_name(direction: u32) -> &'static str {
    match direction {
        RESET_SENT => "sent",
        RESET_RECEIVED => "received",
        _ => "none seen",
    }
}

/// What the ring buffer carries: the kind of event, a detail, and the record at that moment.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelemetryEvent {
    /// `EVENT_*`.
    pub kind: u32,
    /// Per kind (see the `EVENT_*` constants).
    pub detail: u32,
    /// `CLOCK_MONOTONIC` ns when it happened.
    pub time_ns: u64,
    /// The subflow's figures at that moment.
    pub record: SubflowRecord,
}

// No implicit padding: the sizes are the sums of the fields (6 u64 + 26 u32; 2 u32 + u64 +
// record), so both sides agree byte for byte and no uninitialised byte reaches user space.
const _: () = assert!(size_of::<SubflowRecord>() == 6 * 8 + 26 * 4);
const _: () = assert!(size_of::<TelemetryEvent>() == 16 + size_of::<SubflowRecord>());

#[cfg(feature = "user")]
mod user {
    // SAFETY: `#[repr(C)]`, integers only, no padding (asserted above); every bit pattern is
    // a valid value.
    unsafe impl aya::Pod for super::SubflowRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TelemetryEvent {}
    // SAFETY: `#[repr(C)]`, `u64`s only, no padding.
    unsafe impl aya::Pod for super::TelemetryConfig {}
}

#[cfg(test)]
mod tests {
    use super::{SubflowRecord, closed_abruptly, tcp_state};

    #[test]
    fn addresses_read_back_from_network_order_words() {
        let v4 = SubflowRecord {
            family: crate::AF_INET,
            local_addr: [u32::from_ne_bytes([10, 0, 2, 1]), 0, 0, 0],
            local_port: 40_000,
            remote_addr: [u32::from_ne_bytes([10, 0, 1, 2]), 0, 0, 0],
            remote_port: 5201,
            ..SubflowRecord::default()
        };
        assert_eq!(v4.local().to_string(), "10.0.2.1:40000");
        assert_eq!(v4.remote().to_string(), "10.0.1.2:5201");
        let v6 = SubflowRecord {
            family: crate::AF_INET6,
            local_addr: [
                u32::from_ne_bytes([0x20, 0x01, 0x0d, 0xb8]),
                0,
                0,
                u32::from_ne_bytes([0, 0, 0, 1]),
            ],
            local_port: 1,
            ..SubflowRecord::default()
        };
        assert_eq!(v6.local().to_string(), "[2001:db8::1]:1");
    }

    #[test]
    fn only_synchronised_states_closing_at_once_are_resets() {
        assert!(closed_abruptly(tcp_state::ESTABLISHED));
        assert!(closed_abruptly(tcp_state::CLOSE_WAIT));
        assert!(closed_abruptly(tcp_state::SYN_SENT));
        // FIN_WAIT1 (4), FIN_WAIT2 (5), TIME_WAIT (6), LAST_ACK (9), CLOSING (11).
        for orderly in [4, 5, 6, 9, 11] {
            assert!(!closed_abruptly(orderly), "{orderly}");
        }
    }
}
