//! The handle plugins get: the kernel's commands, with the endpoints this daemon added
//! recorded as ours, plus the ID and listener managers.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::{Mutex, MutexGuard, PoisonError},
};

use mptcpd_plugin::{
    Commands, Endpoint, EndpointFlags, IdManager, Limits, PathManager, PmError, PmFuture, Token,
};
use tracing::{info, warn};

use super::{listeners::ListenerManager, owned::Owned};

#[derive(Debug)]
struct State {
    ids: IdManager,
    owned: Owned,
    /// Other tools' endpoints as last seen (by id), whose ids and addresses we keep off.
    foreign: BTreeMap<u8, IpAddr>,
    listeners: ListenerManager,
}

/// The daemon's [`PathManager`] over a kernel `K` (the netlink client, or a fake in tests).
#[derive(Debug)]
pub struct HostPm<K> {
    kernel: K,
    state: Mutex<State>,
}

/// "address not found": what `DEL_ADDR` answers for an id the kernel does not have.
fn not_found(result: &Result<(), PmError>) -> bool {
    matches!(result, Err(PmError::Kernel { errno, .. }) if *errno == libc::EINVAL)
}

impl<K: Commands> HostPm<K> {
    /// A handle that remembers its endpoints in `state_file` (if any).
    pub fn new(kernel: K, state_file: Option<PathBuf>) -> Self {
        Self::with_listeners(kernel, state_file, ListenerManager::new())
    }

    /// With another listener manager (tests without MPTCP).
    pub fn with_listeners(
        kernel: K,
        state_file: Option<PathBuf>,
        listeners: ListenerManager,
    ) -> Self {
        Self {
            kernel,
            state: Mutex::new(State {
                ids: IdManager::new(),
                owned: Owned::new(state_file),
                foreign: BTreeMap::new(),
                listeners,
            }),
        }
    }

    /// The kernel side.
    pub const fn kernel(&self) -> &K {
        &self.kernel
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if it did, the data is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The listeners open and their references.
    #[must_use]
    pub fn listeners(&self) -> Vec<(SocketAddr, usize)> {
        self.state().listeners.listening()
    }

    /// Start-up: reads the kernel's endpoints, adopts ours (named by the state file, still in
    /// the kernel identically: id, address, port, flags, interface) and seeds the ID manager
    /// with every endpoint. Returns how many were adopted.
    pub(super) async fn adopt(&self) -> Result<usize, PmError> {
        let kernel = self.kernel.dump_endpoints().await?;
        let mut state = self.state();
        let adopted = state.owned.adopt(&kernel);
        seed(&mut state, &kernel);
        Ok(adopted)
    }

    /// After lost events: forgets ours that someone removed, and re-reads the others'.
    pub(super) async fn refresh(&self) -> Result<Vec<Endpoint>, PmError> {
        let kernel = self.kernel.dump_endpoints().await?;
        let mut state = self.state();
        let gone = state.owned.retain_in(&kernel);
        for e in &gone {
            state.ids.remove_id(e.addr);
        }
        seed(&mut state, &kernel);
        Ok(gone)
    }

    /// Removes the adopted endpoints no plugin added again; returns how many.
    pub(super) async fn remove_unclaimed(&self) -> usize {
        let stale = self.state().owned.unclaimed();
        self.remove_all(stale, "stale").await
    }

    /// Removes every endpoint of ours (shutdown) and closes the listeners.
    pub(super) async fn remove_owned(&self) -> usize {
        let ours = self.state().owned.all();
        let removed = self.remove_all(ours, "ours").await;
        self.state().listeners.clear();
        removed
    }

    async fn remove_all(&self, endpoints: Vec<Endpoint>, why: &str) -> usize {
        let mut removed = 0;
        for e in endpoints {
            let result = self.kernel.remove_endpoint(e.id).await;
            if result.is_ok() || not_found(&result) {
                info!(id = e.id, addr = %e.addr, "removed endpoint ({why})");
                removed += 1;
                let mut state = self.state();
                state.owned.remove(e.id);
                state.ids.remove_id(e.addr);
            } else if let Err(err) = result {
                // Still ours, and still recorded: the next run removes it or adopts it.
                warn!("removing endpoint {} ({}): {err}", e.id, e.addr);
            }
        }
        removed
    }

    /// Adds `endpoint` with its intent recorded first, so that a crash between the kernel's
    /// answer and the record's confirmation still leaves the next run a record to match.
    async fn add_recorded(&self, endpoint: Endpoint) -> Result<(), PmError> {
        self.state().owned.intend(endpoint);
        let result = self.kernel.add_endpoint(endpoint).await;
        let mut state = self.state();
        match result {
            Ok(()) => state.owned.insert(endpoint),
            Err(_) => state.owned.abandon(endpoint),
        }
        result
    }

    /// The addresses (and interfaces) of the endpoints adopted at start-up that no plugin
    /// added again yet: the network monitor reports them even without `existing`, so that
    /// their plugin takes them up again.
    pub(super) fn adopted_addresses(&self) -> Vec<(Option<u32>, IpAddr)> {
        self.state()
            .owned
            .unclaimed()
            .iter()
            .map(|e| (e.if_idx.and_then(|i| u32::try_from(i).ok()), e.addr))
            .collect()
    }
}

/// Every kernel endpoint keeps its id; those not ours are the others'.
fn seed(state: &mut State, kernel: &[Endpoint]) {
    state.foreign.clear();
    for e in kernel {
        state.ids.map_id(e.addr, e.id);
        if !state.owned.contains(e.id) {
            state.foreign.insert(e.id, e.addr);
        }
    }
}

impl<K: Commands> Commands for HostPm<K> {
    /// Adds and records as ours; an identical endpoint of ours is adopted without asking the
    /// kernel, one of ours for the same address with other values is replaced.
    fn add_endpoint(&self, endpoint: Endpoint) -> PmFuture<'_, ()> {
        Box::pin(async move {
            if endpoint.id == 0 {
                return Err(PmError::ZeroId);
            }
            let replaced = {
                let mut state = self.state();
                match state.owned.by_addr(endpoint.addr) {
                    Some(mine) if mine == endpoint => {
                        state.owned.claim(mine.id);
                        info!(id = mine.id, addr = %mine.addr, "endpoint adopted");
                        return Ok(());
                    }
                    Some(mine) => Some(mine.id),
                    None => None,
                }
            };
            if let Some(old) = replaced {
                let result = self.kernel.remove_endpoint(old).await;
                if !not_found(&result) {
                    result?;
                }
                self.state().owned.remove(old);
            }
            self.add_recorded(endpoint).await?;
            self.state().foreign.remove(&endpoint.id);
            Ok(())
        })
    }

