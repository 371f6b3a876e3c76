//! Why an rtnetlink message could not be decoded.

use netlink_packet_core::DecodeError;

/// A truncated or malformed rtnetlink message. The monitor skips such a message (netlink-proto
/// logs it); attributes it does not read are never checked beyond their framing.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The body is shorter than the fixed header of its kind.
    #[error("{what} of {len} bytes, shorter than its {need}-byte header")]
    Truncated {
        /// `ifinfomsg`, `ifaddrmsg` or `rtmsg`.
        what: &'static str,
        /// The header's size.
        need: usize,
        /// The body's size.
        len: usize,
    },
    /// An attribute's length runs past the message or below its own header.
    #[error("malformed attribute")]
    Framing(#[source] DecodeError),
    /// An attribute the monitor reads has a value of the wrong size or content.
    #[error("attribute {kind} of {what}: malformed value of {len} bytes")]
    Value {
        /// The message kind, as in [`WireError::Truncated`].
        what: &'static str,
        /// The attribute type.
        kind: u16,
        /// The value's size.
        len: usize,
    },
}
