//! A namespace for crash-and-restart tests of our daemon with the default notify flags: a veth
//! pair with both ends inside, no IPv6 link-local addresses (they would come after the daemon's
//! start and get endpoints of their own), and an administrator's endpoint the daemon must never
//! touch. Addresses are added and deleted as `/32` (`/128`) so that each stands alone.

use std::collections::BTreeMap;

use crate::{
    endpoints::{self, Entry},
    netns::NetNs,
    sysctl,
    veth::VethPair,
};

/// The administrator's endpoint (no address of the namespace): `id 50 signal`.
pub const FOREIGN: &str = "192.0.2.50";
const FOREIGN_ID: &str = "50";

/// The namespace and its two interfaces.
#[derive(Debug)]
pub struct RestartLab {
    // Fields drop in order: the pair before its namespace.
    _veth: VethPair,
    /// The namespace.
    pub ns: NetNs,
    /// The interfaces' names.
    pub devs: [&'static str; 2],
}

impl RestartLab {
    /// `PREFIX-PID-N` with the interfaces `rl0` and `rl1` up and the foreign endpoint.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let ns = NetNs::new(prefix)?;
        sysctl::set_in(&ns, "net.ipv6.conf.default.addr_gen_mode", "1")?;
        let devs = ["rl0", "rl1"];
        let veth = VethPair::new(devs[0], &ns, devs[1], &ns)?;
        ns.ip(&[
            "mptcp", "endpoint", "add", FOREIGN, "id", FOREIGN_ID, "signal",
        ])?;
        Ok(Self {
            _veth: veth,
            ns,
            devs,
        })
    }

    /// Adds `addr` on `dev`.
    pub fn add(&self, addr: &str, dev: &str) -> anyhow::Result<()> {
        self.address("add", addr, dev)
    }

    /// Deletes `addr` from `dev`.
    pub fn del(&self, addr: &str, dev: &str) -> anyhow::Result<()> {
        self.address("del", addr, dev)
    }

    fn address(&self, verb: &str, addr: &str, dev: &str) -> anyhow::Result<()> {
        let host = if addr.contains(':') { 128 } else { 32 };
        let cidr = format!("{addr}/{host}");
        let mut args = vec!["addr", verb, &cidr, "dev", dev];
        if verb == "add" && host == 128 {
            args.push("nodad");
        }
        self.ns.ip(&args).map(drop)
    }

    /// The endpoint table by id.
    pub fn endpoints(&self) -> anyhow::Result<BTreeMap<u8, Entry>> {
        endpoints::show_by_id(&self.ns)
    }

    /// Waits until the table, ids left out, is exactly `entries`; returns it by id.
    pub fn wait_for(&self, what: &str, entries: &[Entry]) -> anyhow::Result<BTreeMap<u8, Entry>> {
        let expected: endpoints::Table = entries.iter().cloned().collect();
        endpoints::wait_until(&self.ns, what, |table| *table == expected)?;
        self.endpoints()
    }
}

/// The daemon's endpoint for `addr` on `dev` (`--addr-flags subflow`).
#[must_use]
pub fn ours(addr: &str, dev: &str) -> Entry {
    Entry::new(addr, "subflow", Some(dev))
}

/// The administrator's endpoint.
#[must_use]
pub fn foreign() -> Entry {
    Entry::new(FOREIGN, "signal", None)
}
