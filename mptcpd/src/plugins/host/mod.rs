//! The plugin host: routes events to plugins and runs the daemon's endpoint life cycle.

mod resync;

use std::collections::HashMap;

use mptcpd_plugin::{Commands, Plugin, PluginConfig, Token};
use tracing::{debug, info};

use super::{HostPm, PluginError, PluginSettings, convert, registry};
use crate::{
    diag::{DiagError, MptcpSocket},
    netmon::{NetEvent, NetworkMonitor},
    pm::wire::Event,
};

/// A connection the host routes events of.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    /// The plugin that handles it.
    plugin: usize,
    /// `connection_established` was called: a later ESTABLISHED is a duplicate (after a
    /// resync gave it first).
    established: bool,
}

impl Tracked {
    const fn new(plugin: usize) -> Self {
        Self {
            plugin,
            established: false,
        }
    }
}

/// The loaded plugins and the handle they share.
///
/// The daemon calls, in this order: [`Self::start`]; [`Self::start_up`] (the network
/// monitor's start-up events, then [`Self::settle`]); then [`Self::on_net_event`] and [`Self::on_pm_event`] as events come, [`Self::resync`]
/// after an `EventItem::Overrun`; [`Self::shutdown`] on SIGTERM or SIGINT. A reload
/// (SIGHUP) keeps the host: tracked connections survive.
pub struct PluginHost<K: Commands> {
    /// In priority order.
    plugins: Vec<Box<dyn Plugin>>,
    default: usize,
    /// Which plugin handles each connection.
    connections: HashMap<Token, Tracked>,
    pm: HostPm<K>,
    /// Events were lost and the connections could not be listed since: a token never seen
    /// may belong to a connection whose creation was lost.
    events_lost: bool,
}

