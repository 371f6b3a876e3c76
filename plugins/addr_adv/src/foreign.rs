//! Endpoints another tool manages (`NetworkManager` 1.40+ adds a `subflow` endpoint per
//! address by itself): an address whose endpoint is another tool's is left to that tool.
//!
//! The kernel holds one endpoint per address (it refuses a second with `EEXIST`), so the
//! first to add one wins: the daemon never removes or replaces another tool's endpoint, and
//! another tool's add after ours is refused by the kernel (that tool's to report). The
//! kernel tells nobody when an endpoint goes, so while an address is left to another tool
//! the plugin looks again on every tick, and manages the address again once that endpoint
//! is gone while the address stays.

use std::{collections::BTreeMap, net::IpAddr};

use mptcpd_plugin::{Endpoint, EndpointFlags};

/// Another tool's endpoint for `addr` in the kernel's table `kernel`: not ours (`owned`),
/// not one the kernel made implicitly (those the daemon takes over), no port.
pub(crate) fn find(kernel: &[Endpoint], owned: &[Endpoint], addr: IpAddr) -> Option<Endpoint> {
    kernel.iter().copied().find(|e| {
        e.addr == addr
            && e.port.is_none()
            && !e.flags.contains(EndpointFlags::IMPLICIT)
            && !owned.iter().any(|o| o.id == e.id)
    })
}

/// The addresses left to another tool, with that tool's endpoint as last seen.
#[derive(Debug, Default)]
pub(crate) struct Foreign {
    by_addr: BTreeMap<IpAddr, Endpoint>,
}

impl Foreign {
    /// Records `theirs`; true when the address was not already left to another tool (the
    /// caller says so in the log, once).
    pub(crate) fn insert(&mut self, theirs: Endpoint) -> bool {
        self.by_addr.insert(theirs.addr, theirs).is_none()
    }

    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        self.by_addr.contains_key(&addr)
    }

    pub(crate) fn remove(&mut self, addr: IpAddr) {
        self.by_addr.remove(&addr);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// Checks each address against the kernel's table: the endpoint as now seen is kept
    /// (another tool may have re-added it under another id); returns the addresses whose
    /// foreign endpoint is gone (forgotten here).
    pub(crate) fn gone(&mut self, kernel: &[Endpoint], owned: &[Endpoint]) -> Vec<IpAddr> {
        let mut gone = Vec::new();
        self.by_addr.retain(|&addr, seen| {
            find(kernel, owned, addr).map_or_else(
                || {
                    gone.push(addr);
                    false
                },
                |now| {
                    *seen = now;
                    true
                },
            )
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use mptcpd_plugin::{Endpoint, EndpointFlags};

    use super::{Foreign, find};

    fn at(id: u8, addr: [u8; 4], flags: EndpointFlags) -> Endpoint {
        Endpoint {
            id,
            addr: IpAddr::from(addr),
            port: None,
            flags,
            if_idx: Some(3),
        }
    }

    #[test]
    fn only_another_tools_endpoint_for_the_address_is_foreign() {
        let addr = IpAddr::from([192, 0, 2, 1]);
        let nm = at(4, [192, 0, 2, 1], EndpointFlags::SUBFLOW);
        let other = at(5, [192, 0, 2, 9], EndpointFlags::SUBFLOW);
        assert_eq!(find(&[other, nm], &[], addr), Some(nm));
        assert_eq!(find(&[nm], &[nm], addr), None, "ours");
        let implicit = at(4, [192, 0, 2, 1], EndpointFlags::IMPLICIT);
        assert_eq!(
            find(&[implicit], &[], addr),
            None,
            "the kernel's to hand over"
        );
        let with_port = Endpoint {
            port: Some(4000),
            ..nm
        };
        assert_eq!(find(&[with_port], &[], addr), None, "another endpoint kind");
    }

    #[test]
    fn a_foreign_endpoint_is_followed_until_it_goes() {
        let mut foreign = Foreign::default();
        let nm = at(4, [192, 0, 2, 1], EndpointFlags::SUBFLOW);
        assert!(foreign.insert(nm), "new: said once");
        assert!(!foreign.insert(nm), "known: not said again");
        let again = Endpoint { id: 6, ..nm };
        assert!(
            foreign.gone(&[again], &[]).is_empty(),
            "re-added under another id"
        );
        assert_eq!(foreign.gone(&[], &[]), [nm.addr]);
        assert!(foreign.is_empty());
    }
}
