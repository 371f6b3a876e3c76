//! The ID manager: local address to MPTCP address id, 1..=255, lowest free first.

use std::{collections::HashMap, net::IpAddr};

/// Address ids, one per IP address (ports play no part; IPv6 scope ids are not part of an
/// `IpAddr`). 0 is never given out: the kernel uses it for the initial subflow's address.
#[derive(Debug, Clone, Default)]
pub struct IdManager {
    by_addr: HashMap<IpAddr, u8>,
    /// Bit `id` set: id in use.
    used: [u64; 4],
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
        let id = (1..=u8::MAX).find(|&id| !self.is_used(id))?;
        self.set_used(id, true);
        self.by_addr.insert(addr, id);
        Some(id)
    }

    /// The address's id, without giving it one.
    #[must_use]
    pub fn id_of(&self, addr: IpAddr) -> Option<u8> {
        self.by_addr.get(&addr).copied()
    }

    /// Forces `addr` to `id` (seeding from the kernel's endpoints): a previous id of `addr`
    /// is freed and another address holding `id` loses it. Id 0 is ignored.
    pub fn map_id(&mut self, addr: IpAddr, id: u8) {
        if id == 0 {
            return;
        }
        self.remove_id(addr);
        if let Some(other) = self.addr_of(id) {
            self.by_addr.remove(&other);
        }
        self.set_used(id, true);
        self.by_addr.insert(addr, id);
    }

    /// Frees the address's id and returns it.
    pub fn remove_id(&mut self, addr: IpAddr) -> Option<u8> {
        let id = self.by_addr.remove(&addr)?;
        self.set_used(id, false);
        Some(id)
    }

    /// The address holding `id`.
    #[must_use]
    pub fn addr_of(&self, id: u8) -> Option<IpAddr> {
        self.by_addr
            .iter()
            .find_map(|(addr, &i)| (i == id).then_some(*addr))
    }

    /// How many ids are in use.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether no id is in use.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    const fn is_used(&self, id: u8) -> bool {
        self.used[(id / 64) as usize] & (1 << (id % 64)) != 0
    }

    const fn set_used(&mut self, id: u8, used: bool) {
        let word = &mut self.used[(id / 64) as usize];
        if used {
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
}
