//! Routing sanity: an address whose traffic has no route out through its own interface gets
//! subflows that never establish. The monitor looks once per address (traffic from it, through
//! the policy rules) and warns once, with the recipe that fixes it.

use std::net::IpAddr;

use super::model::LocalAddress;

/// Whether the address is one whose routing is worth checking: link-local and loopback
/// addresses never have a route out, and are not meant to.
#[must_use]
pub(crate) const fn worth_checking(address: &LocalAddress) -> bool {
    !address.is_link_local() && !address.is_host_or_loopback()
}

/// The warning for `addr` on `interface` when traffic from it cannot leave through it.
#[must_use]
pub(crate) fn unrouted_warning(addr: IpAddr, interface: &str) -> String {
    let (ip, gateway) = if addr.is_ipv4() {
        ("ip", "GATEWAY")
    } else {
        ("ip -6", "GATEWAY6")
    };
    format!(
        "{addr} on {interface}: no default route through {interface} for traffic from it: \
         subflows from it reach only its own link; route it by source, e.g. \
         `{ip} rule add from {addr} table 100` and \
         `{ip} route add default via {gateway} dev {interface} table 100`"
    )
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::{unrouted_warning, worth_checking};
    use crate::{AddressScope, LocalAddress};

    fn address(text: &str, scope: AddressScope) -> LocalAddress {
        LocalAddress {
            ifindex: 2,
            addr: text.parse::<IpAddr>().unwrap(),
            prefix_len: 24,
            scope,
            flags: 0,
        }
    }

    #[test]
    fn the_warning_names_the_address_the_interface_and_the_recipe() {
        let v4 = unrouted_warning("198.51.100.7".parse().unwrap(), "wlan0");
        assert_eq!(
            v4,
            "198.51.100.7 on wlan0: no default route through wlan0 for traffic from it: \
             subflows from it reach only its own link; route it by source, e.g. \
             `ip rule add from 198.51.100.7 table 100` and \
             `ip route add default via GATEWAY dev wlan0 table 100`"
        );
        let v6 = unrouted_warning("2001:db8::7".parse().unwrap(), "wwan0");
        assert!(
            v6.contains("`ip -6 rule add from 2001:db8::7 table 100`"),
            "{v6}"
        );
        assert_eq!(v6.lines().count(), 1);
    }

    #[test]
    fn link_local_and_loopback_addresses_are_not_checked() {
        assert!(worth_checking(&address(
            "198.51.100.7",
            AddressScope::Universe
        )));
        assert!(!worth_checking(&address("fe80::1", AddressScope::Link)));
        assert!(!worth_checking(&address(
            "169.254.1.1",
            AddressScope::Universe
        )));
        assert!(!worth_checking(&address("127.0.0.1", AddressScope::Host)));
    }
}
