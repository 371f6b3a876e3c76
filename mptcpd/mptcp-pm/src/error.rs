//! Why a path-manager command, request or subscription failed: one error for the client, the
//! daemon's handle and plugins, with the kernel's refusals typed.

use std::{
    io,
    net::{IpAddr, SocketAddr},
};

use crate::wire::{KernelError, WireError};

/// Linux errnos the kernel's path manager answers with (fixed by the kernel's ABI; the pure
/// part of this crate needs no libc).
pub mod errno {
    /// `EBUSY`: `ADD_ADDR` with an id another endpoint holds.
    pub const EBUSY: i32 = 16;
    /// `EEXIST`: `ADD_ADDR` for an address (and port) that already has an endpoint.
    pub const EEXIST: i32 = 17;
    /// `EINVAL`: a bad request, an unknown endpoint id or token, or `ADD_ADDR` with an
    /// explicit id for an address the kernel holds an implicit endpoint for.
    pub const EINVAL: i32 = 22;
    /// `ERANGE`: no room for another endpoint (the kernel holds at most 8).
    pub const ERANGE: i32 = 34;
}

/// Why a command failed.
///
/// Callers decide on the typed refusals ([`Self::is_id_taken`], [`Self::is_no_room`],
/// [`Self::is_exists`], [`Self::is_not_found`], [`Self::is_invalid`]), not on errnos.
#[derive(Debug, thiserror::Error)]
pub enum PmError {
    /// The kernel refused the request (errno and extended-ack message).
    #[error("kernel: {0}")]
    Kernel(KernelError),
    /// The kernel has no `mptcp_pm` family (no `CONFIG_MPTCP`, or the controller said so).
    #[error("generic netlink family `mptcp_pm` unavailable: {0}")]
    FamilyUnavailable(KernelError),
    /// Address id 0 where an id is needed: the kernel would take it silently and mix the
    /// address up with the initial subflow's.
    #[error("address id 0 refused: ids 1..=255 name local addresses")]
    ZeroId,
    /// Every address id 1..=255 is in use.
    #[error("no free address id (1..=255 all in use)")]
    IdsExhausted,
    /// The endpoint added with id 0 was gone before a dump could read the id the kernel gave.
    #[error("the endpoint for {0} was removed before its id could be read")]
    Vanished(IpAddr),
    /// A listening socket for an announcement could not be opened or was not open.
    #[error("listener on {addr}: {reason}")]
    Listener {
        /// The address (and port) asked for.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The netlink socket failed; whether the kernel applied the request is unknown.
    #[error("netlink socket")]
    Io(#[from] io::Error),
    /// The family has no multicast group of that name.
    #[error("multicast group `{0}` not found")]
    GroupNotFound(&'static str),
    /// A reply could not be decoded.
    #[error("decoding a reply")]
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
    /// The task that owns the socket has stopped (the daemon is stopping).
    #[error("the netlink request task has stopped")]
    Closed,
}

impl PmError {
    /// A refusal with this errno and extended-ack message, as the kernel gives it.
    #[must_use]
    pub fn kernel(errno: i32, message: Option<&str>) -> Self {
        Self::Kernel(KernelError {
            errno,
            message: message.map(str::to_owned),
            offset: None,
        })
    }

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

    /// `ADD_ADDR` refused because another endpoint holds the id (`EBUSY`): another tool or
    /// the kernel took it; ask again with a fresh one.
    #[must_use]
    pub const fn is_id_taken(&self) -> bool {
        matches!(self.errno(), Some(errno::EBUSY))
    }

    /// `ADD_ADDR` refused for lack of room: the kernel holds at most 8 endpoints (`ERANGE`).
    #[must_use]
    pub const fn is_no_room(&self) -> bool {
        matches!(self.errno(), Some(errno::ERANGE))
    }

    /// `ADD_ADDR` refused because the address (and port) already has an endpoint (`EEXIST`).
    #[must_use]
    pub const fn is_exists(&self) -> bool {
        matches!(self.errno(), Some(errno::EEXIST))
    }

    /// The endpoint id named is not the kernel's (`EINVAL`, "address not found", from
    /// `DEL_ADDR`, `GET_ADDR` and `SET_FLAGS`): someone removed it already.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.is_invalid()
            && self
                .kernel_message()
                .is_none_or(|m| m.contains("not found"))
    }

    /// The kernel refused the request as invalid (`EINVAL`): bad values, an unknown id or
    /// token, or `ADD_ADDR` with an explicit id for an address it holds an implicit endpoint
    /// for.
    #[must_use]
    pub const fn is_invalid(&self) -> bool {
        matches!(self.errno(), Some(errno::EINVAL))
    }
}

#[cfg(test)]
mod tests {
    use super::{PmError, errno};

    #[test]
    fn refusals_are_typed() {
        let busy = PmError::kernel(
            errno::EBUSY,
            Some("too many addresses or duplicate one: -16"),
        );
        assert!(busy.is_id_taken() && !busy.is_exists() && !busy.is_no_room());
        assert!(PmError::kernel(errno::EEXIST, None).is_exists());
        assert!(PmError::kernel(errno::ERANGE, None).is_no_room());
        assert!(PmError::kernel(errno::EINVAL, Some("address not found")).is_not_found());
        assert!(
            PmError::kernel(errno::EINVAL, None).is_not_found(),
            "no message: all we know"
        );
        let invalid = PmError::kernel(errno::EINVAL, Some("invalid token"));
        assert!(invalid.is_invalid() && !invalid.is_not_found());
        for other in [PmError::ZeroId, PmError::IdsExhausted, PmError::Closed] {
            assert!(!other.is_id_taken() && !other.is_not_found() && !other.is_invalid());
        }
    }

    #[test]
    fn the_errnos_are_linux_ones() {
        assert_eq!(errno::EBUSY, libc::EBUSY);
        assert_eq!(errno::EEXIST, libc::EEXIST);
        assert_eq!(errno::EINVAL, libc::EINVAL);
        assert_eq!(errno::ERANGE, libc::ERANGE);
    }
}
