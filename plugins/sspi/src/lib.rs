//! `sspi`, single subflow per interface, for the userspace path manager
//! (`net.mptcp.pm_type=1`).
//!
//! - When a connection is established, each other interface's first address of the
//!   connection's family is announced to the peer, with an address id from the ID manager
//!   (never 0, which the C plugin used and so never announced anything) and a port on which
//!   an MPTCP listener accepts the joins.
//! - A connection keeps at most one subflow per local interface: a subflow that joins on an
//!   interface that already carries one of the connection's subflows is closed.
//! - Everything kept about a connection is dropped when it closes, listeners included.
//!
//! Local addresses are mapped to interfaces from the address callbacks, per (interface,
//! address) as the monitor reports them: one address can be on several interfaces, and going
//! from one leaves it on the others. A subflow from such an address counts on the interface
//! it is bound to, else on the lowest-numbered one. An address the monitor never reported
//! (start-up addresses without `existing`) is not enforced on.

//!
//! State sits behind one `std::sync::Mutex`, taken between the kernel's answers and never
//! across one: events of different connections run concurrently (the host's lanes), and an
//! announcement waiting for the kernel holds up no other connection.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, hash_map::Entry},
    net::{IpAddr, SocketAddr},
    sync::{Mutex, MutexGuard, PoisonError},
};

use mptcpd_plugin::{
    BoxFuture, Chain, Connection, Endpoint, EndpointFlags, Event, Interface, PathManager, Plugin,
    Subflow, Token,
};
use tracing::{debug, info, warn};

/// The plugin's registered name.
pub const NAME: &str = "sspi";

/// The two ends of a subflow.
type Ends = (SocketAddr, SocketAddr);

/// The `sspi` plugin.
#[derive(Debug, Default)]
pub struct Sspi {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Local addresses and the interfaces each is on.
    addrs: BTreeMap<IpAddr, BTreeSet<u32>>,
    /// The subflow a connection keeps on an interface.
    kept: HashMap<(Token, u32), Ends>,
    /// The listeners taken for a connection's announcements.
    listeners: HashMap<Token, Vec<SocketAddr>>,
}

impl Sspi {
    /// A plugin with nothing known yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if it did, the maps are still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many subflows the plugin tracks for `token` (for tests).
    #[must_use]
    pub fn subflows_of(&self, token: Token) -> usize {
        self.state()
            .kept
            .keys()
            .filter(|(t, _)| *t == token)
            .count()
    }

    /// Announces one address of each other interface.
    async fn established(&self, conn: &Connection, pm: &dyn PathManager) {
        let per_interface = self.state().others(conn);
        let mut announced = BTreeSet::new();
        for (ifindex, addr) in per_interface {
            if !announced.insert(addr) {
                // Also on an interface announced already.
                continue;
            }
            let id = match pm.address_id(addr) {
                Ok(id) => id,
                Err(e) => {
                    warn!("not announcing {addr}: {}", Chain(&e));
                    continue;
                }
            };
            let listening = match pm.listen(SocketAddr::new(addr, 0)) {
                Ok(listening) => listening,
                Err(e) => {
                    warn!("not announcing {addr}: {}", Chain(&e));
                    continue;
                }
            };
            let local = Endpoint {
                id,
                addr,
                port: Some(listening.port()),
                flags: EndpointFlags::SIGNAL,
                if_idx: None,
            };
            match pm.announce(conn.token, local).await {
                Ok(()) => {
                    info!(id, %listening, ifindex, "address announced");
                    self.state()
                        .listeners
                        .entry(conn.token)
                        .or_default()
                        .push(listening);
                }
                Err(e) => {
                    warn!("announcing {listening}: {}", Chain(&e));
                    close(pm, listening);
                }
            }
        }
    }

    async fn joined(&self, sub: &Subflow, pm: &dyn PathManager) {
        if !self.state().keep(sub) {
            info!(local = %sub.local, remote = %sub.remote,
                "closing a second subflow on the interface");
            if let Err(e) = pm.subflow_destroy(sub.path()).await {
                warn!(
                    "closing subflow {} -> {}: {}",
                    sub.local,
                    sub.remote,
                    Chain(&e)
                );
            }
        }
    }

