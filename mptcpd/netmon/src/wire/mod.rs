//! The rtnetlink messages the monitor reads and sends, and only what it reads of them: pure
//! (no socket here), framed by netlink-packet-core.
//!
//! A general rtnetlink crate decodes every attribute of every link kind (bonds, VLANs, VXLAN,
//! statistics...), and parsing one link message makes all that code reachable: most of its
//! weight in the daemon. Here a message keeps its fixed header and the few attributes the
//! monitor uses; the others are skipped by their length. Decoding never panics: a truncated
//! or malformed message is a [`WireError`].

mod address;
mod attr;
mod error;
mod link;
mod route;

#[cfg(test)]
mod tests;

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkPayload, NetlinkSerializable,
};

pub use address::Address;
pub use error::WireError;
pub use link::Link;
pub use route::{NextHop, RTM_F_FIB_MATCH, RTM_F_LOOKUP_TABLE, Route};

/// `RTM_*` message types (linux/rtnetlink.h).
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_DELLINK`.
pub const RTM_DELLINK: u16 = 17;
/// `RTM_GETLINK`.
pub const RTM_GETLINK: u16 = 18;
/// `RTM_NEWADDR`.
pub const RTM_NEWADDR: u16 = 20;
/// `RTM_DELADDR`.
pub const RTM_DELADDR: u16 = 21;
/// `RTM_GETADDR`.
pub const RTM_GETADDR: u16 = 22;
/// `RTM_NEWROUTE`.
pub const RTM_NEWROUTE: u16 = 24;
/// `RTM_DELROUTE`.
pub const RTM_DELROUTE: u16 = 25;
/// `RTM_GETROUTE`.
pub const RTM_GETROUTE: u16 = 26;

/// `AF_UNSPEC`: the family of an interface's link messages.
pub const AF_UNSPEC: u8 = 0;
/// `AF_INET`.
pub const AF_INET: u8 = 2;
/// `AF_BRIDGE`: a bridge port's link messages.
pub const AF_BRIDGE: u8 = 7;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;

/// An rtnetlink message, by its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtMessage {
    /// `RTM_NEWLINK`: a link appeared or changed, or a dump entry.
    NewLink(Link),
    /// `RTM_DELLINK`.
    DelLink(Link),
    /// `RTM_GETLINK`: a request (a dump, from the monitor).
    GetLink(Link),
    /// `RTM_NEWADDR`: an address appeared or changed, or a dump entry.
    NewAddress(Address),
    /// `RTM_DELADDR`.
    DelAddress(Address),
    /// `RTM_GETADDR`: a request (a dump, from the monitor).
    GetAddress(Address),
    /// `RTM_NEWROUTE`: a route appeared or changed, or a lookup's answer.
    NewRoute(Route),
    /// `RTM_DELROUTE`.
    DelRoute(Route),
    /// `RTM_GETROUTE`: a request (a lookup, from the monitor).
    GetRoute(Route),
    /// Another type (neighbours, rules, ...): its body is not read, and sent empty.
    Other(u16),
}

impl NetlinkSerializable for RtMessage {
    fn message_type(&self) -> u16 {
        match self {
            Self::NewLink(_) => RTM_NEWLINK,
            Self::DelLink(_) => RTM_DELLINK,
            Self::GetLink(_) => RTM_GETLINK,
            Self::NewAddress(_) => RTM_NEWADDR,
            Self::DelAddress(_) => RTM_DELADDR,
            Self::GetAddress(_) => RTM_GETADDR,
            Self::NewRoute(_) => RTM_NEWROUTE,
            Self::DelRoute(_) => RTM_DELROUTE,
            Self::GetRoute(_) => RTM_GETROUTE,
            Self::Other(kind) => *kind,
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            Self::NewLink(link) | Self::DelLink(link) | Self::GetLink(link) => link.buffer_len(),
            Self::NewAddress(address) | Self::DelAddress(address) | Self::GetAddress(address) => {
                address.buffer_len()
            }
            Self::NewRoute(route) | Self::DelRoute(route) | Self::GetRoute(route) => {
                route.buffer_len()
            }
            Self::Other(_) => 0,
        }
    }

    fn serialize(&self, buffer: &mut [u8]) {
        match self {
            Self::NewLink(link) | Self::DelLink(link) | Self::GetLink(link) => link.emit(buffer),
            Self::NewAddress(address) | Self::DelAddress(address) | Self::GetAddress(address) => {
                address.emit(buffer);
            }
            Self::NewRoute(route) | Self::DelRoute(route) | Self::GetRoute(route) => {
                route.emit(buffer);
            }
            Self::Other(_) => {}
        }
    }
}

impl NetlinkDeserializable for RtMessage {
    type Error = WireError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, WireError> {
        Ok(match header.message_type {
            RTM_NEWLINK => Self::NewLink(Link::parse(payload)?),
            RTM_DELLINK => Self::DelLink(Link::parse(payload)?),
            RTM_GETLINK => Self::GetLink(Link::parse(payload)?),
            RTM_NEWADDR => Self::NewAddress(Address::parse(payload)?),
            RTM_DELADDR => Self::DelAddress(Address::parse(payload)?),
            RTM_GETADDR => Self::GetAddress(Address::parse(payload)?),
            RTM_NEWROUTE => Self::NewRoute(Route::parse(payload)?),
            RTM_DELROUTE => Self::DelRoute(Route::parse(payload)?),
            RTM_GETROUTE => Self::GetRoute(Route::parse(payload)?),
            other => Self::Other(other),
        })
    }
}

impl From<RtMessage> for NetlinkPayload<RtMessage> {
    fn from(message: RtMessage) -> Self {
        Self::InnerMessage(message)
    }
}

/// The host-order `u32` at `at` in a fixed header that holds it.
fn u32_at(header: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&header[at..at + 4]);
    u32::from_ne_bytes(word)
}
