//! The `mptcp_pm` generic-netlink wire format, apart from any I/O: commands, replies, events,
//! attributes, with the kernel's byte orders (uapi `linux/mptcp_pm.h`, `linux/mptcp.h`).
//!
//! Two levels: wire messages ([`PmMessage`], [`PmEvent`]) keep every attribute in order, unknown
//! ones included, so that what is parsed encodes back to the same bytes; typed values
//! ([`Request`] here; [`crate::Endpoint`], [`crate::Limits`], [`crate::Event`] at the crate's
//! root) are what the daemon works with. Decoding never panics: malformed input is a
//! [`WireError`].

mod attr;
mod command;
mod ctrl;
mod error;
mod event;
mod message;
mod nlmsg;
mod request;

#[cfg(test)]
pub(crate) mod tests;

pub(crate) use attr::AF_INET6;
pub use attr::{AddrAttr, Address, PmAttr};
pub use command::PmCmd;
pub use ctrl::{Family, McastGroup, Op, get_family_request};
pub use error::WireError;
pub use event::{EventAttr, EventKind, PmEvent};
pub use message::PmMessage;
pub use nlmsg::{
    Frame, FrameKind, Frames, KernelError, decode_genl, decode_message, encode_request, frames,
};
pub use request::Request;

/// `MPTCP_PM_NAME`.
pub const FAMILY_NAME: &str = "mptcp_pm";
/// `MPTCP_PM_VER`: the genl header version of requests.
pub const FAMILY_VERSION: u8 = 1;
/// `MPTCP_PM_EV_GRP_NAME`: the multicast group of events (joining needs `CAP_NET_ADMIN`).
pub const EVENTS_GROUP: &str = "mptcp_pm_events";
/// `MPTCP_PM_CMD_GRP_NAME`: a legacy group nothing is sent to.
pub const CMDS_GROUP: &str = "mptcp_pm_cmds";