    fn closed(&self, token: Token, pm: &dyn PathManager) {
        let listeners = {
            let mut state = self.state();
            state.kept.retain(|(t, _), _| *t != token);
            state.listeners.remove(&token).unwrap_or_default()
        };
        for listening in listeners {
            close(pm, listening);
        }
    }
}

impl State {
    fn interface_of(&self, addr: IpAddr, bound: Option<i32>) -> Option<u32> {
        let bound = bound.and_then(|i| u32::try_from(i).ok());
        match self.addrs.get(&addr) {
            Some(on) if bound.is_some_and(|b| on.contains(&b)) => bound,
            Some(on) => on.first().copied().or(bound),
            None => bound,
        }
    }

    fn created(&mut self, conn: &Connection) {
        if let Some(ifindex) = self.interface_of(conn.local.ip(), None) {
            self.kept
                .insert((conn.token, ifindex), (conn.local, conn.remote));
        } else {
            debug!(local = %conn.local, "connection from an address on no known interface");
        }
    }

    /// The first address of the connection's family on each interface other than its own.
    fn others(&self, conn: &Connection) -> BTreeMap<u32, IpAddr> {
        let own = self.interface_of(conn.local.ip(), None);
        let mut per_interface: BTreeMap<u32, IpAddr> = BTreeMap::new();
        for (&addr, on) in &self.addrs {
            let usable = addr != conn.local.ip() && addr.is_ipv4() == conn.local.is_ipv4();
            for &ifindex in on {
                if usable && Some(ifindex) != own {
                    per_interface.entry(ifindex).or_insert(addr);
                }
            }
        }
        per_interface
    }

    /// Records a joined subflow; false when its interface already carries another one.
    fn keep(&mut self, sub: &Subflow) -> bool {
        let Some(ifindex) = self.interface_of(sub.local.ip(), sub.if_idx) else {
            debug!(local = %sub.local, "subflow from an address on no known interface");
            return true;
        };
        match self.kept.entry((sub.token, ifindex)) {
            Entry::Vacant(slot) => {
                slot.insert((sub.local, sub.remote));
                true
            }
            Entry::Occupied(kept) => *kept.get() == (sub.local, sub.remote),
        }
    }

    fn subflow_gone(&mut self, sub: &Subflow) {
        if let Some(ifindex) = self.interface_of(sub.local.ip(), sub.if_idx) {
            // Only the kept subflow frees the interface, not the extra one closed above
            // (the C plugin forgot the interface on any close).
            if self.kept.get(&(sub.token, ifindex)) == Some(&(sub.local, sub.remote)) {
                self.kept.remove(&(sub.token, ifindex));
            }
        }
    }

    fn address(&mut self, iface: &Interface, addr: IpAddr, up: bool) {
        let on = self.addrs.entry(addr).or_default();
        if up {
            on.insert(iface.index);
        } else {
            on.remove(&iface.index);
            if on.is_empty() {
                self.addrs.remove(&addr);
            }
        }
    }
}

fn close(pm: &dyn PathManager, listening: SocketAddr) {
    if let Err(e) = pm.close_listener(listening) {
        warn!("closing the listener on {listening}: {}", Chain(&e));
    }
}

impl Plugin for Sspi {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "userspace path manager: a single subflow per interface"
    }

    fn on_event<'a>(&'a self, event: &'a Event, pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event {
                Event::NewConnection(conn) => self.state().created(conn),
                Event::ConnectionEstablished(conn) => self.established(conn, pm).await,
                Event::ConnectionClosed(token) => self.closed(*token, pm),
                Event::NewSubflow(sub) => self.joined(sub, pm).await,
                Event::SubflowClosed(sub) => self.state().subflow_gone(sub),
                Event::DeleteInterface(iface) => self.state().addrs.retain(|_, on| {
                    on.remove(&iface.index);
                    !on.is_empty()
                }),
                Event::NewLocalAddress { iface, addr } => self.state().address(iface, *addr, true),
                Event::DeleteLocalAddress { iface, addr } => {
                    self.state().address(iface, *addr, false);
                }
                _ => {}
            }
        })
    }
}

#[cfg(test)]
mod tests;
