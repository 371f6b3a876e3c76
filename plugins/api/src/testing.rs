//! A recording fake of the path manager and a tiny executor, for unit tests of plugin
//! decisions without a kernel.
//!
//! [`RecordingPm`] keeps an endpoint table like the kernel's and answers `ADD_ADDR` as the
//! kernel does (checked against the real one by the `mptcpd-tests` test
//! `the_fake_kernel_answers_adds_like_the_real_one`): `ERANGE` past 8 endpoints, then `EBUSY`
//! for a taken id, `EEXIST` for a duplicate address; id 0 makes it choose an id the way the
//! kernel does (upwards from the highest given so far) or take over an implicit endpoint of
//! the address, keeping its id (an explicit id for that address is `EINVAL`). It records
//! every command in order, and can be told to fail the next command of a kind with an errno.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    future::{self, Future},
    net::{IpAddr, SocketAddr},
    pin::pin,
    sync::{Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use crate::{
    BoxFuture, Commands, Connection, ConnectionView, Endpoint, EndpointFlags, Event, EventFlags,
    IdManager, Interface, Limits, NewSubflow, OperState, PathDecision, PathHealth, PathManager,
    PathProbe, PmError, PmFuture, PmKind, ProbeOutcome, Subflow, SubflowPath, Token,
};
use mptcpd_netmon::{IFF_LOWER_UP, IFF_RUNNING, IFF_UP};

pub use crate::errno::{EBUSY, EEXIST, EINVAL, ERANGE};

/// The kernel's limit on endpoints per network namespace.
const MAX_ENDPOINTS: usize = 8;

/// `ARPHRD_ETHER`: the link type of an Ethernet (or veth) interface.
const ARPHRD_ETHER: u16 = 1;

/// Runs a future that never waits (the fake answers at once).
///
/// # Panics
///
/// If the future is not ready at the first poll.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a future waited; the fake path manager never does"),
    }
}

/// A ready Ethernet interface named `eth{index}` (up, running, carrier, operationally up:
/// as the network monitor reports it).
#[must_use]
pub fn interface(index: u32) -> Interface {
    Interface {
        index,
        name: format!("eth{index}"),
        flags: IFF_UP | IFF_RUNNING | IFF_LOWER_UP,
        oper_state: OperState::Up,
        link_type: ARPHRD_ETHER,
    }
}

/// [`Event::NewLocalAddress`] of `addr` on [`interface`]`(index)`.
#[must_use]
pub fn address_up(index: u32, addr: IpAddr) -> Event {
    Event::NewLocalAddress {
        iface: interface(index),
        addr,
    }
}

/// A connection event's payload for `path` (the initial subflow): ids 0, client side.
#[must_use]
pub const fn connection(path: SubflowPath) -> Connection {
    let SubflowPath {
        token,
        local,
        remote,
    } = path;
    Connection {
        token,
        local,
        remote,
        local_id: Some(0),
        remote_id: Some(0),
        flags: EventFlags::empty(),
    }
}

/// A subflow event's payload for `path`: local id 1, remote id 0, not backup, no interface,
/// no error.
#[must_use]
pub const fn subflow(path: SubflowPath) -> Subflow {
    let SubflowPath {
        token,
        local,
        remote,
    } = path;
    Subflow {
        token,
        local,
        remote,
        local_id: 1,
        remote_id: 0,
        backup: false,
        if_idx: None,
        error: None,
        reset_reason: None,
        reset_flags: None,
    }
}

/// [`Event::DeleteLocalAddress`] of `addr` on [`interface`]`(index)`.
#[must_use]
pub fn address_down(index: u32, addr: IpAddr) -> Event {
    Event::DeleteLocalAddress {
        iface: interface(index),
        addr,
    }
}

