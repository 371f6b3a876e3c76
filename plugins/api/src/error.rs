//! What a path-manager command can fail with.

/// Linux errnos the kernel's path manager answers with (fixed by the kernel's ABI; this crate
/// does no I/O and needs no libc).
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

/// Why a command through the [`crate::PathManager`] handle failed.
///
/// Callers decide on the typed refusals ([`Self::is_id_taken`], [`Self::is_no_room`],
/// [`Self::is_exists`], [`Self::is_not_found`], [`Self::is_invalid`]), not on errnos.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PmError {
    /// The kernel refused the command: its errno and extended-ack message.
    #[error("kernel refused: {} (errno {errno})", message.as_deref().unwrap_or("no message"))]
    Kernel {
        /// The errno (`EEXIST`, `ERANGE`, `EINVAL`, ...).
        errno: i32,
        /// The kernel's extended-ack message, when it gave one.
        message: Option<String>,
    },
    /// Address id 0 where an id is needed: the kernel would take it silently and mix the
    /// address up with the initial subflow's.
    #[error("address id 0 refused: ids 1..=255 name local addresses")]
    ZeroId,
    /// Every address id 1..=255 is in use.
    #[error("no free address id (1..=255 all in use)")]
    IdsExhausted,
    /// A listening socket for an announcement could not be opened or was not open.
    #[error("listener on {addr}: {reason}")]
    Listener {
        /// The address (and port) asked for.
        addr: std::net::SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The command could not be carried out for another reason (socket failure, undecodable
    /// reply, the daemon stopping); whether the kernel applied it is unknown.
    #[error("path manager: {0}")]
    Unavailable(String),
}

impl PmError {
    /// The kernel's errno, when the kernel refused.
    #[must_use]
    pub const fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            Self::ZeroId | Self::IdsExhausted | Self::Listener { .. } | Self::Unavailable(_) => {
                None
            }
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
        match self {
            Self::Kernel { errno, message } => {
                *errno == errno::EINVAL
                    && message.as_deref().is_none_or(|m| m.contains("not found"))
            }
            Self::ZeroId | Self::IdsExhausted | Self::Listener { .. } | Self::Unavailable(_) => {
                false
            }
        }
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

    fn kernel(errno: i32, message: Option<&str>) -> PmError {
        PmError::Kernel {
            errno,
            message: message.map(str::to_owned),
        }
    }

    #[test]
    fn refusals_are_typed() {
        let busy = kernel(
            errno::EBUSY,
            Some("too many addresses or duplicate one: -16"),
        );
        assert!(busy.is_id_taken() && !busy.is_exists() && !busy.is_no_room());
        assert!(kernel(errno::EEXIST, None).is_exists());
        assert!(kernel(errno::ERANGE, None).is_no_room());
        assert!(kernel(errno::EINVAL, Some("address not found")).is_not_found());
        assert!(
            kernel(errno::EINVAL, None).is_not_found(),
            "no message: all we know"
        );
        let invalid = kernel(errno::EINVAL, Some("invalid token"));
        assert!(invalid.is_invalid() && !invalid.is_not_found());
        for other in [
            PmError::ZeroId,
            PmError::IdsExhausted,
            PmError::Unavailable("x".into()),
        ] {
            assert!(!other.is_id_taken() && !other.is_not_found() && !other.is_invalid());
        }
    }
}
