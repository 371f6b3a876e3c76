//! rtnetlink messages to state-machine inputs, and the default-route lookup on the wire.
//! Pure: no socket here. Whatever is partial or of another kind is skipped with a debug log.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtnetlink::packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressMessage},
    link::{LinkAttribute, LinkMessage},
    route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage},
};
use tracing::debug;

use super::{
    model::{Family, Interface, LocalAddress},
    state::{Input, RouteCheck},
};

/// What the default-route lookup asks the way to (RFC 5737 TEST-NET-1), as the C daemon does.
/// A documentation address is never a real destination, so the route found is the default one;
/// a host that numbers its links from these ranges finds its on-link route instead.
pub(super) const PROBE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The IPv6 lookup target (RFC 3849 documentation prefix), as the C daemon does.
pub(super) const PROBE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0);

/// The input a notification stands for, if the monitor cares about it.
#[must_use]
pub fn input(message: &RouteNetlinkMessage) -> Option<Input> {
    match message {
        RouteNetlinkMessage::NewLink(link_msg) => link(link_msg).map(Input::NewLink),
        RouteNetlinkMessage::DelLink(link_msg) => {
            link_index(link_msg).map(|index| Input::DelLink { index })
        }
        RouteNetlinkMessage::NewAddress(addr_msg) => address(addr_msg).map(Input::NewAddress),
        RouteNetlinkMessage::DelAddress(addr_msg) => address(addr_msg).map(Input::DelAddress),
        RouteNetlinkMessage::NewRoute(route_msg) | RouteNetlinkMessage::DelRoute(route_msg) => {
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
fn link_index(message: &LinkMessage) -> Option<u32> {
    let header = &message.header;
    if header.interface_family != AddressFamily::Unspec {
        debug!(family = ?header.interface_family, index = header.index, "link message of another family ignored");
        return None;
    }
    if header.index == 0 {
        debug!("link message without an index ignored");
        return None;
    }
    Some(header.index)
}

/// An `RTM_NEWLINK` (notification or dump entry) as an [`Interface`].
pub(super) fn link(message: &LinkMessage) -> Option<Interface> {
    let index = link_index(message)?;
    let mut name = None;
    let mut oper_state = None;
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::OperState(state) => oper_state = Some(u8::from(*state).into()),
            _ => {}
        }
    }
    let Some(name) = name else {
        debug!(index, "link message without a name ignored");
        return None;
    };
    Some(Interface {
        index,
        name,
        flags: message.header.flags.bits(),
        oper_state: oper_state.unwrap_or_default(),
        link_type: message.header.link_layer_type.into(),
    })
}

/// An `RTM_NEWADDR` or `RTM_DELADDR` for an IP address as a [`LocalAddress`].
pub(super) fn address(message: &AddressMessage) -> Option<LocalAddress> {
    let header = &message.header;
    let max_prefix = match header.family {
        AddressFamily::Inet => 32,
        AddressFamily::Inet6 => 128,
        other => {
            debug!(family = ?other, "address of another family ignored");
            return None;
        }
    };
    let mut local = None;
    let mut peer = None;
    let mut flags = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(addr) => local = Some(*addr),
            AddressAttribute::Address(addr) => peer = Some(*addr),
            AddressAttribute::Flags(f) => flags = Some(f.bits()),
            _ => {}
        }
    }
    // On point-to-point links IFA_ADDRESS is the peer's; IFA_LOCAL is ours when present.
    let Some(addr) = local.or(peer) else {
        debug!(
            index = header.index,
            "address message without an address ignored"
        );
        return None;
    };
    let family_matches = match addr {
        IpAddr::V4(_) => header.family == AddressFamily::Inet,
        IpAddr::V6(_) => header.family == AddressFamily::Inet6,
    };
    if !family_matches || header.prefix_len > max_prefix || header.index == 0 {
        debug!(%addr, prefix = header.prefix_len, index = header.index, "malformed address message ignored");
        return None;
    }
    Some(LocalAddress {
        ifindex: header.index,
        addr,
        prefix_len: header.prefix_len,
        scope: u8::from(header.scope).into(),
        // IFA_FLAGS holds all 32 bits; the header's byte only the low 8 (old kernels).
        flags: flags.unwrap_or_else(|| u32::from(header.flags.bits())),
    })
}

/// The family whose default-route lookups a route change could alter: only routes whose
/// prefix holds the probe address can be what the lookup finds.
pub(super) fn route_change(message: &RouteMessage) -> Option<Family> {
    let header = &message.header;
    let (family, probe) = match header.address_family {
        AddressFamily::Inet => (Family::V4, IpAddr::V4(PROBE_V4)),
        AddressFamily::Inet6 => (Family::V6, IpAddr::V6(PROBE_V6)),
        _ => return None,
    };
    let prefix_len = header.destination_prefix_length;
    if prefix_len == 0 {
        return Some(family);
    }
    let destination = message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
            RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
            _ => None,
        })?;
    prefix_contains(destination, prefix_len, probe).then_some(family)
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
pub(super) fn route_lookup(check: &RouteCheck) -> RouteMessage {
    let (family, probe, len) = match check.addr {
        IpAddr::V4(_) => (AddressFamily::Inet, IpAddr::V4(PROBE_V4), 32),
        IpAddr::V6(_) => (AddressFamily::Inet6, IpAddr::V6(PROBE_V6), 128),
    };
    let mut message = RouteMessage::default();
    message.header.address_family = family;
    message.header.destination_prefix_length = len;
    // The matching FIB entry itself (so a default route shows as one), looked up through
    // the policy rules.
    message.header.flags = RouteFlags::LookupTable | RouteFlags::FibMatch;
    message.attributes = vec![
        RouteAttribute::Destination(probe.into()),
        RouteAttribute::Oif(check.ifindex),
    ];
    message
}

/// The routing-sanity lookup: [`route_lookup`] for traffic *from* the address, so that the
/// rules that select a table by source (`ip rule add from ADDR table N`) apply as they will to
/// its subflows.
pub(super) fn source_route_lookup(check: &RouteCheck) -> RouteMessage {
    let mut message = route_lookup(check);
    message.header.source_prefix_length = if check.addr.is_ipv4() { 32 } else { 128 };
    message
        .attributes
        .push(RouteAttribute::Source(check.addr.into()));
    message
}

/// Whether the lookup's answer is a default route (no destination) that leaves through
/// `ifindex`, directly or as one of its multipath next hops.
#[must_use]
pub fn leaves_through(reply: &RouteMessage, ifindex: u32) -> bool {
    if reply.header.destination_prefix_length != 0 {
        return false;
    }
    let mut via = false;
    for attribute in &reply.attributes {
        match attribute {
            RouteAttribute::Destination(_) => return false,
            RouteAttribute::Oif(oif) => via |= *oif == ifindex,
            RouteAttribute::MultiPath(hops) => {
                via |= hops.iter().any(|hop| hop.interface_index == ifindex);
            }
            _ => {}
        }
    }
    via
}

#[cfg(test)]
mod tests;
