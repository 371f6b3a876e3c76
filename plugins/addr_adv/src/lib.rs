//! `addr_adv`, the default plugin: one in-kernel endpoint, with the `--addr-flags` flags,
//! per usable local address; removed when the address goes or its link goes down (the
//! network monitor withdraws the address first), added again when it comes back.
//!
//! Limits follow the C plugin: a counter starts at 2 at `init` and follows the endpoints
//! added; while it is within 2..=8 it is sent as the `subflows` limit, and as the
//! `add_addr_accepted` limit too when the flags contain `subflow`. Unlike the C plugin, only
//! endpoints the kernel accepted are counted.
//!
//! The kernel holds at most 8 endpoints (`ERANGE` past that): an address that finds no room
//! waits, and gets its endpoint when another one is removed.

mod limits;

use std::{collections::BTreeMap, net::IpAddr};

use mptcpd_plugin::{
    BoxFuture, Endpoint, EndpointFlags, Interface, PathManager, Plugin, PluginConfig, PmError,
};
use tracing::{debug, info, warn};

use limits::LimitCounter;

/// The plugin's registered name.
pub const NAME: &str = "addr_adv";

/// An endpoint this plugin holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    id: u8,
    ifindex: u32,
}

/// The `addr_adv` plugin.
#[derive(Debug)]
pub struct AddrAdv {
    flags: EndpointFlags,
    held: BTreeMap<IpAddr, Held>,
    /// Addresses with no endpoint for lack of room, by interface index.
    waiting: BTreeMap<IpAddr, u32>,
    limits: LimitCounter,
}

impl AddrAdv {
    /// A plugin adding endpoints with `config.addr_flags`.
    #[must_use]
    pub fn new(config: &PluginConfig) -> Self {
        Self {
            flags: config.addr_flags,
            held: BTreeMap::new(),
            waiting: BTreeMap::new(),
            limits: LimitCounter::new(config.addr_flags),
        }
    }

    async fn update_limits(&mut self, delta: i32, pm: &dyn PathManager) {
        if let Some(limits) = self.limits.update(delta) {
            match pm.set_limits(limits).await {
                Ok(()) => debug!(?limits, "limits set"),
                Err(e) => warn!("setting limits {limits:?}: {e}"),
            }
        }
    }

    /// Adds the endpoint; false when the kernel had no room for it.
    async fn add(&mut self, addr: IpAddr, ifindex: u32, pm: &dyn PathManager) -> bool {
        let id = match pm.address_id(addr) {
            Ok(id) => id,
            Err(e) => {
                warn!("no endpoint for {addr}: {e}");
                return true;
            }
        };
        let endpoint = Endpoint {
            id,
            addr,
            port: None,
            flags: self.flags,
            if_idx: i32::try_from(ifindex).ok(),
        };
        match pm.add_endpoint(endpoint).await {
            Ok(()) => {
                info!(id, %addr, flags = %self.flags, "endpoint added");
                self.waiting.remove(&addr);
                self.held.insert(addr, Held { id, ifindex });
                self.update_limits(1, pm).await;
                true
            }
            Err(e) if e.errno() == Some(libc::ERANGE) => {
                warn!(
                    "no endpoint for {addr}: the kernel holds at most 8 endpoints; \
                     it waits for one to be removed"
                );
                pm.release_address_id(addr);
                self.waiting.insert(addr, ifindex);
                false
            }
            Err(e) => {
                warn!("adding an endpoint for {addr}: {e}");
                pm.release_address_id(addr);
                true
            }
        }
    }

    async fn remove(&mut self, addr: IpAddr, pm: &dyn PathManager) {
        self.waiting.remove(&addr);
        let Some(Held { id, .. }) = self.held.remove(&addr) else {
            return;
        };
        match pm.remove_endpoint(id).await {
            Ok(()) => info!(id, %addr, "endpoint removed"),
            // Someone else removed it already.
            Err(PmError::Kernel { errno, .. }) if errno == libc::EINVAL => {
                debug!(id, %addr, "endpoint already gone");
            }
            Err(e) => warn!("removing endpoint {id} ({addr}): {e}"),
        }
        pm.release_address_id(addr);
        self.update_limits(-1, pm).await;
        self.fill_room(pm).await;
    }

    /// Offers freed room to waiting addresses, in address order.
    async fn fill_room(&mut self, pm: &dyn PathManager) {
        while let Some((&addr, &ifindex)) = self.waiting.first_key_value() {
            self.waiting.remove(&addr);
            if !self.add(addr, ifindex, pm).await {
                break;
            }
        }
    }

    async fn address_up(&mut self, ifindex: u32, addr: IpAddr, pm: &dyn PathManager) {
        match self.held.get(&addr) {
            Some(held) if held.ifindex == ifindex => return,
            // The address moved to another interface: its endpoint is bound to the old one.
            Some(_) => self.remove(addr, pm).await,
            None => {}
        }
        self.add(addr, ifindex, pm).await;
    }

    async fn interface_gone(&mut self, ifindex: u32, pm: &dyn PathManager) {
        self.waiting.retain(|_, &mut i| i != ifindex);
        let gone: Vec<IpAddr> = self
            .held
            .iter()
            .filter_map(|(addr, held)| (held.ifindex == ifindex).then_some(*addr))
            .collect();
        for addr in gone {
            self.remove(addr, pm).await;
        }
    }
}

impl Plugin for AddrAdv {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "in-kernel path manager: an endpoint per usable local address"
    }

    fn init<'a>(&'a mut self, pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(self.update_limits(2, pm))
    }

    fn delete_interface<'a>(
        &'a mut self,
        iface: &'a Interface,
        pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.interface_gone(iface.index, pm))
    }

    fn new_local_address<'a>(
        &'a mut self,
        iface: &'a Interface,
        addr: IpAddr,
        pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.address_up(iface.index, addr, pm))
    }

    fn delete_local_address<'a>(
        &'a mut self,
        _iface: &'a Interface,
        addr: IpAddr,
        pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.remove(addr, pm))
    }
}

#[cfg(test)]
mod tests;
