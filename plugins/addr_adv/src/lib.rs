//! `addr_adv`, the default plugin: one in-kernel endpoint, with the `--addr-flags` flags,
//! per usable local address; removed when the address goes or its link goes down (the
//! network monitor withdraws the address first), added again when it comes back.
//!
//! The monitor reports each (interface, address) pair, and one address can be on several
//! interfaces (a VLAN and its parent share EUI-64 link-local addresses). The kernel holds one
//! endpoint per address, bound to one interface: it stays while any interface carries the
//! address, moves to another when the one it is bound to loses it, and is removed with the
//! last one.
//!
//! Limits follow the C plugin: a counter starts at 2 at `init` and follows the endpoints
//! added; while it is within 2..=8 it is sent as the `subflows` limit, and as the
//! `add_addr_accepted` limit too when the flags contain `subflow`. Unlike the C plugin, only
//! endpoints the kernel accepted are counted.
//!
//! The kernel holds at most 8 endpoints (`ERANGE` past that): an address that finds no room
//! waits, and gets its endpoint when another one is removed.
//!
//! The address policy ([`EndpointPolicy`]) gives each interface's endpoints their flags
//! (`[interface PATTERN]`, else `--addr-flags`) and ranks addresses (the `interfaces=` order,
//! then `prefer-family=`): an address that finds no room takes the endpoint of a held address
//! it outranks (which then waits), and freed room goes to the best waiting address. Equal
//! ranks never displace each other, so without a policy the first come keep their endpoints.
//!
//! An address whose endpoint another tool added (`NetworkManager`) is left to that tool, and
//! taken up again when that endpoint goes while the address stays (see [`foreign`]).

mod foreign;
mod limits;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use mptcpd_plugin::{
    BoxFuture, Chain, Endpoint, EndpointFlags, EndpointPolicy, Event, PathManager, Plugin,
    PluginConfig, Rank,
};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use foreign::Foreign;
use limits::LimitCounter;

/// The plugin's registered name.
pub const NAME: &str = "addr_adv";

/// An endpoint this plugin holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    id: u8,
    /// The interface it is bound to.
    ifindex: u32,
    /// The flags it was added with (or last set to).
    flags: EndpointFlags,
}

/// The `addr_adv` plugin.
///
/// Its events all come through the host's network lane, one at a time: the async mutex,
/// held for a whole event (across the kernel's answers), is never contended; it makes the
/// plugin `Sync` and keeps an event's read-modify-write whole if that ever changes.
#[derive(Debug)]
pub struct AddrAdv {
    state: Mutex<State>,
    /// A policy from a reload, applied with the next event (a tick at the latest): the
    /// reload cannot wait for the state, nor command the kernel.
    reloaded: std::sync::Mutex<Option<EndpointPolicy>>,
}

impl AddrAdv {
    /// A plugin adding endpoints with `config.addr_flags`.
    #[must_use]
    pub fn new(config: &PluginConfig) -> Self {
        Self {
            state: Mutex::new(State {
                flags: config.addr_flags,
                policy: config.policy.clone(),
                names: BTreeMap::new(),
                addrs: BTreeMap::new(),
                held: BTreeMap::new(),
                waiting: BTreeSet::new(),
                foreign: Foreign::default(),
                limits: LimitCounter::new(config.addr_flags),
            }),
            reloaded: std::sync::Mutex::new(None),
        }
    }
}

/// What an attempt to add an endpoint came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Added {
    Yes,
    /// The kernel holds 8 endpoints already.
    NoRoom,
    /// Another tool's endpoint holds the address (left to it).
    Foreign,
    /// Refused for another reason (logged).
    Failed,
}

/// What the plugin knows and holds.
#[derive(Debug)]
struct State {
    /// `--addr-flags`: the flags where no `[interface]` section matches.
    flags: EndpointFlags,
    policy: EndpointPolicy,
    /// Interface names by index, as last reported.
    names: BTreeMap<u32, String>,
    /// The interfaces each reported address is on.
    addrs: BTreeMap<IpAddr, BTreeSet<u32>>,
    held: BTreeMap<IpAddr, Held>,
    /// Addresses with no endpoint for lack of room.
    waiting: BTreeSet<IpAddr>,
    /// Addresses left to another tool's endpoint.
    foreign: Foreign,
    limits: LimitCounter,
}

impl State {
    async fn update_limits(&mut self, delta: i32, pm: &dyn PathManager) {
        if let Some(limits) = self.limits.update(delta) {
            match pm.set_limits(limits).await {
                Ok(()) => debug!(?limits, "limits set"),
                Err(e) => warn!("setting limits {limits:?}: {}", Chain(&e)),
            }
        }
    }

    /// Adds the endpoint, bound to `ifindex`, taking the room of a held address it outranks
    /// if the kernel has none; false when it found no room (it waits).
    async fn add(&mut self, addr: IpAddr, ifindex: u32, pm: &dyn PathManager) -> bool {
        if self.try_add(addr, ifindex, pm).await != Added::NoRoom {
            return true;
        }
        let Some(worse) = self.outranked_by(addr) else {
            warn!(
                "no endpoint for {addr}: the kernel holds at most 8 endpoints; \
                 it waits for one to be removed"
            );
            return false;
        };
        info!(%addr, displaced = %worse, "the address policy prefers {addr}: {worse} gives up its endpoint and waits");
        self.withdraw(worse, pm).await;
        self.waiting.insert(worse);
        self.try_add(addr, ifindex, pm).await != Added::NoRoom
    }