/// One command as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `add_endpoint`.
    AddEndpoint(Endpoint),
    /// `remove_endpoint`.
    RemoveEndpoint(u8),
    /// `get_endpoint`.
    GetEndpoint(u8),
    /// `dump_endpoints`.
    DumpEndpoints,
    /// `flush_endpoints`.
    FlushEndpoints,
    /// `set_endpoint_flags`.
    SetEndpointFlags(u8, EndpointFlags),
    /// `set_limits`.
    SetLimits(Limits),
    /// `get_limits`.
    GetLimits,
    /// `announce`.
    Announce(Token, Endpoint),
    /// `remove_address`.
    RemoveAddress(Token, u8),
    /// `subflow_create`.
    SubflowCreate(NewSubflow),
    /// `subflow_destroy`.
    SubflowDestroy(SubflowPath),
    /// `set_backup`.
    SetBackup(SubflowPath, bool),
    /// `suspend_endpoint`.
    SuspendEndpoint(u8),
    /// `resume_endpoint`.
    ResumeEndpoint(u8, EndpointFlags),
    /// `listen` (the address asked for).
    Listen(SocketAddr),
    /// `close_listener`.
    CloseListener(SocketAddr),
    /// `probe_path` (answered only after [`RecordingPm::answer_probes`]).
    ProbePath(PathProbe),
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    endpoints: BTreeMap<u8, Endpoint>,
    limits: Limits,
    /// The kernel's `next_id`: where its own choice of an id starts.
    next_id: u8,
    /// Ids of endpoints put in by [`RecordingPm::insert_endpoint`] (another tool's).
    foreign: BTreeSet<u8>,
    ids: IdManager,
    /// Listening address -> references.
    listeners: HashMap<SocketAddr, usize>,
    next_port: u16,
    /// Errnos to fail the next commands whose name is the key with, in order.
    failures: HashMap<&'static str, VecDeque<i32>>,
    /// What `connection_view` answers, per token.
    views: HashMap<Token, ConnectionView>,
    /// What plugins reported, in order.
    decisions: Vec<PathDecision>,
    /// Each address's latest reported health (kept by `take_decisions`).
    health: HashMap<IpAddr, PathHealth>,
    /// Endpoints of ours taken out of the table by `suspend_endpoint`, by id.
    suspended: BTreeMap<u8, Endpoint>,
    /// What `pm_kind` answers.
    pm_kind: PmKind,
    /// What every `probe_path` ends with; `None`: it cannot probe.
    probe_outcome: Option<ProbeOutcome>,
}

/// A fake [`PathManager`] that records commands and keeps a kernel-like endpoint table.
#[derive(Debug, Default)]
pub struct RecordingPm {
    state: Mutex<State>,
}

impl RecordingPm {
    /// An empty fake.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `connection_view(view.token)` answer `view` (the daemon's view of a connection,
    /// figures included, as a test wants it) until [`Self::forget_connection_view`].
    pub fn set_connection_view(&self, view: ConnectionView) {
        self.state().views.insert(view.token, view);
    }

    /// Makes `connection_view(token)` answer `None` again.
    pub fn forget_connection_view(&self, token: Token) {
        self.state().views.remove(&token);
    }

    /// Makes every later `probe_path` end with `outcome` at once (by default the fake cannot
    /// probe: `probe_path` answers `None`).
    pub fn answer_probes(&self, outcome: ProbeOutcome) {
        self.state().probe_outcome = Some(outcome);
    }

    /// Makes `pm_kind` answer `kind` (the in-kernel path manager by default).
    pub fn set_pm_kind(&self, kind: PmKind) {
        self.state().pm_kind = kind;
    }

    /// The endpoints suspended (out of the table, still ours).
    #[must_use]
    pub fn suspended(&self) -> Vec<Endpoint> {
        self.state().suspended.values().copied().collect()
    }

    /// The path-health decisions reported so far, then forgets them.
    pub fn take_decisions(&self) -> Vec<PathDecision> {
        std::mem::take(&mut self.state().decisions)
    }

