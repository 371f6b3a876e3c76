//! What a path-manager command can fail with.

/// Why a command through the [`crate::PathManager`] handle failed.
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
}
