//! veth pairs and addresses, removed on drop.

use crate::net::netns::NetNs;

/// A veth pair with one end in each of two namespaces (or both in one).
#[derive(Debug)]
pub struct VethPair {
    netns: String,
    name: String,
}

impl VethPair {
    /// `ip link add A netns NS_A type veth peer name B netns NS_B`, both ends up.
    pub fn new(a: &str, a_ns: &NetNs, b: &str, b_ns: &NetNs) -> anyhow::Result<Self> {
        crate::net::ip::ip(&[
            "link",
            "add",
            a,
            "netns",
            a_ns.name(),
            "type",
            "veth",
            "peer",
            "name",
            b,
            "netns",
            b_ns.name(),
        ])?;
        let pair = Self {
            netns: a_ns.name().to_owned(),
            name: a.to_owned(),
        };
        a_ns.ip(&["link", "set", a, "up"])?;
        b_ns.ip(&["link", "set", b, "up"])?;
        Ok(pair)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting one end deletes both.
        if let Err(e) = crate::net::ip::ip_in(&self.netns, &["link", "del", &self.name]) {
            eprintln!("harness: could not delete veth {}: {e:#}", self.name);
        }
    }
}

/// An address on a link, deleted on drop.
#[derive(Debug)]
pub struct Address {
    netns: String,
    dev: String,
    cidr: String,
}

impl Address {
    /// `ip -n NS addr add CIDR dev DEV` (IPv6 without duplicate address detection, so it is
    /// usable at once).
    pub fn add(netns: &NetNs, dev: &str, cidr: &str) -> anyhow::Result<Self> {
        let mut args = vec!["addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        netns.ip(&args)?;
        Ok(Self {
            netns: netns.name().to_owned(),
            dev: dev.to_owned(),
            cidr: cidr.to_owned(),
        })
    }
}

impl Drop for Address {
    fn drop(&mut self) {
        if let Err(e) =
            crate::net::ip::ip_in(&self.netns, &["addr", "del", &self.cidr, "dev", &self.dev])
        {
            eprintln!("harness: could not delete address {}: {e:#}", self.cidr);
        }
    }
}
