//! The ID manager: local address to MPTCP address id, 1..=255, lowest free first.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

/// Address ids, one per IP address (ports play no part; IPv6 scope ids are not part of an
/// `IpAddr`). 0 is never given out: the kernel uses it for the initial subflow's address.
///
/// The kernel's endpoints are the truth: other tools (`ip mptcp endpoint add` without an id)
/// and the kernel itself (implicit endpoints) take ids nobody tells the daemon about, so the
/// manager is rebuilt from every dump ([`Self::sync`]) and never assumes it knows every id.
#[derive(Debug, Clone, Default)]
pub struct IdManager {
    by_addr: HashMap<IpAddr, u8>,
    /// Ids given to addresses (the values of `by_addr`).
    used: IdSet,
    /// Ids other endpoints held at the last sync: never given out.
    held: IdSet,
    /// Addresses whose id an endpoint held at the last sync.
    synced: HashSet<IpAddr>,
}

impl IdManager {
    /// An empty manager.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The address's id, else the lowest free one; `None` when 1..=255 are all taken.
    pub fn get_id(&mut self, addr: IpAddr) -> Option<u8> {
        if let Some(&id) = self.by_addr.get(&addr) {
            return Some(id);
        }
        let id = (1..=u8::MAX).find(|&id| !self.used.contains(id) && !self.held.contains(id))?;
        self.used.set(id, true);
        self.by_addr.insert(addr, id);
        Some(id)
    }

    /// The address's id, without giving it one.
    #[must_use]
    pub fn id_of(&self, addr: IpAddr) -> Option<u8> {
        self.by_addr.get(&addr).copied()
    }

    /// Forces `addr` to `id`: a previous id of `addr` is freed and another address holding
    /// `id` loses it. Id 0 is ignored.
    pub fn map_id(&mut self, addr: IpAddr, id: u8) {
        if id == 0 {
            return;
        }
        self.remove_id(addr);
        if let Some(other) = self.addr_of(id) {
            self.by_addr.remove(&other);
        }
        self.held.set(id, false);
        self.used.set(id, true);
        self.by_addr.insert(addr, id);
    }

    /// Rebuilds the manager from the kernel's endpoints (after each dump): each endpoint in
    /// `mapped` (the daemon's own) gives its address its id; each id in `held` (other tools'
    /// and implicit endpoints) is kept off, and an address given that id here loses it. An
    /// address mapped by the previous sync whose endpoint is gone frees its id; ids given to
    /// addresses that have no endpoint yet stay theirs. Id 0 is ignored.
    pub fn sync(
        &mut self,
        mapped: impl IntoIterator<Item = (IpAddr, u8)>,
        held: impl IntoIterator<Item = u8>,
    ) {
        let mapped: Vec<(IpAddr, u8)> = mapped.into_iter().filter(|&(_, id)| id != 0).collect();
        for addr in std::mem::take(&mut self.synced) {
            if !mapped.iter().any(|&(a, _)| a == addr) {
                self.remove_id(addr);
            }
        }
        self.held = IdSet::default();
        for (addr, id) in mapped {
            self.map_id(addr, id);
            self.synced.insert(addr);
        }
        for id in held.into_iter().filter(|&id| id != 0) {
            if let Some(addr) = self.addr_of(id) {
                self.remove_id(addr);
                self.synced.remove(&addr);
            }
            self.held.set(id, true);
        }
    }

    /// Frees the address's id and returns it.
    pub fn remove_id(&mut self, addr: IpAddr) -> Option<u8> {
        let id = self.by_addr.remove(&addr)?;
        self.used.set(id, false);
        Some(id)
    }

    /// The address holding `id`.
    #[must_use]
    pub fn addr_of(&self, id: u8) -> Option<IpAddr> {
        self.by_addr
            .iter()
            .find_map(|(addr, &i)| (i == id).then_some(*addr))
    }

    /// How many addresses have an id.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether no address has an id.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}

/// A set of ids 0..=255, one bit each.
#[derive(Debug, Clone, Copy, Default)]
struct IdSet([u64; 4]);

impl IdSet {
    const fn contains(&self, id: u8) -> bool {
        self.0[(id / 64) as usize] & (1 << (id % 64)) != 0
    }