    fn remove_endpoint(&self, id: u8) -> PmFuture<'_, ()> {
        Box::pin(async move {
            let result = self.kernel.remove_endpoint(id).await;
            if result.is_ok() || not_found(&result) {
                let mut state = self.state();
                state.owned.remove(id);
                state.foreign.remove(&id);
            }
            result
        })
    }

    fn get_endpoint(&self, id: u8) -> PmFuture<'_, Endpoint> {
        self.kernel.get_endpoint(id)
    }

    fn dump_endpoints(&self) -> PmFuture<'_, Vec<Endpoint>> {
        self.kernel.dump_endpoints()
    }

    fn flush_endpoints(&self) -> PmFuture<'_, ()> {
        Box::pin(async move {
            self.kernel.flush_endpoints().await?;
            let mut state = self.state();
            state.owned.clear();
            state.foreign.clear();
            Ok(())
        })
    }

    fn set_endpoint_flags(&self, id: u8, flags: EndpointFlags) -> PmFuture<'_, ()> {
        Box::pin(async move {
            self.kernel.set_endpoint_flags(id, flags).await?;
            // The state file identifies ours by their flags too.
            if self.state().owned.contains(id) {
                match self.kernel.get_endpoint(id).await {
                    Ok(now) => self.state().owned.update(now),
                    Err(e) => warn!("reading endpoint {id} after a flag change: {e}"),
                }
            }
            Ok(())
        })
    }

    fn set_limits(&self, limits: Limits) -> PmFuture<'_, ()> {
        self.kernel.set_limits(limits)
    }

    fn get_limits(&self) -> PmFuture<'_, Limits> {
        self.kernel.get_limits()
    }

    fn announce(&self, token: Token, local: Endpoint) -> PmFuture<'_, ()> {
        if local.id == 0 {
            return Box::pin(async { Err(PmError::ZeroId) });
        }
        self.kernel.announce(token, local)
    }

    fn remove_address(&self, token: Token, id: u8) -> PmFuture<'_, ()> {
        if id == 0 {
            return Box::pin(async { Err(PmError::ZeroId) });
        }
        self.kernel.remove_address(token, id)
    }

    fn subflow_create(
        &self,
        token: Token,
        local: Endpoint,
        remote: SocketAddr,
    ) -> PmFuture<'_, ()> {
        if local.id == 0 {
            return Box::pin(async { Err(PmError::ZeroId) });
        }
        self.kernel.subflow_create(token, local, remote)
    }

    fn subflow_destroy(
        &self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> PmFuture<'_, ()> {
        self.kernel.subflow_destroy(token, local, remote)
    }

    fn set_backup(
        &self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
    ) -> PmFuture<'_, ()> {
        self.kernel.set_backup(token, local, remote, backup)
    }
}

impl<K: Commands> PathManager for HostPm<K> {
    fn address_id(&self, addr: IpAddr) -> Result<u8, PmError> {
        self.state().ids.get_id(addr).ok_or(PmError::IdsExhausted)
    }

    fn release_address_id(&self, addr: IpAddr) {
        let mut state = self.state();
        let in_use =
            state.owned.by_addr(addr).is_some() || state.foreign.values().any(|a| *a == addr);
        if !in_use {
            state.ids.remove_id(addr);
        }
    }

    fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, PmError> {
        self.state()
            .listeners
            .listen(addr)
            .map_err(|e| PmError::Listener {
                addr,
                reason: e.to_string(),
            })
    }

    fn close_listener(&self, addr: SocketAddr) -> Result<(), PmError> {
        self.state()
            .listeners
            .close(addr)
            .map_err(|e| PmError::Listener {
                addr,
                reason: e.to_string(),
            })
    }

    fn owned_endpoints(&self) -> Vec<Endpoint> {
        self.state().owned.all()
    }
}