    /// The commands received since the last call, in order.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state().calls)
    }

    /// The endpoint table.
    #[must_use]
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.state().endpoints.values().copied().collect()
    }

    /// The limits last set.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.state().limits
    }

    /// Open listeners and their references.
    #[must_use]
    pub fn listeners(&self) -> HashMap<SocketAddr, usize> {
        self.state().listeners.clone()
    }

    /// Puts an endpoint in the table as another tool (or the kernel, for an implicit one)
    /// would; not recorded as a call. Its id is kept off like the daemon keeps off other
    /// tools' ids.
    pub fn insert_endpoint(&self, endpoint: Endpoint) {
        let mut state = self.state();
        state.endpoints.insert(endpoint.id, endpoint);
        state.foreign.insert(endpoint.id);
        state.next_id = state.next_id.max(endpoint.id);
        let State {
            endpoints,
            foreign,
            ids,
            ..
        } = &mut *state;
        let mine = endpoints.values().filter(|e| !foreign.contains(&e.id));
        ids.sync(
            mine.map(|e| (e.addr, e.id)).collect::<Vec<_>>(),
            foreign.iter().copied(),
        );
    }

    /// Fails the next `command` (a [`Commands`] method name) with `errno`; called again
    /// before that, the one after too, and so on.
    pub fn fail_next(&self, command: &'static str, errno: i32) {
        self.state()
            .failures
            .entry(command)
            .or_default()
            .push_back(errno);
    }

    fn run<T: Send + 'static>(
        &self,
        name: &'static str,
        call: Call,
        apply: impl FnOnce(&mut State) -> Result<T, PmError>,
    ) -> PmFuture<'_, T> {
        let mut state = self.state();
        state.calls.push(call);
        let injected = state.failures.get_mut(name).and_then(VecDeque::pop_front);
        let result = match injected {
            Some(errno) => Err(kernel(errno, "injected")),
            None => apply(&mut state),
        };
        Box::pin(future::ready(result))
    }
}

fn kernel(errno: i32, message: &str) -> PmError {
    PmError::kernel(errno, Some(message))
}

/// The kernel's refusal of an `ADD_ADDR` (one message for all of them).
fn add_refused(errno: i32) -> PmError {
    kernel(
        errno,
        &format!("too many addresses or duplicate one: -{errno}"),
    )
}

/// `ADD_ADDR` as the kernel's `mptcp_pm_nl_append_new_local_addr` does it, checks in its
/// order; returns the id.
fn add(s: &mut State, mut endpoint: Endpoint) -> Result<u8, PmError> {
    if s.next_id == u8::MAX {
        s.next_id = 1;
    }
    if s.endpoints.len() >= MAX_ENDPOINTS {
        return Err(add_refused(ERANGE));
    }
    if endpoint.id != 0 && s.endpoints.contains_key(&endpoint.id) {
        return Err(add_refused(EBUSY));
    }
    let same = s
        .endpoints
        .values()
        .find(|e| e.addr == endpoint.addr && e.port == endpoint.port)
        .copied();
    if let Some(current) = same {
        if !current.flags.contains(EndpointFlags::IMPLICIT) {
            return Err(add_refused(EEXIST));
        }
        // Only a request without an id takes an implicit endpoint over.
        if endpoint.id != 0 {
            return Err(add_refused(EINVAL));
        }
        s.endpoints.remove(&current.id);
        s.foreign.remove(&current.id);
        endpoint.id = current.id;
    }
    if endpoint.id == 0 {
        let start = s.next_id.max(1);
        let free = |id: &u8| !s.endpoints.contains_key(id);
        endpoint.id = (start..=u8::MAX)
            .find(free)
            .or_else(|| (1..start).find(free))
            .ok_or_else(|| add_refused(EINVAL))?;
    }
    s.next_id = s.next_id.max(endpoint.id);
    s.endpoints.insert(endpoint.id, endpoint);
    Ok(endpoint.id)
}

