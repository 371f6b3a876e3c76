//! A namespace for crash-and-restart tests of our daemon with the default notify flags: a veth
//! pair with both ends inside, no IPv6 link-local addresses (they would come after the daemon's
//! start and get endpoints of their own), and an administrator's endpoint the daemon must never
//! touch. Addresses are added and deleted as `/32` (`/128`) so that each stands alone.

use std::{collections::BTreeMap, io::Write as _};

use crate::{
    kernel_pm::endpoints::{self, Entry},
    net::{netns::NetNs, sysctl, veth::VethPair},
};

/// The administrator's endpoint (no address of the namespace): `id 50 signal`.
pub const FOREIGN: &str = "192.0.2.50";
const FOREIGN_ID: &str = "50";

/// An address added on or deleted from an interface: `(address, device)`.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// `ip addr add ADDR/32 dev DEV` (`/128 nodad` for IPv6).
    Add(&'a str, &'a str),
    /// `ip addr del ADDR/32 dev DEV`.
    Del(&'a str, &'a str),
}

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
        self.change(&[Change::Add(addr, dev)])
    }

    /// Deletes `addr` from `dev`.
    pub fn del(&self, addr: &str, dev: &str) -> anyhow::Result<()> {
        self.change(&[Change::Del(addr, dev)])
    }

    /// Makes `changes` in one `ip -batch` run: they come faster than a daemon follows.
    pub fn change(&self, changes: &[Change<'_>]) -> anyhow::Result<()> {
        let mut batch = tempfile::NamedTempFile::new()?;
        for change in changes {
            let (verb, addr, dev) = match *change {
                Change::Add(addr, dev) => ("add", addr, dev),
                Change::Del(addr, dev) => ("del", addr, dev),
            };
            let (host, nodad) = if addr.contains(':') {
                (128, if verb == "add" { " nodad" } else { "" })
            } else {
                (32, "")
            };
            writeln!(batch, "addr {verb} {addr}/{host} dev {dev}{nodad}")?;
        }
        batch.flush()?;
        let path = batch.path().to_string_lossy().into_owned();
        self.ns.ip(&["-batch", &path]).map(drop)
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
