//! The part of the address policy that plugins adding endpoints apply (`addr_adv`): flags per
//! interface, and which addresses win when more qualify than the kernel's 8 endpoints. Which
//! interfaces and addresses qualify at all is the network monitor's filter
//! ([`mptcpd_netmon::AddressFilter`]): plugins never hear of the others.

use std::net::IpAddr;

use mptcpd_netmon::{Family, InterfacePattern};

use crate::EndpointFlags;

/// Endpoint flags per interface and the ranking under the endpoint limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// `[interface PATTERN]` sections' `flags=`, in file order: the first pattern that matches
    /// an interface's name gives its endpoints' flags; no match: `addr-flags`.
    pub interface_flags: Vec<(InterfacePattern, EndpointFlags)>,
    /// `interfaces=`: an address on an interface matching an earlier pattern wins over one on a
    /// later pattern (and over one that matches none).
    pub interface_order: Vec<InterfacePattern>,
    /// `prefer-family=`: between addresses the interface order does not tell apart, this
    /// family wins.
    pub prefer_family: Option<Family>,
}

/// Where an address stands under the endpoint limit: lower wins; equal ranks never displace
/// each other (first come, first served, as without a policy).
pub type Rank = (usize, u8);

impl EndpointPolicy {
    /// The flags of an endpoint on the interface called `name`; `default` (`addr-flags`) when
    /// no `[interface]` section matches.
    #[must_use]
    pub fn flags_for(&self, name: &str, default: EndpointFlags) -> EndpointFlags {
        self.interface_flags
            .iter()
            .find(|(pattern, _)| pattern.matches(name))
            .map_or(default, |(_, flags)| *flags)
    }

    /// The rank of `addr` on the interface called `name`.
    #[must_use]
    pub fn rank(&self, name: &str, addr: IpAddr) -> Rank {
        let interface = self
            .interface_order
            .iter()
            .position(|pattern| pattern.matches(name))
            .unwrap_or(self.interface_order.len());
        let family = match (self.prefer_family, addr) {
            (Some(Family::V4), IpAddr::V6(_)) | (Some(Family::V6), IpAddr::V4(_)) => 1,
            _ => 0,
        };
        (interface, family)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use mptcpd_netmon::{Family, parse_list};

    use super::EndpointPolicy;
    use crate::EndpointFlags;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_first_matching_section_gives_the_flags_else_addr_flags() {
        let policy = EndpointPolicy {
            interface_flags: vec![
                (
                    "wwan*".parse().unwrap(),
                    EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
                ),
                (
                    "eth0".parse().unwrap(),
                    EndpointFlags::SUBFLOW | EndpointFlags::SIGNAL,
                ),
                ("*".parse().unwrap(), EndpointFlags::SIGNAL),
            ],
            ..EndpointPolicy::default()
        };
        let default = EndpointFlags::SUBFLOW;
        assert_eq!(
            policy.flags_for("wwan0", default),
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP
        );
        assert_eq!(
            policy.flags_for("eth0", default),
            EndpointFlags::SUBFLOW | EndpointFlags::SIGNAL
        );
        assert_eq!(policy.flags_for("eth1", default), EndpointFlags::SIGNAL);
        assert_eq!(
            EndpointPolicy::default().flags_for("wwan0", default),
            default
        );
    }

    #[test]
    fn interface_order_then_family_ranks_addresses() {
        let policy = EndpointPolicy {
            interface_order: parse_list("eth*,wlan0").unwrap(),
            prefer_family: Some(Family::V6),
            ..EndpointPolicy::default()
        };
        let eth_v6 = policy.rank("eth1", ip("2001:db8::1"));
        let eth_v4 = policy.rank("eth1", ip("192.0.2.1"));
        let wlan_v6 = policy.rank("wlan0", ip("2001:db8::2"));
        let other_v6 = policy.rank("wwan0", ip("2001:db8::3"));
        assert!(eth_v6 < eth_v4, "family decides within an interface");
        assert!(eth_v4 < wlan_v6, "the interface order comes first");
        assert!(wlan_v6 < other_v6, "unlisted interfaces come last");
        let none = EndpointPolicy::default();
        assert_eq!(
            none.rank("eth0", ip("192.0.2.1")),
            none.rank("wwan0", ip("2001:db8::1")),
            "no policy: all equal"
        );
    }
}
