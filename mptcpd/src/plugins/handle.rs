//! The handle plugins get: the kernel's commands, with the endpoints this daemon added
//! recorded as ours, plus the ID and listener managers.

use mptcpd_common::Chain;
use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::{Mutex, MutexGuard, OnceLock, PoisonError},
};

use mptcpd_plugin::{
    BoxFuture, Commands, ConnectionView, Endpoint, EndpointFlags, IdManager, Limits, NewSubflow,
    PathDecision, PathHealth, PathManager, PathProbe, PmError, PmFuture, PmKind, ProbeOutcome,
    SubflowPath, Token, errno,
};
use tracing::{debug, info, warn};

use super::{
    Decisions, deferred_write::DeferredWrite, listeners::ListenerManager, mapped::MappedSubflows,
    owned::Owned, pm_kind, state_file::Origin,
};
use crate::connections::Connections;

#[derive(Debug)]
struct State {
    /// Rebuilt from every dump of the kernel's endpoints (`seed`).
    ids: IdManager,
    owned: Owned,
    listeners: ListenerManager,
}

/// How many `ADD_ADDR`s one endpoint gets when its id keeps being taken (see
/// `HostPm::add_to_kernel`).
const ADD_ATTEMPTS: usize = 4;

/// The daemon's [`PathManager`] over a kernel `K` (the netlink client, or a fake in tests).
#[derive(Debug)]
pub struct HostPm<K> {
    kernel: K,
    state: Mutex<State>,
    /// Kept apart from `state`: only events and subflow commands use it.
    mapped: Mutex<MappedSubflows>,
    /// The daemon's connection view, once given ([`Self::set_connections`]).
    connections: OnceLock<Connections>,
    /// The plugins' path-health decisions.
    decisions: Decisions,
    /// When the state file's deferred write of removals is due.
    deferred: DeferredWrite,
}

/// "address not found": what `DEL_ADDR` answers for an id the kernel does not have.
fn not_found(result: &Result<(), PmError>) -> bool {
    result.as_ref().is_err_and(PmError::is_not_found)
}

impl<K: Commands> HostPm<K> {
    /// A handle that remembers its endpoints in `state_file` (if any).
    pub fn new(kernel: K, state_file: Option<PathBuf>) -> Self {
        Self::with_listeners(kernel, state_file, ListenerManager::new())
    }

    /// With another listener manager (tests without MPTCP).
    pub(crate) fn with_listeners(
        kernel: K,
        state_file: Option<PathBuf>,
        listeners: ListenerManager,
    ) -> Self {
        Self {
            kernel,
            state: Mutex::new(State {
                ids: IdManager::new(),
                owned: Owned::new(state_file),
                listeners,
            }),
            mapped: Mutex::default(),
            connections: OnceLock::new(),
            decisions: Decisions::default(),
            deferred: DeferredWrite::default(),
        }
    }

    /// Returns once the state file's deferred write is due (the daemon's loop then calls
    /// [`Self::write_deferred_state`]); waits for a removal first.
    pub async fn deferred_write_due(&self) {
        self.deferred.due_passed().await;
    }

    /// Writes the removals the state file does not have yet (also at a stop).
    pub fn write_deferred_state(&self) {
        self.deferred.clear();
        self.state().owned.write_deferred();
    }

    /// After the kernel removed our endpoint `id`: forgotten now, written once the burst of
    /// removals is over.
    fn forget_removed(&self, id: u8) {
        if self.state().owned.forget_removed(id) {
            self.deferred.push_back();
        }
    }

    /// Answers [`PathManager::connection_view`] from `connections` from now on (once: a
    /// later call is ignored).
    pub fn set_connections(&self, connections: Connections) {
        if self.connections.set(connections).is_err() {
            debug!("connection view already set");
        }
    }

    /// The plugins' path-health decisions (clone it to share them: metrics, D-Bus).
    pub const fn decisions(&self) -> &Decisions {
        &self.decisions
    }