impl Commands for RecordingPm {
    fn add_endpoint(&self, endpoint: Endpoint) -> PmFuture<'_, u8> {
        self.run("add_endpoint", Call::AddEndpoint(endpoint), |s| {
            add(s, endpoint)
        })
    }

    fn remove_endpoint(&self, id: u8) -> PmFuture<'_, ()> {
        self.run("remove_endpoint", Call::RemoveEndpoint(id), |s| {
            // A suspended one is only forgotten: the id may be another's in the table now.
            if s.suspended.remove(&id).is_some() {
                return Ok(());
            }
            s.foreign.remove(&id);
            s.endpoints
                .remove(&id)
                .map(drop)
                .ok_or_else(|| kernel(EINVAL, "address not found"))
        })
    }

    fn get_endpoint(&self, id: u8) -> PmFuture<'_, Endpoint> {
        self.run("get_endpoint", Call::GetEndpoint(id), |s| {
            s.endpoints
                .get(&id)
                .copied()
                .ok_or_else(|| kernel(EINVAL, "address not found"))
        })
    }

    fn dump_endpoints(&self) -> PmFuture<'_, Vec<Endpoint>> {
        self.run("dump_endpoints", Call::DumpEndpoints, |s| {
            Ok(s.endpoints.values().copied().collect())
        })
    }

    fn flush_endpoints(&self) -> PmFuture<'_, ()> {
        self.run("flush_endpoints", Call::FlushEndpoints, |s| {
            s.endpoints.clear();
            s.foreign.clear();
            Ok(())
        })
    }

    fn set_endpoint_flags(&self, id: u8, flags: EndpointFlags) -> PmFuture<'_, ()> {
        self.run(
            "set_endpoint_flags",
            Call::SetEndpointFlags(id, flags),
            |s| match s.endpoints.get_mut(&id) {
                Some(e) => {
                    e.flags = flags;
                    Ok(())
                }
                None => Err(kernel(EINVAL, "address not found")),
            },
        )
    }

    fn set_limits(&self, limits: Limits) -> PmFuture<'_, ()> {
        self.run("set_limits", Call::SetLimits(limits), |s| {
            if limits.subflows > 8 || limits.add_addr_accepted > 8 {
                return Err(kernel(EINVAL, "limit greater than maximum (8)"));
            }
            s.limits = limits;
            Ok(())
        })
    }

    fn get_limits(&self) -> PmFuture<'_, Limits> {
        self.run("get_limits", Call::GetLimits, |s| Ok(s.limits))
    }

    fn announce(&self, token: Token, local: Endpoint) -> PmFuture<'_, ()> {
        self.run("announce", Call::Announce(token, local), |_| Ok(()))
    }

    fn remove_address(&self, token: Token, id: u8) -> PmFuture<'_, ()> {
        self.run("remove_address", Call::RemoveAddress(token, id), |_| Ok(()))
    }

    fn subflow_create(&self, subflow: NewSubflow) -> PmFuture<'_, ()> {
        self.run("subflow_create", Call::SubflowCreate(subflow), |_| Ok(()))
    }

    fn subflow_destroy(&self, subflow: SubflowPath) -> PmFuture<'_, ()> {
        self.run("subflow_destroy", Call::SubflowDestroy(subflow), |_| Ok(()))
    }

    fn set_backup(&self, subflow: SubflowPath, backup: bool) -> PmFuture<'_, ()> {
        self.run("set_backup", Call::SetBackup(subflow, backup), |_| Ok(()))
    }
}

impl PathManager for RecordingPm {
    fn address_id(&self, addr: IpAddr) -> Result<u8, PmError> {
        self.state().ids.get_id(addr).ok_or(PmError::IdsExhausted)
    }

    fn release_address_id(&self, addr: IpAddr) {
        let mut state = self.state();
        let mine = state
            .endpoints
            .values()
            .any(|e| e.addr == addr && !state.foreign.contains(&e.id));
        if !mine {
            state.ids.remove_id(addr);
        }
    }

    fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, PmError> {
        let mut state = self.state();
        state.calls.push(Call::Listen(addr));
        let bound = if addr.port() == 0 {
            if let Some(existing) = state.listeners.keys().find(|l| l.ip() == addr.ip()) {
                *existing
            } else {
                state.next_port += 1;
                SocketAddr::new(addr.ip(), 40_000 + state.next_port)
            }
        } else {
            addr
        };
        *state.listeners.entry(bound).or_default() += 1;
        Ok(bound)
    }

    fn close_listener(&self, addr: SocketAddr) -> Result<(), PmError> {
        let mut state = self.state();
        state.calls.push(Call::CloseListener(addr));
        let Some(refs) = state.listeners.get_mut(&addr) else {
            return Err(PmError::Listener {
                addr,
                reason: "not listening".to_owned(),
            });
        };
        *refs -= 1;
        if *refs == 0 {
            state.listeners.remove(&addr);
        }
        Ok(())
    }

    fn owned_endpoints(&self) -> Vec<Endpoint> {
        let state = self.state();
        state
            .endpoints
            .values()
            .filter(|e| !state.foreign.contains(&e.id))
            .copied()
            .collect()
    }

    fn suspend_endpoint(&self, id: u8) -> PmFuture<'_, ()> {
        self.run("suspend_endpoint", Call::SuspendEndpoint(id), |s| {
            if s.foreign.contains(&id) {
                return Err(kernel(EINVAL, "address not found"));
            }
            let endpoint = s
                .endpoints
                .remove(&id)
                .ok_or_else(|| kernel(EINVAL, "address not found"))?;
            s.suspended.insert(id, endpoint);
            Ok(())
        })
    }

    fn resume_endpoint(&self, id: u8, flags: EndpointFlags) -> PmFuture<'_, bool> {
        self.run("resume_endpoint", Call::ResumeEndpoint(id, flags), |s| {
            let Some(endpoint) = s.suspended.get(&id).copied() else {
                return Ok(false);
            };
            add(s, Endpoint { flags, ..endpoint })?;
            s.suspended.remove(&id);
            Ok(true)
        })
    }

    fn pm_kind(&self) -> PmKind {
        self.state().pm_kind
    }

    fn connection_view(&self, token: Token) -> Option<ConnectionView> {
        self.state().views.get(&token).cloned()
    }

    fn connection_views(&self) -> Vec<ConnectionView> {
        self.state().views.values().cloned().collect()
    }

    fn report_decision(&self, decision: PathDecision) {
        let mut state = self.state();
        state.health.insert(decision.addr, decision.to);
        state.decisions.push(decision);
    }

    fn path_health(&self, addr: IpAddr) -> PathHealth {
        self.state().health.get(&addr).copied().unwrap_or_default()
    }

    fn probe_path(&self, probe: PathProbe) -> Option<BoxFuture<'static, ProbeOutcome>> {
        let mut state = self.state();
        let outcome = state.probe_outcome.clone()?;
        state.calls.push(Call::ProbePath(probe));
        Some(Box::pin(future::ready(outcome)))
    }
}

#[cfg(test)]
mod tests {
    use super::RecordingPm;
    use crate::{ConnectionView, PathManager as _, SubflowView};

    #[test]
    fn the_connection_view_is_what_the_test_set() {
        let pm = RecordingPm::new();
        assert_eq!(pm.connection_view(7), None, "none by default");
        let local = "192.0.2.1:4000".parse().unwrap();
        let remote = "198.51.100.2:80".parse().unwrap();
        let mut view = ConnectionView::new(7, local, remote);
        view.subflows.push(SubflowView::new(local, remote));
        pm.set_connection_view(view.clone());
        assert_eq!(pm.connection_view(7), Some(view));
        assert_eq!(pm.connection_view(8), None);
        pm.forget_connection_view(7);
        assert_eq!(pm.connection_view(7), None);
        assert!(pm.take_calls().is_empty(), "not a command");
    }
}
