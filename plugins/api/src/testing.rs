//! A recording fake of the path manager and a tiny executor, for unit tests of plugin
//! decisions without a kernel.
//!
//! [`RecordingPm`] keeps an endpoint table like the kernel's (8 endpoints at most, no
//! duplicate address or id), records every command in order, and can be told to fail the next
//! command of a kind with an errno.

use std::{
    collections::{BTreeMap, HashMap},
    future::{self, Future},
    net::{IpAddr, SocketAddr},
    pin::pin,
    sync::{Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use crate::{
    Commands, Endpoint, EndpointFlags, IdManager, Limits, PathManager, PmError, PmFuture, Token,
};

/// The kernel's `ERANGE`: no room for another endpoint.
pub const ERANGE: i32 = 34;
/// The kernel's `EEXIST`.
pub const EEXIST: i32 = 17;
/// The kernel's `EINVAL`.
pub const EINVAL: i32 = 22;

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
    SubflowCreate(Token, Endpoint, SocketAddr),
    /// `subflow_destroy`.
    SubflowDestroy(Token, SocketAddr, SocketAddr),
    /// `set_backup`.
    SetBackup(Token, SocketAddr, SocketAddr, bool),
    /// `listen` (the address asked for).
    Listen(SocketAddr),
    /// `close_listener`.
    CloseListener(SocketAddr),
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    endpoints: BTreeMap<u8, Endpoint>,
    limits: Limits,
    ids: IdManager,
    /// Listening address -> references.
    listeners: HashMap<SocketAddr, usize>,
    next_port: u16,
    /// Errno to fail the next command whose name is the key with.
    failures: HashMap<&'static str, i32>,
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

    /// The commands received so far, then forgets them.
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

    /// Puts an endpoint in the table as another tool would (not recorded as a call).
    pub fn insert_endpoint(&self, endpoint: Endpoint) {
        let mut state = self.state();
        state.ids.map_id(endpoint.addr, endpoint.id);
        state.endpoints.insert(endpoint.id, endpoint);
    }

    /// Fails the next `command` (a [`Commands`] method name) with `errno`.
    pub fn fail_next(&self, command: &'static str, errno: i32) {
        self.state().failures.insert(command, errno);
    }

    fn run<T: Send + 'static>(
        &self,
        name: &'static str,
        call: Call,
        apply: impl FnOnce(&mut State) -> Result<T, PmError>,
    ) -> PmFuture<'_, T> {
        let mut state = self.state();
        state.calls.push(call);
        let result = match state.failures.remove(name) {
            Some(errno) => Err(kernel(errno, "injected")),
            None => apply(&mut state),
        };
        Box::pin(future::ready(result))
    }
}

fn kernel(errno: i32, message: &str) -> PmError {
    PmError::Kernel {
        errno,
        message: Some(message.to_owned()),
    }
}

impl Commands for RecordingPm {
    fn add_endpoint(&self, endpoint: Endpoint) -> PmFuture<'_, ()> {
        self.run("add_endpoint", Call::AddEndpoint(endpoint), |s| {
            if s.endpoints.contains_key(&endpoint.id)
                || s.endpoints.values().any(|e| e.addr == endpoint.addr)
            {
                return Err(kernel(EEXIST, "address already exists"));
            }
            if s.endpoints.len() >= 8 {
                return Err(kernel(ERANGE, "too many addresses"));
            }
            s.endpoints.insert(endpoint.id, endpoint);
            Ok(())
        })
    }

    fn remove_endpoint(&self, id: u8) -> PmFuture<'_, ()> {
        self.run("remove_endpoint", Call::RemoveEndpoint(id), |s| {
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

    fn subflow_create(
        &self,
        token: Token,
        local: Endpoint,
        remote: SocketAddr,
    ) -> PmFuture<'_, ()> {
        self.run(
            "subflow_create",
            Call::SubflowCreate(token, local, remote),
            |_| Ok(()),
        )
    }

    fn subflow_destroy(
        &self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> PmFuture<'_, ()> {
        self.run(
            "subflow_destroy",
            Call::SubflowDestroy(token, local, remote),
            |_| Ok(()),
        )
    }

    fn set_backup(
        &self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
    ) -> PmFuture<'_, ()> {
        self.run(
            "set_backup",
            Call::SetBackup(token, local, remote, backup),
            |_| Ok(()),
        )
    }
}

impl PathManager for RecordingPm {
    fn address_id(&self, addr: IpAddr) -> Result<u8, PmError> {
        self.state().ids.get_id(addr).ok_or(PmError::IdsExhausted)
    }

    fn release_address_id(&self, addr: IpAddr) {
        let mut state = self.state();
        let foreign = state.endpoints.values().any(|e| e.addr == addr);
        if !foreign {
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
        self.endpoints()
    }
}