    /// The kernel side.
    pub const fn kernel(&self) -> &K {
        &self.kernel
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if it did, the data is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The subflows reported with IPv4-mapped addresses (see `plugins::mapped`).
    pub(super) fn mapped(&self) -> MutexGuard<'_, MappedSubflows> {
        self.mapped.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Removes every endpoint of ours (shutdown; suspended ones are only forgotten) and
    /// closes the listeners.
    pub(super) async fn remove_owned(&self) -> usize {
        let ours = self.state().owned.all_with_suspended();
        let removed = self.remove_all(ours, "ours").await;
        self.state().listeners.clear();
        removed
    }

    /// `ADD_ADDR`, resolving the refusals that a stale view of the kernel's ids explains;
    /// returns the endpoint as added.
    ///
    /// Other tools (`ip mptcp endpoint add` without an id) and the kernel (implicit endpoints)
    /// take ids without telling us, so an id that was free at the last dump may be taken. We
    /// still choose ids ourselves (lowest free, as the C daemon; known before the request, so
    /// it can be written down first) and, when the kernel refuses one as taken, re-read its
    /// endpoints, rebuild the ID manager and ask again with a fresh id: a retry fails only if
    /// yet another tool takes the new id between that dump and the request, so a few
    /// attempts suffice. Letting the kernel choose every id instead would cost a dump after
    /// every add to learn the id, and leave no id to record before the request.
    ///
    /// An implicit endpoint of the address itself is refused for every explicit id (`EBUSY`
    /// for its own, `EINVAL` for another): then we ask without an id, and the kernel hands
    /// its id over to our endpoint, leaving the subflows that use it alone.
    async fn add_to_kernel(
        &self,
        mut endpoint: Endpoint,
        origin: Origin,
    ) -> Result<Endpoint, PmError> {
        let mut attempt = 1;
        // The id the kernel will give: the endpoint's own, or that of an implicit endpoint
        // taken over (asked for with id 0).
        let mut expected = endpoint.id;
        loop {
            let refused = match self.add_recorded(endpoint, expected, origin).await {
                Ok(added) => return Ok(added),
                Err(e) => e,
            };
            if attempt == ADD_ATTEMPTS || !(refused.is_id_taken() || refused.is_invalid()) {
                return Err(refused);
            }
            attempt += 1;
            let kernel = self.kernel.dump_endpoints().await?;
            let mut state = self.state();
            seed(&mut state, &kernel);
            if let Some(implicit) = implicit_for(&kernel, &endpoint) {
                info!(addr = %endpoint.addr, "taking over the kernel's implicit endpoint");
                endpoint.id = 0;
                expected = implicit;
            } else if refused.is_id_taken() {
                state.ids.remove_id(endpoint.addr);
                let fresh = state
                    .ids
                    .get_id(endpoint.addr)
                    .ok_or(PmError::IdsExhausted)?;
                debug!(addr = %endpoint.addr, taken = endpoint.id, fresh, "address id taken meanwhile");
                endpoint.id = fresh;
                expected = fresh;
            } else {
                return Err(refused);
            }
        }
    }

    async fn remove_all(&self, endpoints: Vec<Endpoint>, why: &str) -> usize {
        let mut removed = 0;
        for e in endpoints {
            if self.state().owned.suspended(e.id).is_some() {
                // Not in the kernel: the id may be another tool's there now.
                info!(id = e.id, addr = %e.addr, "forgot suspended endpoint ({why})");
                let mut state = self.state();
                state.owned.forget_removed(e.id);
                state.ids.remove_id(e.addr);
                removed += 1;
                continue;
            }
            let result = self.kernel.remove_endpoint(e.id).await;
            if result.is_ok() || not_found(&result) {
                info!(id = e.id, addr = %e.addr, "removed endpoint ({why})");
                removed += 1;
                let mut state = self.state();
                state.owned.forget_removed(e.id);
                state.ids.remove_id(e.addr);
            } else if let Err(err) = result {
                // Still ours, and still recorded: the next run removes it or adopts it.
                warn!("removing endpoint {} ({}): {}", e.id, e.addr, Chain(&err));
            }
        }
        // One write for them all, not one between two `DEL_ADDR`s.
        self.write_deferred_state();
        removed
    }

    /// Adds `endpoint` with its intent recorded first, so that a crash between the kernel's
    /// answer and the record's confirmation still leaves the next run a record to match.
    /// `expected` is the id the kernel will give (an implicit endpoint's when `endpoint.id` is
    /// 0); the endpoint is recorded with the id the kernel really gave.
    async fn add_recorded(
        &self,
        endpoint: Endpoint,
        expected: u8,
        origin: Origin,
    ) -> Result<Endpoint, PmError> {
        let intent = Endpoint {
            id: expected,
            ..endpoint
        };
        self.state().owned.intend(intent, origin);
        let result = self.kernel.add_endpoint(endpoint).await;
        let mut state = self.state();
        match result {
            Ok(id) => {
                let added = Endpoint { id, ..endpoint };
                if id != expected {
                    state.owned.abandon(intent);
                }
                state.owned.insert(added, origin);
                Ok(added)
            }
            Err(e) => {
                state.owned.abandon(intent);
                Err(e)
            }
        }
    }

    /// Adds an endpoint for an operator (D-Bus): recorded as the operator's, so never removed
    /// by the daemon and its id kept from the plugins. With id 0 the daemon picks the lowest
    /// free id (asking again if another tool takes it meanwhile); an id given is used as is,
    /// the kernel's refusal answered. Returns the id.
    pub async fn add_operator_endpoint(&self, mut endpoint: Endpoint) -> Result<u8, PmError> {
        let added = if endpoint.id == 0 {
            let kernel = self.kernel.dump_endpoints().await?;
            endpoint.id = self.fresh_id(&kernel, endpoint.addr)?;
            let added = self.add_to_kernel(endpoint, Origin::Operator).await;
            if added.is_err() {
                self.state().ids.remove_id(endpoint.addr);
            }
            added?
        } else {
            self.add_recorded(endpoint, endpoint.id, Origin::Operator)
                .await?
        };
        self.state().ids.map_id(added.addr, added.id);
        info!(id = added.id, addr = %added.addr, "endpoint added for an operator");
        Ok(added.id)
    }

    /// The ID manager rebuilt from `kernel`, then `addr`'s id (its own, or the lowest free).
    fn fresh_id(&self, kernel: &[Endpoint], addr: IpAddr) -> Result<u8, PmError> {
        let mut state = self.state();
        seed(&mut state, kernel);
        state.ids.get_id(addr).ok_or(PmError::IdsExhausted)
    }

    /// Removes every endpoint the daemon recorded, the plugins' and the operators'; returns
    /// how many.
    pub async fn remove_recorded(&self) -> usize {
        let all = self
            .state()
            .owned
            .with_origins()
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        self.remove_all(all, "flush").await
    }

    /// The endpoints the daemon recorded, with whose they are.
    #[must_use]
    pub fn recorded(&self) -> Vec<(Endpoint, Origin)> {
        self.state().owned.with_origins()
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

/// Rebuilds the ID manager from a dump: ours give their address its id; the ids of the
/// others (other tools', the kernel's implicit ones) are kept off, and their addresses get
/// ids of their own if a plugin asks (an `ADD_ADDR` for such an address is the kernel's to
/// refuse or, for an implicit endpoint, to hand over).
fn seed(state: &mut State, kernel: &[Endpoint]) {
    let (ours, others): (Vec<&Endpoint>, Vec<&Endpoint>) =
        kernel.iter().partition(|e| state.owned.contains(e.id));
    // Suspended ones keep their address's id: they come back with it.
    let suspended = state.owned.all_suspended();
    state.ids.sync(
        ours.iter()
            .map(|e| (e.addr, e.id))
            .chain(suspended.iter().map(|e| (e.addr, e.id))),
        others.iter().map(|e| e.id),
    );
}

/// What the handle answers for an id that is not one of ours in the kernel.
fn not_ours(id: u8) -> PmError {
    PmError::kernel(
        errno::EINVAL,
        Some(&format!("endpoint {id} not found among this daemon's")),
    )
}

/// The id of the kernel's implicit endpoint for the endpoint's address (and port), if any.
fn implicit_for(kernel: &[Endpoint], endpoint: &Endpoint) -> Option<u8> {
    kernel
        .iter()
        .find(|k| {
            k.addr == endpoint.addr
                && k.port == endpoint.port
                && k.flags.contains(EndpointFlags::IMPLICIT)
        })
        .map(|k| k.id)
}

impl<K: Commands> Commands for HostPm<K> {
    /// Adds and records as ours; an identical endpoint of ours is adopted without asking the
    /// kernel, one of ours for the same address with other values is replaced. The id may
    /// differ from the one asked for when that one was taken meanwhile (see
    /// `HostPm::add_to_kernel`).
    fn add_endpoint(&self, endpoint: Endpoint) -> PmFuture<'_, u8> {
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
                        return Ok(mine.id);
                    }
                    Some(mine) => Some(mine.id),
                    None => None,
                }
            };
            // Ours but suspended (adopted so after a restart): added again for real.
            let suspended = self.state().owned.suspended_by_addr(endpoint.addr);
            if let Some(suspended) = suspended {
                self.forget_removed(suspended.id);
            }
            if let Some(old) = replaced {
                let result = self.kernel.remove_endpoint(old).await;
                if !not_found(&result) {
                    result?;
                }
                self.forget_removed(old);
            }
            let added = self.add_to_kernel(endpoint, Origin::Daemon).await?;
            let mut state = self.state();
            state.ids.map_id(added.addr, added.id);
            Ok(added.id)
        })
    }

    /// A suspended endpoint of ours is only forgotten (it is not in the kernel).
    fn remove_endpoint(&self, id: u8) -> PmFuture<'_, ()> {
        Box::pin(async move {
            {
                let mut state = self.state();
                if state.owned.suspended(id).is_some() {
                    state.owned.remove(id);
                    debug!(id, "suspended endpoint forgotten");
                    return Ok(());
                }
            }
            let result = self.kernel.remove_endpoint(id).await;
            if result.is_ok() || not_found(&result) {
                self.forget_removed(id);
            }
            result
        })
    }

    fn get_endpoint(&self, id: u8) -> PmFuture<'_, Endpoint> {
        self.kernel.get_endpoint(id)
    }

    /// The kernel's endpoints; the ID manager is rebuilt from them.
    fn dump_endpoints(&self) -> PmFuture<'_, Vec<Endpoint>> {
        Box::pin(async move {
            let kernel = self.kernel.dump_endpoints().await?;
            seed(&mut self.state(), &kernel);
            Ok(kernel)
        })
    }

    fn flush_endpoints(&self) -> PmFuture<'_, ()> {
        Box::pin(async move {
            self.kernel.flush_endpoints().await?;
            let mut state = self.state();
            state.owned.clear();
            seed(&mut state, &[]);
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
                    Err(e) => warn!("reading endpoint {id} after a flag change: {}", Chain(&e)),
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

    fn subflow_create(&self, subflow: NewSubflow) -> PmFuture<'_, ()> {
        if subflow.local.id == 0 {
            return Box::pin(async { Err(PmError::ZeroId) });
        }
        self.kernel.subflow_create(subflow)
    }

    fn subflow_destroy(&self, subflow: SubflowPath) -> PmFuture<'_, ()> {
        let subflow = self.mapped().to_kernel(subflow);
        self.kernel.subflow_destroy(subflow)
    }

    fn set_backup(&self, subflow: SubflowPath, backup: bool) -> PmFuture<'_, ()> {
        let subflow = self.mapped().to_kernel(subflow);
        self.kernel.set_backup(subflow, backup)
    }
}

