//! Errors of the path-manager client and event stream.

use std::io;

use super::wire::{KernelError, WireError};

/// Why a request or a subscription failed.
#[derive(Debug, thiserror::Error)]
pub enum PmError {
    /// The netlink socket failed.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// The kernel refused the request (errno and extended-ack message).
    #[error("kernel: {0}")]
    Kernel(#[source] KernelError),
    /// The kernel has no `mptcp_pm` family (no `CONFIG_MPTCP`, or the controller said so).
    #[error("generic netlink family `mptcp_pm` unavailable: {0}")]
    FamilyUnavailable(#[source] KernelError),
    /// The family has no multicast group of that name.
    #[error("multicast group `{0}` not found")]
    GroupNotFound(&'static str),
    /// A reply could not be decoded.
    #[error("decoding a reply: {0}")]
    Wire(#[from] WireError),
    /// The socket's receive buffer overflowed and replies were lost; the request may or may
    /// not have been carried out.
    #[error("replies lost: the netlink receive buffer overflowed")]
    Overrun,
    /// The kernel flagged the dump as inconsistent (`NLM_F_DUMP_INTR`); retry it.
    #[error("dump interrupted by a concurrent change")]
    DumpInterrupted,
    /// A request that has exactly one reply got another number of them.
    #[error("expected one reply, got {0}")]
    ReplyCount(usize),
    /// The task that owns the socket has stopped.
    #[error("the netlink request task has stopped")]
    Closed,
}

impl PmError {
    /// The kernel's errno, when the kernel refused the request.
    #[must_use]
    pub const fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel(err) | Self::FamilyUnavailable(err) => Some(err.errno),
            _ => None,
        }
    }

    /// The kernel's extended-ack message, when it gave one.
    #[must_use]
    pub fn kernel_message(&self) -> Option<&str> {
        match self {
            Self::Kernel(err) | Self::FamilyUnavailable(err) => err.message.as_deref(),
            _ => None,
        }
    }
}