impl<K: Commands> std::fmt::Debug for PluginHost<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("plugins", &self.plugin_names())
            .field("default", &self.default_plugin())
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl<K: Commands> PluginHost<K> {
    /// Loads the built-in plugins `settings` selects, adopts the endpoints a previous run of
    /// the daemon left (see the module docs), and calls each plugin's `init`.
    ///
    /// An unknown plugin name, or a default plugin that is not loaded, is an error; so is a
    /// kernel that cannot list its endpoints.
    pub async fn start(settings: &PluginSettings, kernel: K) -> Result<Self, PluginError> {
        let PluginSettings {
            path_manager,
            load_plugins,
            addr_flags,
            state_file,
        } = settings;
        let config = PluginConfig {
            addr_flags: *addr_flags,
        };
        let (plugins, default) = registry::select(
            registry::builtin(&config),
            load_plugins.as_deref(),
            path_manager.as_deref(),
        )?;
        let pm = HostPm::new(kernel, state_file.clone());
        Self::with_plugins(plugins, default, pm).await
    }

    /// With given plugins (in priority order) and handle: adopts, then calls `init`.
    pub async fn with_plugins(
        plugins: Vec<Box<dyn Plugin>>,
        default: usize,
        pm: HostPm<K>,
    ) -> Result<Self, PluginError> {
        let adopted = pm.adopt().await.map_err(PluginError::Dump)?;
        let mut host = Self {
            plugins,
            default,
            connections: HashMap::new(),
            pm,
            events_lost: false,
        };
        info!(
            plugins = ?host.plugin_names(),
            default = host.default_plugin(),
            adopted,
            "plugins loaded"
        );
        for plugin in &mut host.plugins {
            plugin.init(&host.pm).await;
        }
        Ok(host)
    }

    /// Plugins in priority order.
    #[must_use]
    pub fn plugin_names(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    /// The plugin that handles new connections.
    #[must_use]
    pub fn default_plugin(&self) -> &'static str {
        self.plugins[self.default].name()
    }

    /// How many connections are tracked.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// The handle plugins use.
    pub const fn pm(&self) -> &HostPm<K> {
        &self.pm
    }

    /// Passes a network-monitor event to every plugin, in priority order.
    pub async fn on_net_event(&mut self, event: &NetEvent) {
        let pm = &self.pm;
        match event {
            NetEvent::NewInterface(i) => {
                let iface = convert::interface(i);
                for p in &mut self.plugins {
                    p.new_interface(&iface, pm).await;
                }
            }
            NetEvent::UpdateInterface(i) => {
                let iface = convert::interface(i);
                for p in &mut self.plugins {
                    p.update_interface(&iface, pm).await;
                }
            }
            NetEvent::DeleteInterface(i) => {
                let iface = convert::interface(i);
                for p in &mut self.plugins {
                    p.delete_interface(&iface, pm).await;
                }
            }
            NetEvent::NewLocalAddress { interface, address } => {
                let iface = convert::interface(interface);
                for p in &mut self.plugins {
                    p.new_local_address(&iface, address.addr, pm).await;
                }
            }
            NetEvent::DeleteLocalAddress { interface, address } => {
                let iface = convert::interface(interface);
                for p in &mut self.plugins {
                    p.delete_local_address(&iface, address.addr, pm).await;
                }
            }
        }
    }

    /// Passes an `mptcp_pm` event to the plugin that handles its connection (listener
    /// events: the default plugin).
    pub async fn on_pm_event(&mut self, event: &Event) {
        let Self {
            plugins,
            default,
            connections,
            pm,
            events_lost,
        } = self;
        let default = *default;
        let mut route = |token| route(connections, *events_lost, default, token).map(|t| t.plugin);
        match event {
            Event::Created(c) => {
                // Known already: a resync gave it before this event, queued behind the overrun.
                if connections.contains_key(&c.token) {
                    debug!("CREATED of a connection already known from a resync");
                    return;
                }
                connections.insert(c.token, Tracked::new(default));
                pm.mapped().note(c.token, c.local, c.remote);
                let conn = convert::connection(c);
                plugins[default].new_connection(&conn, pm).await;
                debug_tracked(connections, pm);
            }
            Event::Established(c) => {
                let Some(tracked) = route(c.token).and_then(|_| connections.get_mut(&c.token))
                else {
                    return;
                };
                if tracked.established {
                    debug!("ESTABLISHED of a connection already established by a resync");
                    return;
                }
                tracked.established = true;
                let conn = convert::connection(c);
                plugins[tracked.plugin]
                    .connection_established(&conn, pm)
                    .await;
            }
            Event::Closed { token } => {
                // Dropped here: the C daemon kept every token for its whole life.
                if let Some(at) = route(*token) {
                    connections.remove(token);
                    plugins[at].connection_closed(*token, pm).await;
                    pm.mapped().forget_connection(*token);
                    debug_tracked(connections, pm);
                }
            }
            Event::Announced(a) => {
                if let Some(at) = route(a.token) {
                    let addr = convert::remote_address(a);
                    plugins[at].new_address(&addr, pm).await;
                }
            }
            Event::Removed { token, remote_id } => {
                if let Some(at) = route(*token) {
                    plugins[at].address_removed(*token, *remote_id, pm).await;
                }
            }
            Event::SubflowEstablished(s) => {
                if let Some(at) = route(s.token) {
                    pm.mapped().note(s.token, s.local, s.remote);
                    plugins[at].new_subflow(&convert::subflow(s), pm).await;
                }
            }
            Event::SubflowClosed(s) => {
                if let Some(at) = route(s.token) {
                    plugins[at].subflow_closed(&convert::subflow(s), pm).await;
                    pm.mapped().forget(s.token, s.local, s.remote);
                }
            }
            Event::SubflowPriority(s) => {
                if let Some(at) = route(s.token) {
                    pm.mapped().note(s.token, s.local, s.remote);
                    plugins[at].subflow_priority(&convert::subflow(s), pm).await;
                }
            }
            Event::ListenerCreated(l) => {
                let local = convert::canonical(l.local);
                plugins[default].listener_created(local, pm).await;
            }
            Event::ListenerClosed(l) => {
                let local = convert::canonical(l.local);
                plugins[default].listener_closed(local, pm).await;
            }
            Event::Other(e) => debug!(kind = ?e.kind, "event for no plugin callback"),
        }
    }

    /// Right after [`Self::start`]: has `netmon` report the addresses of the endpoints
    /// adopted from a previous run even without `existing` (their plugin adds them again,
    /// which makes them its own), passes the monitor's start-up events to the plugins, then
    /// removes the adopted endpoints no plugin added again ([`Self::settle`]). Returns how
    /// many were removed.
    pub async fn start_up(&mut self, netmon: &mut NetworkMonitor) -> usize {
        netmon.report_adopted(self.pm.adopted_addresses()).await;
        while let Some(event) = netmon.try_next_event() {
            debug!("network: {event:?}");
            self.on_net_event(&event).await;
        }
        self.settle().await
    }

    /// After the network monitor's start-up events: removes the endpoints adopted from a
    /// previous run that no plugin added again (their address is gone, or no longer
    /// qualifies). Returns how many.
    pub async fn settle(&mut self) -> usize {
        let removed = self.pm.remove_unclaimed().await;
        if removed > 0 {
            info!(removed, "stale endpoints of a previous run removed");
        }
        removed
    }

    /// After `mptcp_pm` events were lost: re-reads the kernel's endpoints (ours that someone
    /// removed are forgotten, the others' ids are kept off), then reconciles the connections
    /// with `live`, the kernel's list (`crate::diag::connections`):
    ///
    /// - a tracked connection the list no longer has (or has closed) is dropped, and its
    ///   plugin gets `connection_closed` (its CLOSED was lost);
    /// - an established connection never seen gets `new_connection` and
    ///   `connection_established` at the default plugin, so that it still gets its paths; a
    ///   tracked one whose ESTABLISHED was lost gets `connection_established`. Their events
    ///   still queued behind the overrun are then not passed on twice.
    ///
    /// Events of unknown connections are dropped again afterwards. If the list could not be
    /// read (`Err`), they go to the default plugin from now on instead.
    pub async fn resync(&mut self, live: Result<Vec<MptcpSocket>, DiagError>) {
        resync::resync(self, live).await;
    }

    /// Calls each plugin's `exit` in reverse priority order, then removes every endpoint
    /// this daemon added (and only those) and closes the listeners. Returns how many
    /// endpoints were removed.
    pub async fn shutdown(mut self) -> usize {
        for plugin in self.plugins.iter_mut().rev() {
            plugin.exit(&self.pm).await;
        }
        let removed = self.pm.remove_owned().await;
        info!(removed, "endpoints of this daemon removed");
        removed
    }
}

/// The connection of `token`. An unknown token is dropped (as in the C daemon), unless
/// events were lost and not recovered: then it is the default plugin's, whose CREATED may have
/// been lost.
fn route(
    connections: &mut HashMap<Token, Tracked>,
    events_lost: bool,
    default: usize,
    token: Token,
) -> Option<Tracked> {
    if let Some(&tracked) = connections.get(&token) {
        return Some(tracked);
    }
    if events_lost {
        let tracked = Tracked::new(default);
        connections.insert(token, tracked);
        return Some(tracked);
    }
    debug!("event for an unknown connection dropped");
    None
}

/// What the host keeps, for tests that watch state drain (debug level).
fn debug_tracked<K: Commands>(connections: &HashMap<Token, Tracked>, pm: &HostPm<K>) {
    debug!(
        "tracking {} connections, {} listeners, {} mapped subflows",
        connections.len(),
        pm.listeners().len(),
        pm.mapped().len()
    );
}

#[cfg(test)]
mod tests;