impl<K: Commands> PathManager for HostPm<K> {
    fn address_id(&self, addr: IpAddr) -> Result<u8, PmError> {
        self.state().ids.get_id(addr).ok_or(PmError::IdsExhausted)
    }

    fn release_address_id(&self, addr: IpAddr) {
        let mut state = self.state();
        // An operator's endpoint keeps its address's id too.
        let recorded = state
            .owned
            .with_origins()
            .iter()
            .any(|(e, _)| e.addr == addr);
        if !recorded {
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

    fn suspend_endpoint(&self, id: u8) -> PmFuture<'_, ()> {
        Box::pin(async move {
            if !self.state().owned.suspend(id) {
                return Err(not_ours(id));
            }
            let result = self.kernel.remove_endpoint(id).await;
            match result {
                Ok(()) => Ok(()),
                // Out of the kernel already: suspended all the same.
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => {
                    self.state().owned.unsuspend(id);
                    Err(e)
                }
            }
        })
    }

    fn resume_endpoint(&self, id: u8, flags: EndpointFlags) -> PmFuture<'_, bool> {
        Box::pin(async move {
            let Some(suspended) = self.state().owned.suspended(id) else {
                return Ok(false);
            };
            let endpoint = Endpoint { flags, ..suspended };
            self.state().owned.resuming(endpoint);
            // The same id, or nothing: the plugin that added it removes it by that id.
            self.kernel.add_endpoint(endpoint).await?;
            let still_ours = {
                let mut state = self.state();
                let ours = state.owned.suspended(id).is_some();
                if ours {
                    state.owned.unsuspend(id);
                    state.ids.map_id(endpoint.addr, id);
                }
                ours
            };
            if still_ours {
                Ok(true)
            } else {
                // Removed while the kernel added it: take it out again.
                let result = self.kernel.remove_endpoint(id).await;
                if !(result.is_ok() || not_found(&result)) {
                    result?;
                }
                Ok(false)
            }
        })
    }

    fn pm_kind(&self) -> PmKind {
        pm_kind::read()
    }

    fn connection_view(&self, token: Token) -> Option<ConnectionView> {
        self.connections.get()?.get(token)
    }

    fn connection_views(&self) -> Vec<ConnectionView> {
        self.connections
            .get()
            .map(Connections::all)
            .unwrap_or_default()
    }

    fn report_decision(&self, decision: PathDecision) {
        self.decisions().record(decision);
    }

    fn path_health(&self, addr: IpAddr) -> PathHealth {
        self.decisions().health(addr)
    }

    fn probe_path(&self, probe: PathProbe) -> Option<BoxFuture<'static, ProbeOutcome>> {
        Some(super::probe::spawn(probe))
    }
}

#[cfg(test)]
#[path = "handle_tests.rs"]
mod tests;
