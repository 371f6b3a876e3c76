//! Interface names for the per-path labels: by the index the kernel gave a joined subflow,
//! else by the interface that holds the local address (the initial subflow's event names no
//! interface).

use std::{collections::HashMap, net::IpAddr};

use nix::{ifaddrs::getifaddrs, net::if_::if_indextoname};

/// Names looked up during one scrape; the address list is read once, when first needed.
#[derive(Debug, Default)]
pub(crate) struct Interfaces {
    by_address: Option<HashMap<IpAddr, String>>,
}

impl Interfaces {
    /// The name of interface `index`, else of the interface with `address`; empty if neither
    /// is known (the interface went meanwhile).
    pub(crate) fn name(&mut self, index: Option<u32>, address: IpAddr) -> String {
        if let Some(name) = index.and_then(|i| if_indextoname(i).ok()) {
            return name.to_string_lossy().into_owned();
        }
        self.by_address
            .get_or_insert_with(addresses)
            .get(&address)
            .cloned()
            .unwrap_or_default()
    }
}

/// The namespace's addresses and their interfaces (the first, for an address on several).
fn addresses() -> HashMap<IpAddr, String> {
    let mut map = HashMap::new();
    let Ok(all) = getifaddrs() else {
        return map;
    };
    for entry in all {
        let Some(address) = entry.address else {
            continue;
        };
        let ip = if let Some(v4) = address.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = address.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        map.entry(ip).or_insert(entry.interface_name);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::Interfaces;

    #[test]
    fn loopback_is_named_by_index_and_by_address() {
        let mut names = Interfaces::default();
        assert_eq!(names.name(Some(1), "192.0.2.99".parse().unwrap()), "lo");
        assert_eq!(names.name(None, "127.0.0.1".parse().unwrap()), "lo");
        assert_eq!(names.name(None, "192.0.2.99".parse().unwrap()), "");
    }
}
