//! `mesh`, a subflow between every pair of local and peer addresses, for the userspace path
//! manager (`net.mptcp.pm_type=1`): what the in-kernel path manager does with endpoints
//! flagged `subflow,fullmesh`, decided here instead. Not to be confused with that flag, which
//! only the in-kernel path manager reads (`addr-flags=fullmesh`).
//!
//! - Once a connection is established, a subflow is created from every usable local address
//!   (the network monitor's, of the peer address's family) to the peer's initial address and
//!   to each address the peer announces (`ANNOUNCED`, also later ones), bound to the local
//!   address's interface, with the address's id from the ID manager. The initial subflow's
//!   pair is skipped. On the server side only the announced addresses are joined: the
//!   client's initial port listens for nothing.
//! - At most `max-subflows` subflows made by the plugin (or re-created from its pairs by
//!   another plugin) are open per connection (default: the
//!   kernel's subflow limit, `GET_LIMITS`, read when a connection is established and kept
//!   for [`LIMIT_MAX_AGE`]: a storm of connections costs one request each, not two). A
//!   subflow that closes (or that the kernel refused) frees its place for a pair not tried
//!   yet, taken at the next announcement: not at once, as a closing connection closes its
//!   subflows one by one. A pair is tried once per connection, so a refused or failing path
//!   is not hammered.
//! - On close, what the connection held is released: each address id goes back to the ID
//!   manager once no connection the plugin tracks uses the address. The plugin takes no
//!   listener (it joins, it announces nothing).
//!
//! A pair is never re-created: `SUBFLOW_DESTROY` drops the local address from the
//! connection's list, so whoever re-creates one must re-announce the address under the same
//! id (see the reference notes on the userspace path manager). `health` does, for the
//! subflows of a path it judged dead; meanwhile `mesh` opens no subflow from that address
//! (`PathManager::path_health`).
//!
//! State sits behind one `std::sync::Mutex`, taken between the kernel's answers and never
//! across one, as in `sspi`.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, SocketAddr},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use mptcpd_plugin::{
    BoxFuture, Chain, Connection, Endpoint, EndpointFlags, Event, NewSubflow, PathHealth,
    PathManager, Plugin, PluginConfig, RemoteAddress, Subflow, Token,
};
use tracing::{debug, info, warn};

/// The plugin's registered name.
pub const NAME: &str = "mesh";

/// The kernel's default subflow limit, used when it cannot be read.
const KERNEL_DEFAULT_SUBFLOWS: u32 = 2;

/// How long the kernel's subflow limit, once read, stands for the connections established
/// after it. The kernel sends no event when `ip mptcp limits set` changes it, so a change
/// applies to connections established at most this long after it.
pub const LIMIT_MAX_AGE: Duration = Duration::from_secs(1);

/// A subflow as the plugin names it: local address, remote address and port.
type Pair = (IpAddr, SocketAddr);

/// The `mesh` plugin.
#[derive(Debug)]
pub struct Mesh {
    /// `max-subflows`; `None`: the kernel's limit.
    max_subflows: Option<u32>,
    /// [`LIMIT_MAX_AGE`], shorter in tests.
    limit_max_age: Duration,
    /// The kernel's subflow limit and when it was read.
    kernel_limit: Mutex<Option<(Instant, u32)>>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Local addresses and the interfaces each is on.
    addrs: BTreeMap<IpAddr, BTreeSet<u32>>,
    conns: HashMap<Token, Conn>,
    /// How many tracked connections hold each local address's id.
    id_users: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Conn {
    /// The initial subflow's ends.
    initial: (SocketAddr, SocketAddr),
    server_side: bool,
    /// Known once the connection is established.
    limit: Option<u32>,
    /// The peer's announced addresses by its id.
    announced: BTreeMap<u8, SocketAddr>,
    /// Subflows the plugin made that are open (or being opened).
    open: BTreeSet<Pair>,
    /// Every pair tried on this connection.
    tried: BTreeSet<Pair>,
    /// Local addresses whose id the connection holds.
    ids: BTreeSet<IpAddr>,
}

impl Mesh {
    /// A plugin with the daemon's settings (`max-subflows`).
    #[must_use]
    pub fn new(config: &PluginConfig) -> Self {
        Self {
            max_subflows: config.max_subflows,
            limit_max_age: LIMIT_MAX_AGE,
            kernel_limit: Mutex::default(),
            state: Mutex::default(),
        }
    }

