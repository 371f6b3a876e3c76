//! Where the view's figures are read from: traits, so that the daemon plugs in the subflow
//! telemetry and `mptcp_diag` and tests plug in fakes.

use mptcpd_bpf::EbpfError;
use mptcpd_common::telemetry::SubflowRecord;

use super::join::ProbedRetransmits;
use crate::diag::{self, DiagError, MptcpSocket};

/// The subflow telemetry's records.
pub trait RecordSource: Send + Sync {
    /// The records of the daemon's network namespace (one walk of the map).
    fn records(&self) -> Result<Vec<SubflowRecord>, EbpfError>;

    /// MPTCP-level retransmissions by token where the telemetry counts them itself (a kernel
    /// whose `MPTCP_INFO` lacks them); `None` elsewhere.
    fn mptcp_retransmits(&self) -> Result<Option<ProbedRetransmits>, EbpfError> {
        Ok(None)
    }
}

/// The kernel's MPTCP connections with their `MPTCP_INFO`.
pub trait SocketSource: Send + Sync {
    /// The connections (one dump).
    fn sockets(&self) -> Result<Vec<MptcpSocket>, DiagError>;
}

/// `mptcp_diag` of the caller's network namespace, read synchronously.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelDiag;

impl SocketSource for KernelDiag {
    fn sockets(&self) -> Result<Vec<MptcpSocket>, DiagError> {
        diag::connections_blocking()
    }
}
