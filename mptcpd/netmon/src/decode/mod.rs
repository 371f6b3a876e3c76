//! rtnetlink messages to state-machine inputs, and the default-route lookup on the wire.
//! Pure: no socket here. Whatever is partial or of another kind is skipped with a debug log.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::NetlinkSerializable as _;
use tracing::debug;

use super::{
    model::{Family, Interface, LocalAddress},
    state::{Input, RouteCheck},
    wire::{
        AF_INET, AF_INET6, AF_UNSPEC, Address, Link, RTM_F_FIB_MATCH, RTM_F_LOOKUP_TABLE, Route,
        RtMessage,
    },
};

/// What the default-route lookup asks the way to (RFC 5737 TEST-NET-1), as the C daemon does.
/// A documentation address is never a real destination, so the route found is the default one;
/// a host that numbers its links from these ranges finds its on-link route instead.
pub(super) const PROBE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The IPv6 lookup target (RFC 3849 documentation prefix), as the C daemon does.
pub(super) const PROBE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0);

/// The input a notification stands for, if the monitor cares about it.
#[must_use]
pub fn input(message: &RtMessage) -> Option<Input> {
    match message {
        RtMessage::NewLink(link_msg) => link(link_msg).map(Input::NewLink),
        RtMessage::DelLink(link_msg) => link_index(link_msg).map(|index| Input::DelLink { index }),
        RtMessage::NewAddress(addr_msg) => address(addr_msg).map(Input::NewAddress),
        RtMessage::DelAddress(addr_msg) => address(addr_msg).map(Input::DelAddress),
        RtMessage::NewRoute(route_msg) | RtMessage::DelRoute(route_msg) => {
            route_change(route_msg).map(Input::RoutesChanged)
        }
        other => {
            debug!(kind = other.message_type(), "rtnetlink message ignored");
            None
        }
    }
}

/// The index of a link message for an interface (not a bridge port's `AF_BRIDGE` message,
/// which comes on the same group and whose `RTM_DELLINK` does not delete the interface).
fn link_index(message: &Link) -> Option<u32> {
    if message.family != AF_UNSPEC {
        debug!(
            family = message.family,
            index = message.index,
            "link message of another family ignored"
        );
        return None;
    }
    if message.index == 0 {
        debug!("link message without an index ignored");
        return None;
    }
    Some(message.index)
}

/// An `RTM_NEWLINK` (notification or dump entry) as an [`Interface`].
pub(super) fn link(message: &Link) -> Option<Interface> {
    let index = link_index(message)?;
    let Some(name) = message.name.clone() else {
        debug!(index, "link message without a name ignored");
        return None;
    };
    Some(Interface {
        index,
        name,
        flags: message.flags,
        oper_state: message.oper_state.map(Into::into).unwrap_or_default(),
        link_type: message.link_type,
    })
}

/// An `RTM_NEWADDR` or `RTM_DELADDR` for an IP address as a [`LocalAddress`].
pub(super) fn address(message: &Address) -> Option<LocalAddress> {
    let max_prefix = match message.family {
        AF_INET => 32,
        AF_INET6 => 128,
        other => {
            debug!(family = other, "address of another family ignored");
            return None;
        }
    };
    // On point-to-point links IFA_ADDRESS is the peer's; IFA_LOCAL is ours when present.
    let Some(addr) = message.local.or(message.address) else {
        debug!(
            index = message.index,
            "address message without an address ignored"
        );
        return None;
    };
    let family_matches = match addr {
        IpAddr::V4(_) => message.family == AF_INET,
        IpAddr::V6(_) => message.family == AF_INET6,
    };
    if !family_matches || message.prefix_len > max_prefix || message.index == 0 {
        debug!(%addr, prefix = message.prefix_len, index = message.index, "malformed address message ignored");
        return None;
    }
    Some(LocalAddress {
        ifindex: message.index,
        addr,
        prefix_len: message.prefix_len,
        scope: message.scope.into(),
        // IFA_FLAGS holds all 32 bits; the header's byte only the low 8 (old kernels).
        flags: message
            .flags
            .unwrap_or_else(|| u32::from(message.header_flags)),
    })
}

/// The family whose default-route lookups a route change could alter: only routes whose
/// prefix holds the probe address can be what the lookup finds.
pub(super) fn route_change(message: &Route) -> Option<Family> {
    let (family, probe) = match message.family {
        AF_INET => (Family::V4, IpAddr::V4(PROBE_V4)),
        AF_INET6 => (Family::V6, IpAddr::V6(PROBE_V6)),
        _ => return None,
    };
    if message.dst_len == 0 {
        return Some(family);
    }
    prefix_contains(message.destination?, message.dst_len, probe).then_some(family)
}

/// Whether `addr` lies in `prefix/len` (false across families).
fn prefix_contains(prefix: IpAddr, len: u8, addr: IpAddr) -> bool {
    match (prefix, addr) {
        (IpAddr::V4(prefix), IpAddr::V4(addr)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            (u32::from(prefix) ^ u32::from(addr)) & mask == 0
        }
        (IpAddr::V6(prefix), IpAddr::V6(addr)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            (u128::from(prefix) ^ u128::from(addr)) & mask == 0
        }
        _ => false,
    }
}

/// The C daemon's `RTM_GETROUTE`: the route the FIB would use to reach the probe address,
/// constrained to leave through `check.ifindex`.
pub(super) fn route_lookup(check: &RouteCheck) -> Route {
    let (family, probe, len) = match check.addr {
        IpAddr::V4(_) => (AF_INET, IpAddr::V4(PROBE_V4), 32),
        IpAddr::V6(_) => (AF_INET6, IpAddr::V6(PROBE_V6), 128),
    };
    Route {
        family,
        dst_len: len,
        // The matching FIB entry itself (so a default route shows as one), looked up through
        // the policy rules.
        flags: RTM_F_LOOKUP_TABLE | RTM_F_FIB_MATCH,
        destination: Some(probe),
        oif: Some(check.ifindex),
        ..Route::default()
    }
}

/// The routing-sanity lookup: [`route_lookup`] for traffic *from* the address, so that the
/// rules that select a table by source (`ip rule add from ADDR table N`) apply as they will to
/// its subflows.
pub(super) fn source_route_lookup(check: &RouteCheck) -> Route {
    Route {
        src_len: if check.addr.is_ipv4() { 32 } else { 128 },
        source: Some(check.addr),
        ..route_lookup(check)
    }
}

/// Whether the lookup's answer is a default route (no destination) that leaves through
/// `ifindex`, directly or as one of its multipath next hops.
#[must_use]
pub fn leaves_through(reply: &Route, ifindex: u32) -> bool {
    if reply.dst_len != 0 || reply.destination.is_some() {
        return false;
    }
    reply.oif == Some(ifindex) || reply.multipath.iter().any(|hop| hop.ifindex == ifindex)
}

#[cfg(test)]
mod tests;