    async fn try_add(&mut self, addr: IpAddr, ifindex: u32, pm: &dyn PathManager) -> Added {
        let id = match pm.address_id(addr) {
            Ok(id) => id,
            Err(e) => {
                warn!("no endpoint for {addr}: {}", Chain(&e));
                return Added::Failed;
            }
        };
        let flags = self.flags_of(ifindex);
        let endpoint = Endpoint {
            id,
            addr,
            port: None,
            flags,
            if_idx: i32::try_from(ifindex).ok(),
        };
        match pm.add_endpoint(endpoint).await {
            Ok(id) => {
                info!(id, %addr, ifindex, %flags, "endpoint added");
                self.waiting.remove(&addr);
                self.held.insert(addr, Held { id, ifindex, flags });
                self.update_limits(1, pm).await;
                Added::Yes
            }
            Err(e) if e.is_no_room() => {
                pm.release_address_id(addr);
                self.waiting.insert(addr);
                Added::NoRoom
            }
            Err(e) if e.is_exists() => {
                pm.release_address_id(addr);
                if self.leave_to_other_tool(addr, pm).await {
                    Added::Foreign
                } else {
                    warn!("adding an endpoint for {addr}: {}", Chain(&e));
                    Added::Failed
                }
            }
            Err(e) => {
                warn!("adding an endpoint for {addr}: {}", Chain(&e));
                pm.release_address_id(addr);
                Added::Failed
            }
        }
    }

    /// After `EEXIST`: whether another tool's endpoint holds the address (then recorded,
    /// and said once in the log).
    async fn leave_to_other_tool(&mut self, addr: IpAddr, pm: &dyn PathManager) -> bool {
        let kernel = match pm.dump_endpoints().await {
            Ok(kernel) => kernel,
            Err(e) => {
                warn!("reading the endpoints: {}", Chain(&e));
                return false;
            }
        };
        let Some(theirs) = foreign::find(&kernel, &pm.owned_endpoints(), addr) else {
            return false;
        };
        if self.foreign.insert(theirs) {
            info!(
                "endpoint for {addr} is managed by another tool (id {}, flags {}): left alone",
                theirs.id, theirs.flags
            );
        }
        true
    }

    /// On a tick: takes up again the addresses whose other tool's endpoint is gone.
    async fn reclaim(&mut self, pm: &dyn PathManager) {
        if self.foreign.is_empty() {
            return;
        }
        let kernel = match pm.dump_endpoints().await {
            Ok(kernel) => kernel,
            Err(e) => {
                // Every second while it lasts: not worth more than debug.
                debug!("reading the endpoints: {}", Chain(&e));
                return;
            }
        };
        for addr in self.foreign.gone(&kernel, &pm.owned_endpoints()) {
            let Some(ifindex) = self.interface_of(addr) else {
                continue;
            };
            info!("the other tool's endpoint for {addr} is gone: the daemon manages it again");
            self.add(addr, ifindex, pm).await;
        }
    }

    /// A reloaded policy: held endpoints whose flags it changes get them (`SET_FLAGS` for
    /// `backup` and `fullmesh`, the only ones the kernel changes in place; added again for
    /// others), and a waiting address it ranks above a held one takes that one's room.
    async fn apply_policy(&mut self, policy: EndpointPolicy, pm: &dyn PathManager) {
        if policy == self.policy {
            return;
        }
        info!("the endpoint policy changed: applying it to every endpoint");
        self.policy = policy;
        let held: Vec<(IpAddr, Held)> = self.held.iter().map(|(a, h)| (*a, *h)).collect();
        for (addr, was) in held {
            let flags = self.flags_of(was.ifindex);
            if flags == was.flags {
                continue;
            }
            let in_place = EndpointFlags::BACKUP | EndpointFlags::FULLMESH;
            if (flags ^ was.flags).difference(in_place).is_empty() {
                match pm.set_endpoint_flags(was.id, flags).await {
                    Ok(()) => {
                        info!(id = was.id, %addr, %flags, "endpoint flags changed");
                        self.held.insert(addr, Held { flags, ..was });
                    }
                    Err(e) => warn!(
                        "changing the flags of endpoint {} ({addr}): {}",
                        was.id,
                        Chain(&e)
                    ),
                }
            } else {
                self.withdraw(addr, pm).await;
                self.add(addr, was.ifindex, pm).await;
            }
        }
        self.fill_room(pm).await;
    }

    /// The flags of an endpoint bound to `ifindex`.
    fn flags_of(&self, ifindex: u32) -> EndpointFlags {
        let name = self.names.get(&ifindex).map_or("", String::as_str);
        self.policy.flags_for(name, self.flags)
    }

