//! A test of a path outside the connections: whether packets from a local address (on its
//! interface) reach a peer and come back, without opening a subflow in any connection.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

/// What to test: a TCP connection attempt from `local` (any port), bound to interface
/// `if_index` when given, to `remote`, answered within `timeout` or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathProbe {
    /// The local address of the path.
    pub local: IpAddr,
    /// The interface the path's subflows were bound to.
    pub if_index: Option<u32>,
    /// A peer address and port the path's subflows used.
    pub remote: SocketAddr,
    /// How long the peer has to answer.
    pub timeout: Duration,
}

/// How a [`PathProbe`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The peer answered: a SYN-ACK (the connection was reset at once) or, `refused`, a
    /// reset. Either way packets cross the path both ways.
    Answered {
        /// The peer answered with a reset (nothing listens there).
        refused: bool,
    },
    /// No answer within the timeout.
    NoAnswer,
    /// The attempt failed locally or with an ICMP error (e.g. no route, host unreachable).
    Failed(String),
}

impl ProbeOutcome {
    /// Whether the path carries packets both ways.
    #[must_use]
    pub const fn answered(&self) -> bool {
        matches!(self, Self::Answered { .. })
    }
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Answered { refused: false } => f.write_str("answered (SYN-ACK; reset at once)"),
            Self::Answered { refused: true } => f.write_str("answered (reset)"),
            Self::NoAnswer => f.write_str("no answer"),
            Self::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}