    const fn set(&mut self, id: u8, member: bool) {
        let word = &mut self.0[(id / 64) as usize];
        if member {
            *word |= 1 << (id % 64);
        } else {
            *word &= !(1 << (id % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::IdManager;

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn lowest_free_first_and_stable_per_address() {
        let mut ids = IdManager::new();
        assert_eq!(ids.get_id(v4(1)), Some(1));
        assert_eq!(ids.get_id(v4(2)), Some(2));
        assert_eq!(ids.get_id(v4(1)), Some(1), "same address, same id");
        assert_eq!(ids.remove_id(v4(1)), Some(1));
        assert_eq!(ids.remove_id(v4(1)), None);
        assert_eq!(ids.get_id(v4(3)), Some(1), "the freed id is reused first");
        assert_eq!(ids.get_id(v4(4)), Some(3));
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn exhaustion_and_range() {
        let mut ids = IdManager::new();
        for n in 1..=255 {
            let id = ids.get_id(v4(n)).expect("an id");
            assert_eq!(u32::from(id), n);
        }
        assert_eq!(ids.get_id(v4(999)), None, "1..=255 exhausted");
        assert_eq!(ids.remove_id(v4(200)), Some(200));
        assert_eq!(ids.get_id(v4(999)), Some(200));
        assert!(ids.id_of(v4(0)).is_none(), "0 is never given");
    }

    #[test]
    fn seeding_forces_and_replaces() {
        let mut ids = IdManager::new();
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        ids.map_id(v4(1), 5);
        ids.map_id(v6, 1);
        assert_eq!(ids.get_id(v4(2)), Some(2), "1 is taken by the seed");
        assert_eq!(ids.id_of(v4(1)), Some(5));
        // Another address takes id 5: the first loses it.
        ids.map_id(v4(9), 5);
        assert_eq!(ids.id_of(v4(1)), None);
        assert_eq!(ids.addr_of(5), Some(v4(9)));
        // Re-mapping an address frees its old id.
        ids.map_id(v4(9), 7);
        assert_eq!(ids.get_id(v4(3)), Some(3));
        assert_eq!(ids.get_id(v4(4)), Some(4));
        assert_eq!(ids.get_id(v4(5)), Some(5), "5 was freed by the re-mapping");
        ids.map_id(v4(6), 0);
        assert_eq!(ids.id_of(v4(6)), None, "id 0 is not an id");
    }

    #[test]
    fn each_sync_makes_the_kernel_the_truth() {
        let mut ids = IdManager::new();
        assert_eq!(ids.get_id(v4(1)), Some(1));
        assert_eq!(ids.get_id(v4(2)), Some(2), "given out, no endpoint yet");
        // The kernel: ours for v4(1) at 1, and another tool took 2 (and 3) behind our back.
        ids.sync([(v4(1), 1)], [2, 3]);
        assert_eq!(ids.id_of(v4(1)), Some(1));
        assert_eq!(ids.id_of(v4(2)), None, "2 is another endpoint's");
        assert_eq!(ids.get_id(v4(2)), Some(4), "held ids are never given out");
        assert_eq!(ids.get_id(v4(5)), Some(5));
        // Next dump: ours is gone, and so are the others': their ids are free again; ids
        // given to addresses without an endpoint stay theirs.
        ids.sync([], []);
        assert_eq!(ids.id_of(v4(1)), None, "its endpoint went away");
        assert_eq!(ids.id_of(v4(2)), Some(4));
        assert_eq!(ids.id_of(v4(5)), Some(5));
        assert_eq!(ids.get_id(v4(6)), Some(1));
        assert_eq!(ids.get_id(v4(7)), Some(2));
        assert_eq!(ids.get_id(v4(8)), Some(3));
        // A sync that moves ours to another id (re-added by hand) follows the kernel.
        ids.sync([(v4(6), 9)], [0]);
        assert_eq!(ids.id_of(v4(6)), Some(9));
        assert_eq!(ids.get_id(v4(10)), Some(1), "its old id is free");
    }
}