    /// The same, keeping the kernel's limit for `max_age` instead of [`LIMIT_MAX_AGE`].
    #[cfg(test)]
    fn with_limit_max_age(config: &PluginConfig, max_age: Duration) -> Self {
        Self {
            limit_max_age: max_age,
            ..Self::new(config)
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if it did, the maps are still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many subflows the plugin made for `token` are open (for tests).
    #[must_use]
    pub fn subflows_of(&self, token: Token) -> usize {
        self.state().conns.get(&token).map_or(0, |c| c.open.len())
    }

    /// How many connections the plugin tracks (for tests).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.state().conns.len()
    }

    async fn established(&self, conn: &Connection, pm: &dyn PathManager) {
        let limit = match self.max_subflows {
            Some(limit) => limit,
            None => self.kernel_limit(pm).await,
        };
        self.state().track(conn).limit = Some(limit);
        self.fill(conn.token, pm).await;
    }

    /// The kernel's subflow limit, read again once the last reading is older than
    /// `limit_max_age`. Connections established together may each read it: the lock is
    /// never held across the kernel's answer.
    async fn kernel_limit(&self, pm: &dyn PathManager) -> u32 {
        let fresh = |read: &Option<(Instant, u32)>| {
            read.filter(|(at, _)| at.elapsed() < self.limit_max_age)
                .map(|(_, limit)| limit)
        };
        if let Some(limit) = fresh(&self.kernel_limit_read()) {
            return limit;
        }
        match pm.get_limits().await {
            Ok(limits) => {
                *self.kernel_limit_read() = Some((Instant::now(), limits.subflows));
                limits.subflows
            }
            Err(e) => {
                warn!(
                    "reading the kernel's subflow limit: {}; using {KERNEL_DEFAULT_SUBFLOWS}",
                    Chain(&e)
                );
                KERNEL_DEFAULT_SUBFLOWS
            }
        }
    }

    fn kernel_limit_read(&self) -> MutexGuard<'_, Option<(Instant, u32)>> {
        // A poisoned reading is still a reading.
        self.kernel_limit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn announced(&self, addr: &RemoteAddress) -> bool {
        let addr = addr.canonical();
        let mut state = self.state();
        let Some(conn) = state.conns.get_mut(&addr.token) else {
            return false;
        };
        let port = addr.port.unwrap_or_else(|| conn.initial.1.port());
        conn.announced
            .insert(addr.id, SocketAddr::new(addr.addr, port));
        conn.limit.is_some()
    }

    /// Creates the subflows the connection lacks, within its limit.
    async fn fill(&self, token: Token, pm: &dyn PathManager) {
        let planned = self.state().plan(token, pm);
        for subflow in planned {
            let pair = (subflow.local.addr, subflow.remote);
            match pm.subflow_create(subflow).await {
                Ok(()) => info!(
                    local = %subflow.local.addr, remote = %subflow.remote,
                    id = subflow.local.id, ifindex = ?subflow.local.if_idx,
                    "subflow created"
                ),
                Err(e) => {
                    warn!(
                        "creating subflow {} -> {}: {}",
                        subflow.local.addr,
                        subflow.remote,
                        Chain(&e)
                    );
                    if let Some(conn) = self.state().conns.get_mut(&token) {
                        conn.open.remove(&pair);
                    }
                }
            }
        }
    }

    /// A subflow joined: one of the plugin's pairs that another plugin re-created (`health`
    /// re-probing a path it closed) takes its place again, so that the limit still holds.
    /// The plugin's own creations are open already; the peer's joins are not its own.
    fn subflow_joined(&self, sub: &Subflow) {
        let pair = (sub.local.ip().to_canonical(), canonical(sub.remote));
        let mut state = self.state();
        if let Some(conn) = state.conns.get_mut(&sub.token)
            && conn.tried.contains(&pair)
            && conn.open.insert(pair)
        {
            debug!(local = %pair.0, remote = %pair.1, "subflow re-created: counted again");
        }
    }

    /// A subflow closed: frees its place.
    fn subflow_gone(&self, sub: &Subflow) {
        let pair = (sub.local.ip().to_canonical(), canonical(sub.remote));
        let mut state = self.state();
        if let Some(conn) = state.conns.get_mut(&sub.token)
            && conn.open.remove(&pair)
        {
            debug!(local = %pair.0, remote = %pair.1, error = ?sub.error, "subflow closed");
        }
    }

    fn closed(&self, token: Token, pm: &dyn PathManager) {
        let released = self.state().forget(token);
        for addr in released {
            pm.release_address_id(addr);
            debug!(%addr, "address id released");
        }
    }
}

impl State {
    fn track(&mut self, conn: &Connection) -> &mut Conn {
        self.conns.entry(conn.token).or_insert_with(|| Conn {
            initial: (canonical(conn.local), canonical(conn.remote)),
            server_side: conn.server_side(),
            limit: None,
            announced: BTreeMap::new(),
            open: BTreeSet::new(),
            tried: BTreeSet::new(),
            ids: BTreeSet::new(),
        })
    }

