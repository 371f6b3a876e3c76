//! Path quality as plugins, the daemon's surfaces (D-Bus, metrics) and `mptcpctl` see it: one
//! view per MPTCP connection and subflow, joining the path manager's table (token, ids,
//! interface, backup) with the eBPF figures, and the telemetry events a path manager must
//! hear at once.

use std::net::SocketAddr;

use crate::Token;

/// A subflow's path figures as the eBPF telemetry last saw them (the fields of `tcp_info`
/// they match are named).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathFigures {
    /// Smoothed RTT, us (`tcpi_rtt`).
    pub srtt_us: u32,
    /// RTT variance, us (`tcpi_rttvar`); 0 where the kernel does not let it be read.
    pub rttvar_us: u32,
    /// Minimum RTT seen, us (`tcpi_min_rtt`).
    pub rtt_min_us: u32,
    /// Congestion window, segments (`tcpi_snd_cwnd`).
    pub snd_cwnd: u32,
    /// Bytes the peer acknowledged (`tcpi_bytes_acked`).
    pub bytes_acked: u64,
    /// Bytes received (`tcpi_bytes_received`).
    pub bytes_received: u64,
    /// Segments received (`tcpi_segs_in`).
    pub segs_in: u32,
    /// Segments sent (`tcpi_segs_out`).
    pub segs_out: u32,
    /// Retransmitted segments (`tcpi_total_retrans`).
    pub retransmissions: u32,
    /// Retransmission timeouts that fired.
    pub rtos: u32,
    /// TCP state (`include/net/tcp_states.h`: 1 is ESTABLISHED).
    pub tcp_state: u32,
    /// `CLOCK_MONOTONIC` ns of the last activity the telemetry saw.
    pub last_activity_ns: u64,
}

impl PathFigures {
    /// Figures from their values (the struct is `#[non_exhaustive]`: later fields default).
    #[must_use]
    #[expect(clippy::too_many_arguments, reason = "one argument per figure")]
    pub const fn new(
        srtt_us: u32,
        rttvar_us: u32,
        rtt_min_us: u32,
        snd_cwnd: u32,
        bytes_acked: u64,
        bytes_received: u64,
        retransmissions: u32,
        rtos: u32,
    ) -> Self {
        Self {
            srtt_us,
            rttvar_us,
            rtt_min_us,
            snd_cwnd,
            bytes_acked,
            bytes_received,
            segs_in: 0,
            segs_out: 0,
            retransmissions,
            rtos,
            tcp_state: 0,
            last_activity_ns: 0,
        }
    }
}

/// One subflow of a connection: what the path manager knows, with the eBPF figures when the
/// telemetry observes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubflowView {
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// Local address id, when the kernel said.
    pub local_id: Option<u8>,
    /// Remote address id, when the kernel said.
    pub remote_id: Option<u8>,
    /// The interface the subflow is bound to, if it is.
    pub if_index: Option<u32>,
    /// A backup subflow (`MP_PRIO`).
    pub backup: bool,
    /// The telemetry's figures; `None` when telemetry is off or has no record of it.
    pub figures: Option<PathFigures>,
}

impl SubflowView {
    /// A subflow without figures.
    #[must_use]
    pub const fn new(local: SocketAddr, remote: SocketAddr) -> Self {
        Self {
            local,
            remote,
            local_id: None,
            remote_id: None,
            if_index: None,
            backup: false,
            figures: None,
        }
    }
}

/// Connection-level figures the kernel keeps itself (`MPTCP_INFO` / `mptcp_diag`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MptcpFigures {
    /// MPTCP-level retransmissions (`mptcpi_retransmits`, Linux 6.5+).
    pub retransmits: Option<u32>,
    /// Bytes retransmitted at the MPTCP level (`mptcpi_bytes_retrans`, 6.5+).
    pub bytes_retrans: Option<u64>,
    /// The connection fell back to plain TCP.
    pub fallback: bool,
}

/// One MPTCP connection of the daemon's network namespace and its subflows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionView {
    /// The local token (never logged: name connections by address pair).
    pub token: Token,
    /// Local address and port of the initial subflow.
    pub local: SocketAddr,
    /// Remote address and port of the initial subflow.
    pub remote: SocketAddr,
    /// This side accepted the connection.
    pub server_side: bool,
    /// `MPTCP_EVENT_ESTABLISHED` was seen.
    pub established: bool,
    /// The subflows, initial first.
    pub subflows: Vec<SubflowView>,
    /// Connection-level figures, when read.
    pub mptcp: Option<MptcpFigures>,
}

impl ConnectionView {
    /// A connection without subflows yet.
    #[must_use]
    pub const fn new(token: Token, local: SocketAddr, remote: SocketAddr) -> Self {
        Self {
            token,
            local,
            remote,
            server_side: false,
            established: false,
            subflows: Vec::new(),
            mptcp: None,
        }
    }
}

/// What happened on a path, as the telemetry reports it at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TelemetryKind {
    /// A retransmission timeout fired (`consecutive`: the socket's RTOs in a row so far).
    Rto {
        /// Consecutive RTOs (`icsk_retransmits`).
        consecutive: u32,
    },
    /// Many retransmissions within a short window.
    RetransmissionBurst {
        /// Retransmissions counted in the window.
        count: u32,
    },
    /// The subflow was reset or aborted.
    Reset {
        /// This side sent the reset (`Some(false)`: the peer or a middlebox did), where the
        /// kernel's reset tracepoints saw it.
        sent: Option<bool>,
        /// The kernel's reason for a reset it sent (`enum sk_rst_reason`, Linux 6.10+).
        reason: Option<u32>,
    },
    /// The connection fell back to plain TCP.
    Fallback,
}

/// A telemetry event about one subflow of one connection, for the plugin that handles the
/// connection ([`crate::Event::Telemetry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TelemetryEvent {
    /// The connection.
    pub token: Token,
    /// The subflow's local address and port.
    pub local: SocketAddr,
    /// The subflow's remote address and port.
    pub remote: SocketAddr,
    /// What happened.
    pub kind: TelemetryKind,
    /// The subflow's figures at that moment.
    pub figures: PathFigures,
}

impl TelemetryEvent {
    /// An event from its parts.
    #[must_use]
    pub const fn new(
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
        kind: TelemetryKind,
        figures: PathFigures,
    ) -> Self {
        Self {
            token,
            local,
            remote,
            kind,
            figures,
        }
    }
}
