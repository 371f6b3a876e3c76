//! Why a message could not be decoded.

use netlink_packet_core::DecodeError;

/// A truncated, malformed or incomplete `mptcp_pm` message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The netlink framing or an attribute is malformed (lengths, sizes, nesting).
    #[error("malformed netlink data")]
    Decode(#[from] DecodeError),
    /// A message is shorter than its fixed header.
    #[error("truncated netlink message")]
    Truncated,
    /// An attribute the message must carry is absent.
    #[error("{what}: missing attribute {attr}")]
    MissingAttribute {
        /// The message or nest being decoded.
        what: &'static str,
        /// The attribute.
        attr: &'static str,
    },
    /// The message is well formed but is not the command that was expected.
    #[error("expected {expected}, got command {cmd}")]
    UnexpectedCommand {
        /// What the caller expected.
        expected: &'static str,
        /// The command number received.
        cmd: u8,
    },
    /// A nest is so large that it could not be encoded again (an attribute length is a `u16`).
    #[error("{0}: nest too large")]
    NestTooLarge(&'static str),
}