    /// Where `addr` stands under the endpoint limit, on the interface it would be bound to.
    fn rank_of(&self, addr: IpAddr) -> Rank {
        let name = self
            .interface_of(addr)
            .and_then(|index| self.names.get(&index))
            .map_or("", String::as_str);
        self.policy.rank(name, addr)
    }

    /// The held address of the worst rank, if `addr` outranks it.
    fn outranked_by(&self, addr: IpAddr) -> Option<IpAddr> {
        let rank = self.rank_of(addr);
        self.held
            .keys()
            .map(|&held| (self.rank_of(held), held))
            .max()
            .filter(|(worst, _)| *worst > rank)
            .map(|(_, held)| held)
    }

    /// Removes the address's endpoint, if it holds one, without offering the room.
    async fn withdraw(&mut self, addr: IpAddr, pm: &dyn PathManager) -> bool {
        let Some(Held { id, .. }) = self.held.remove(&addr) else {
            return false;
        };
        match pm.remove_endpoint(id).await {
            Ok(()) => info!(id, %addr, "endpoint removed"),
            Err(e) if e.is_not_found() => debug!(id, %addr, "endpoint already gone"),
            Err(e) => warn!("removing endpoint {id} ({addr}): {}", Chain(&e)),
        }
        pm.release_address_id(addr);
        self.update_limits(-1, pm).await;
        true
    }

    /// Offers freed room to waiting addresses, the best ranked first (then in address order).
    async fn fill_room(&mut self, pm: &dyn PathManager) {
        while let Some(addr) = self
            .waiting
            .iter()
            .min_by_key(|&&addr| (self.rank_of(addr), addr))
            .copied()
        {
            self.waiting.remove(&addr);
            let Some(ifindex) = self.interface_of(addr) else {
                continue;
            };
            if !self.add(addr, ifindex, pm).await {
                break;
            }
        }
    }

    /// The interface a new endpoint for the address is bound to: the lowest index of those
    /// carrying it.
    fn interface_of(&self, addr: IpAddr) -> Option<u32> {
        self.addrs.get(&addr).and_then(|on| on.first().copied())
    }

    async fn address_up(&mut self, ifindex: u32, addr: IpAddr, pm: &dyn PathManager) {
        self.addrs.entry(addr).or_default().insert(ifindex);
        if self.held.contains_key(&addr)
            || self.waiting.contains(&addr)
            || self.foreign.contains(addr)
        {
            // Already there on another interface (or reported again): nothing changes.
            return;
        }
        self.add(addr, ifindex, pm).await;
    }

    async fn address_down(&mut self, ifindex: u32, addr: IpAddr, pm: &dyn PathManager) {
        let Some(on) = self.addrs.get_mut(&addr) else {
            return;
        };
        on.remove(&ifindex);
        if on.is_empty() {
            self.addrs.remove(&addr);
            self.waiting.remove(&addr);
            self.foreign.remove(addr);
            if self.withdraw(addr, pm).await {
                self.fill_room(pm).await;
            }
            return;
        }
        // Still on another interface: the endpoint stays, bound to one that has it.
        if self.held.get(&addr).is_some_and(|h| h.ifindex == ifindex) {
            let Some(other) = self.interface_of(addr) else {
                return;
            };
            info!(%addr, from = ifindex, to = other, "moving the endpoint to another interface");
            self.withdraw(addr, pm).await;
            self.add(addr, other, pm).await;
            if !self.held.contains_key(&addr) && !self.waiting.contains(&addr) {
                // Refused for another reason than room: the room it had is free.
                self.fill_room(pm).await;
            }
        }
    }

    async fn interface_gone(&mut self, ifindex: u32, pm: &dyn PathManager) {
        let on_it: Vec<IpAddr> = self
            .addrs
            .iter()
            .filter_map(|(addr, on)| on.contains(&ifindex).then_some(*addr))
            .collect();
        for addr in on_it {
            self.address_down(ifindex, addr, pm).await;
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

    /// Ticks look again at the endpoints of other tools (their removal raises no event).
    fn wants_ticks(&self) -> bool {
        true
    }

    fn init<'a>(&'a self, pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.state.lock().await.update_limits(2, pm).await })
    }

    fn reconfigure(&self, config: &PluginConfig) {
        *self
            .reloaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(config.policy.clone());
    }

    fn on_event<'a>(&'a self, event: &'a Event, pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let reloaded = self
                .reloaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(policy) = reloaded {
                state.apply_policy(policy, pm).await;
            }
            match event {
                Event::DeleteInterface(iface) => state.interface_gone(iface.index, pm).await,
                Event::NewInterface(iface) | Event::UpdateInterface(iface) => {
                    state.names.insert(iface.index, iface.name.clone());
                }
                Event::NewLocalAddress { iface, addr } => {
                    state.names.insert(iface.index, iface.name.clone());
                    state.address_up(iface.index, *addr, pm).await;
                }
                Event::DeleteLocalAddress { iface, addr } => {
                    state.address_down(iface.index, *addr, pm).await;
                }
                Event::Tick => state.reclaim(pm).await,
                _ => {}
            }
        })
    }
}

#[cfg(test)]
mod tests;