    /// The subflows to create now, marked open and tried, their ids taken.
    fn plan(&mut self, token: Token, pm: &dyn PathManager) -> Vec<NewSubflow> {
        let Self {
            addrs,
            conns,
            id_users,
        } = self;
        let Some(conn) = conns.get_mut(&token) else {
            return Vec::new();
        };
        let Some(limit) = conn.limit else {
            return Vec::new();
        };
        let (initial_local, initial_remote) = conn.initial;
        let remotes = (!conn.server_side)
            .then_some(initial_remote)
            .into_iter()
            .chain(conn.announced.values().copied())
            .collect::<Vec<_>>();
        let mut planned = Vec::new();
        for remote in remotes {
            for (&local, on) in addrs.iter() {
                let pair = (local, remote);
                if usize::try_from(limit).is_ok_and(|limit| conn.open.len() >= limit) {
                    return planned;
                }
                if !usable(local, remote)
                    || (local, remote.ip()) == (initial_local.ip(), initial_remote.ip())
                    || conn.tried.contains(&pair)
                {
                    continue;
                }
                // A path judged dead (`health`) is closed and re-probed by its judge: not
                // tried, so a later announcement may take it once it is back.
                if pm.path_health(local) == PathHealth::Dead {
                    debug!(%local, "no subflow from a dead path");
                    continue;
                }
                let id = match pm.address_id(local) {
                    Ok(id) => id,
                    Err(e) => {
                        warn!("no subflow from {local}: {}", Chain(&e));
                        continue;
                    }
                };
                if conn.ids.insert(local) {
                    *id_users.entry(local).or_default() += 1;
                }
                conn.tried.insert(pair);
                conn.open.insert(pair);
                planned.push(NewSubflow {
                    token,
                    local: Endpoint {
                        id,
                        addr: local,
                        port: None,
                        flags: EndpointFlags::empty(),
                        if_idx: on.first().and_then(|&i| i32::try_from(i).ok()),
                    },
                    remote,
                });
            }
        }
        planned
    }

    /// Drops a connection; the addresses whose ids no tracked connection holds any more.
    fn forget(&mut self, token: Token) -> Vec<IpAddr> {
        let Some(conn) = self.conns.remove(&token) else {
            return Vec::new();
        };
        let mut released = Vec::new();
        for addr in conn.ids {
            if let Some(users) = self.id_users.get_mut(&addr) {
                *users -= 1;
                if *users == 0 {
                    self.id_users.remove(&addr);
                    released.push(addr);
                }
            }
        }
        released
    }

    fn address(&mut self, index: u32, addr: IpAddr, up: bool) {
        let on = self.addrs.entry(addr).or_default();
        if up {
            on.insert(index);
        } else {
            on.remove(&index);
            if on.is_empty() {
                self.addrs.remove(&addr);
            }
        }
    }
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// A local address a subflow to `remote` can leave from: same family, routable.
fn usable(local: IpAddr, remote: SocketAddr) -> bool {
    let scoped = match local {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unicast_link_local() || v6.is_unspecified(),
    };
    !scoped && local.is_ipv4() == remote.is_ipv4()
}

impl Plugin for Mesh {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "userspace path manager: a subflow between every pair of local and peer addresses"
    }

    fn on_event<'a>(&'a self, event: &'a Event, pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event {
                Event::NewConnection(conn) => {
                    self.state().track(conn);
                }
                Event::ConnectionEstablished(conn) => self.established(conn, pm).await,
                Event::NewAddress(addr) => {
                    if self.announced(addr) {
                        self.fill(addr.token, pm).await;
                    }
                }
                Event::AddressRemoved { token, remote_id } => {
                    if let Some(conn) = self.state().conns.get_mut(token) {
                        conn.announced.remove(remote_id);
                    }
                }
                Event::NewSubflow(sub) => self.subflow_joined(sub),
                Event::SubflowClosed(sub) => self.subflow_gone(sub),
                Event::ConnectionClosed(token) => self.closed(*token, pm),
                Event::DeleteInterface(iface) => self.state().addrs.retain(|_, on| {
                    on.remove(&iface.index);
                    !on.is_empty()
                }),
                Event::NewLocalAddress { iface, addr } => {
                    self.state().address(iface.index, *addr, true);
                }
                Event::DeleteLocalAddress { iface, addr } => {
                    self.state().address(iface.index, *addr, false);
                }
                _ => {}
            }
        })
    }
}

#[cfg(test)]
mod tests;
