//! The on-demand refresh of the subflow records: a BPF iterator over the TCP sockets of the
//! reader's network namespace (`iter/tcp`) that copies the current figures of each socket with
//! a record into it, so that a reader sees what `TCP_INFO` would say now rather than what the
//! last `sock_ops` callback saw (no callback runs when data arrives on a socket that sends
//! nothing, nor after the last ACK with an RTT sample).
//!
//! The iterator reads `struct tcp_sock` directly; our programs have no CO-RE, so user space
//! reads the field offsets from the kernel's BTF into [`TcpSockOffsets`].

/// The `iter/tcp` program (15 bytes: its whole name in the kernel).
pub const PROGRAM: &str = "subflow_refresh";
/// Array of one [`TcpSockOffsets`].
pub const OFFSETS_MAP: &str = "TELEMETRY_TCP_OFFSETS";

/// Byte offsets of the figures in the kernel's `struct tcp_sock` (the socket's state in its
/// `struct sock_common`, at the same address), from BTF.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSockOffsets {
    /// 1 once the offsets are written; until then the iterator changes nothing.
    pub ready: u64,
    /// `sock_common.skc_state` (`u8`).
    pub state: u64,
    /// `tcp_sock.srtt_us` (`u32`, smoothed RTT << 3).
    pub srtt_us: u64,
    /// `tcp_sock.mdev_us` (`u32`, RTT variance << 2).
    pub mdev_us: u64,
    /// `tcp_sock.rtt_min.s[0].v` (`u32`: the windowed minimum, what `minmax_get` returns).
    pub rtt_min_us: u64,
    /// `tcp_sock.snd_cwnd` (`u32`).
    pub snd_cwnd: u64,
    /// `tcp_sock.bytes_acked` (`u64`).
    pub bytes_acked: u64,
    /// `tcp_sock.bytes_received` (`u64`).
    pub bytes_received: u64,
    /// `tcp_sock.segs_in` (`u32`).
    pub segs_in: u64,
    /// `tcp_sock.segs_out` (`u32`).
    pub segs_out: u64,
    /// `tcp_sock.total_retrans` (`u32`).
    pub total_retrans: u64,
}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `u64`s only, no padding; every bit pattern is a valid value.
unsafe impl aya::Pod for TcpSockOffsets {}
