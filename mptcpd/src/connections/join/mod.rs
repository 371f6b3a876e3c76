//! Joining the table's connections with their figures: the subflow telemetry's records (of
//! the daemon's network namespace) by the subflow's addresses, and by token where the record
//! has one; `mptcp_diag`'s connection-level figures by token. Pure: the reads happen in
//! `Connections`, once per view read.

use std::{collections::HashMap, net::SocketAddr};

use mptcp_pm::{Token, canonical};
use mptcpd_common::telemetry::SubflowRecord;
use mptcpd_plugin::{ConnectionView, MptcpFigures, PathFigures};

use crate::diag::{InfoFlags, MptcpSocket};

/// The figures read for one view, indexed for the join.
#[derive(Debug, Default)]
pub struct Figures<'a> {
    /// Records by canonical (local, remote).
    records: HashMap<(SocketAddr, SocketAddr), Vec<&'a SubflowRecord>>,
    /// Connection-level figures by token; `None` when they were not read.
    mptcp: Option<HashMap<Token, MptcpFigures>>,
}

/// MPTCP token -> MPTCP-level retransmissions counted by the telemetry's kprobe, for kernels
/// whose `MPTCP_INFO` lacks them.
pub type ProbedRetransmits = HashMap<Token, u64>;

impl<'a> Figures<'a> {
    /// Indexes `records` (the namespace's, from one map walk) and `sockets` (one `mptcp_diag`
    /// dump; `None` when not read).
    #[must_use]
    pub fn new(records: &'a [SubflowRecord], sockets: Option<&[MptcpSocket]>) -> Self {
        let mut by_ends: HashMap<_, Vec<_>> = HashMap::new();
        for record in records {
            by_ends
                .entry((canonical(record.local()), canonical(record.remote())))
                .or_default()
                .push(record);
        }
        let mptcp = sockets.map(|sockets| {
            sockets
                .iter()
                .filter(|s| s.token != 0)
                .map(|s| (s.token, mptcp_figures(s)))
                .collect()
        });
        Self {
            records: by_ends,
            mptcp,
        }
    }

    /// Fills `MptcpFigures::retransmits` from `probed` where `MPTCP_INFO` gave none (before
    /// Linux 6.5); a connection the probe never saw retransmit has 0.
    #[must_use]
    pub fn with_probed_retransmits(mut self, probed: Option<&ProbedRetransmits>) -> Self {
        if let (Some(probed), Some(mptcp)) = (probed, self.mptcp.as_mut()) {
            for (token, figures) in mptcp {
                if figures.retransmits.is_none() {
                    let count = probed.get(token).copied().unwrap_or(0);
                    figures.retransmits = Some(u32::try_from(count).unwrap_or(u32::MAX));
                }
            }
        }
        self
    }

    /// `view` with the figures of its subflows and of the connection.
    pub fn fill(&self, view: &mut ConnectionView) {
        let token = view.token;
        for sub in &mut view.subflows {
            // A record of another connection on the same addresses (a closed one whose record
            // is still there, a reused port) is told apart by its token where it has one;
            // of those left, the most recently active.
            sub.figures = self
                .records
                .get(&(sub.local, sub.remote))
                .and_then(|records| {
                    records
                        .iter()
                        .filter(|r| r.token == 0 || r.token == token)
                        .max_by_key(|r| r.last_activity_ns)
                })
                .map(|r| path_figures(r));
        }
        view.mptcp = self
            .mptcp
            .as_ref()
            .and_then(|by_token| by_token.get(&token).copied());
    }
}

/// A record's figures as plugins see them.
#[must_use]
pub fn path_figures(record: &SubflowRecord) -> PathFigures {
    let mut figures = PathFigures::new(
        record.srtt_us,
        record.rttvar_us,
        record.rtt_min_us,
        record.snd_cwnd,
        record.bytes_acked,
        record.bytes_received,
        record.total_retrans,
        record.rto_count,
    );
    figures.segs_in = record.segs_in;
    figures.segs_out = record.segs_out;
    figures.tcp_state = record.state;
    figures.last_activity_ns = record.last_activity_ns;
    figures
}

/// A dumped connection's MPTCP-level figures.
#[must_use]
pub fn mptcp_figures(socket: &MptcpSocket) -> MptcpFigures {
    let mut figures = MptcpFigures::default();
    figures.retransmits = socket.retransmits;
    figures.bytes_retrans = socket.bytes_retrans;
    figures.fallback = socket.flags.contains(InfoFlags::FALLBACK);
    figures
}

#[cfg(test)]
mod tests;
