//! The plugin host: routes events to plugins and runs the daemon's endpoint life cycle.

mod lanes;
mod resync;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use mptcpd_plugin::{Commands, Event as PluginEvent, Plugin, PluginConfig, TelemetryEvent, Token};
use tracing::{debug, info};

use super::{HostPm, PluginError, PluginSettings, Registry};
use crate::{
    diag::{DiagError, MptcpSocket},
    stats::Stats,
};
use lanes::{Lane, Lanes};
use mptcp_pm::{Event, SubflowEnds as _, canonical};
use mptcpd_netmon::{NetEvent, NetworkMonitor};

/// A connection the host routes events of.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    /// The plugin that handles it.
    plugin: usize,
    /// `ConnectionEstablished` was passed on: a later ESTABLISHED is a duplicate (after a
    /// resync gave it first).
    established: bool,
    /// `NewConnection` was passed on. Not for a connection a resync found connecting without
    /// its addresses (a client before its SYN-ACK: the dump says `0.0.0.0:0`): its CREATED or
    /// ESTABLISHED, which carry them, announce it.
    announced: bool,
}

impl Tracked {
    const fn new(plugin: usize) -> Self {
        Self {
            plugin,
            established: false,
            announced: true,
        }
    }
}

/// The loaded plugins and the handle they share.
///
/// The daemon calls, in this order: [`Self::start`]; [`Self::start_up`] (the network
/// monitor's start-up events, then [`Self::settle`]); then [`Self::on_net_event`] and
/// [`Self::on_pm_event`] as events come, [`Self::resync`] after an `EventItem::Overrun`;
/// [`Self::shutdown`] on SIGTERM or SIGINT. A reload (SIGHUP) keeps the host: tracked
/// connections survive.
///
/// Events run in lanes (`lanes`): `on_*_event` routes an event and queues it in its lane (per
/// connection, network, per listening address) and returns; plugins handle it on a task of
/// the tokio runtime. [`Self::drain`] waits until every queued event has been handled; start-up,
/// resync and shutdown drain first.
pub struct PluginHost<K: Commands + 'static> {
    /// In priority order.
    plugins: Vec<Arc<dyn Plugin>>,
    default: usize,
    /// Which plugin handles each connection.
    connections: HashMap<Token, Tracked>,
    /// `connections.len()`, for the lanes' debug lines.
    tracked: Arc<AtomicUsize>,
    pm: Arc<HostPm<K>>,
    /// Events were lost and the connections could not be listed since: a token never seen
    /// may belong to a connection whose creation was lost.
    events_lost: bool,
    lanes: Lanes,
}

/// What plugins are built (and reconfigured) with.
fn plugin_config(settings: &PluginSettings) -> PluginConfig {
    let PluginSettings {
        path_manager: _,
        load_plugins: _,
        addr_flags,
        max_subflows,
        health,
        policy,
        state_file: _,
    } = settings;
    PluginConfig {
        addr_flags: *addr_flags,
        max_subflows: *max_subflows,
        health: *health,
        policy: policy.clone(),
    }
}

impl<K: Commands + 'static> std::fmt::Debug for PluginHost<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("plugins", &self.plugin_names())
            .field("default", &self.default_plugin())
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl<K: Commands + 'static> PluginHost<K> {
    /// Builds the plugins of `registry`, loads those `settings` select, adopts the endpoints
    /// a previous run of the daemon left (see the module docs), and calls each plugin's
    /// `init`.
    ///
    /// An unknown plugin name, or a default plugin that is not loaded, is an error; so is a
    /// kernel that cannot list its endpoints.
    pub async fn start(
        registry: &Registry,
        settings: &PluginSettings,
        kernel: K,
    ) -> Result<Self, PluginError> {
        let (plugins, default) = registry.select(
            &plugin_config(settings),
            settings.load_plugins.as_deref(),
            settings.path_manager.as_deref(),
        )?;
        let pm = HostPm::new(kernel, settings.state_file.clone());
        Self::with_plugins(plugins, default, pm).await
    }

    /// A reload (SIGHUP): every plugin hears the new settings ([`Plugin::reconfigure`]) and
    /// applies what it can; the plugins loaded and the connections they track stay.
    pub fn reconfigure(&self, settings: &PluginSettings) {
        let config = plugin_config(settings);
        for plugin in &self.plugins {
            plugin.reconfigure(&config);
        }
    }

    /// With given plugins (in priority order) and handle: adopts, then calls `init`.
    pub(crate) async fn with_plugins(
        plugins: Vec<Arc<dyn Plugin>>,
        default: usize,
        pm: HostPm<K>,
    ) -> Result<Self, PluginError> {
        let adopted = pm.adopt().await.map_err(PluginError::Dump)?;
        let host = Self {
            plugins,
            default,
            connections: HashMap::new(),
            tracked: Arc::default(),
            pm: Arc::new(pm),
            events_lost: false,
            lanes: Lanes::default(),
        };
        info!(
            plugins = ?host.plugin_names(),
            default = host.default_plugin(),
            adopted,
            "plugins loaded"
        );
        for plugin in &host.plugins {
            plugin.init(&*host.pm).await;
        }
        Ok(host)
    }

    /// Plugins in priority order.
    #[must_use]
    pub(crate) fn plugin_names(&self) -> Vec<&'static str> {
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
    #[must_use]
    pub fn pm(&self) -> &HostPm<K> {
        &self.pm
    }

    /// The handle plugins use, shared (the metrics count its endpoints at scrape time).
    #[must_use]
    pub fn shared_pm(&self) -> Arc<HostPm<K>> {
        Arc::clone(&self.pm)
    }

    /// The daemon's counters; the host counts plugin errors there.
    #[must_use]
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(self.lanes.stats())
    }

    /// Waits until every event queued so far has been handled.
    pub async fn drain(&mut self) {
        self.lanes.drain().await;
    }

    /// Queues `event` for `plugins` (indexes, in this order) in `lane`.
    async fn deliver(&mut self, lane: Lane, plugins: &[usize], event: PluginEvent) {
        let plugins: Vec<Arc<dyn Plugin>> = plugins
            .iter()
            .map(|&at| Arc::clone(&self.plugins[at]))
            .collect();
        let pm = Arc::clone(&self.pm);
        let tracked = Arc::clone(&self.tracked);
        self.lanes
            .run(lane, async move {
                for plugin in &plugins {
                    plugin.on_event(&event, &*pm).await;
                }
                after(&event, &pm, &tracked);
            })
            .await;
    }

    /// Queues a connection's event for the plugin that handles it, then for the other
    /// plugins that observe connections (in priority order).
    async fn deliver_to_connection(&mut self, plugin: usize, event: PluginEvent) {
        let Some(token) = event.token() else {
            unreachable!("connection events carry a token");
        };
        let to: Vec<usize> = std::iter::once(plugin)
            .chain(
                (0..self.plugins.len())
                    .filter(|&at| at != plugin && self.plugins[at].observes_connections()),
            )
            .collect();
        self.deliver(Lane::Connection(token), &to, event).await;
    }

    fn track(&mut self, token: Token, tracked: Option<Tracked>) {
        match tracked {
            Some(t) => self.connections.insert(token, t),
            None => self.connections.remove(&token),
        };
        self.tracked
            .store(self.connections.len(), Ordering::Relaxed);
    }

    /// Queues a network-monitor event for every plugin, in priority order.
    pub async fn on_net_event(&mut self, event: &NetEvent) {
        let event = match event {
            NetEvent::NewInterface(i) => PluginEvent::NewInterface(i.clone()),
            NetEvent::UpdateInterface(i) => PluginEvent::UpdateInterface(i.clone()),
            NetEvent::DeleteInterface(i) => PluginEvent::DeleteInterface(i.clone()),
            NetEvent::NewLocalAddress { interface, address } => PluginEvent::NewLocalAddress {
                iface: interface.clone(),
                addr: address.addr,
            },
            NetEvent::DeleteLocalAddress { interface, address } => {
                PluginEvent::DeleteLocalAddress {
                    iface: interface.clone(),
                    addr: address.addr,
                }
            }
        };
        let all: Vec<usize> = (0..self.plugins.len()).collect();
        self.deliver(Lane::Network, &all, event).await;
    }

    /// Whether a loaded plugin wants [`PluginEvent::Tick`]: the daemon ticks only then (an
    /// idle daemon without such a plugin stays asleep).
    #[must_use]
    pub fn wants_ticks(&self) -> bool {
        self.plugins.iter().any(|p| p.wants_ticks())
    }

    /// Queues a tick for the plugins that want ticks (in priority order), in the network lane.
    pub async fn on_tick(&mut self) {
        let to: Vec<usize> = (0..self.plugins.len())
            .filter(|&at| self.plugins[at].wants_ticks())
            .collect();
        if !to.is_empty() {
            self.deliver(Lane::Network, &to, PluginEvent::Tick).await;
        }
    }

    /// Queues an `mptcp_pm` event for the plugin that handles its connection (listener
    /// events: the default plugin).
    pub async fn on_pm_event(&mut self, event: &Event) {
        let default = self.default;
        let (plugin, event) = match event {
            Event::Created(c) => match self.created(c) {
                Some(routed) => routed,
                None => return,
            },
            Event::Established(c) => match self.established(c).await {
                Some(routed) => routed,
                None => return,
            },
            Event::Closed { token } => {
                // Dropped here: the C daemon kept every token for its whole life.
                let Some(tracked) = self.route(*token) else {
                    return;
                };
                self.track(*token, None);
                if !tracked.announced {
                    return;
                }
                (tracked.plugin, PluginEvent::ConnectionClosed(*token))
            }
            Event::Announced(a) => {
                let Some(tracked) = self.route(a.token) else {
                    return;
                };
                (tracked.plugin, PluginEvent::NewAddress(a.canonical()))
            }
            Event::Removed { token, remote_id } => {
                let Some(tracked) = self.route(*token) else {
                    return;
                };
                let event = PluginEvent::AddressRemoved {
                    token: *token,
                    remote_id: *remote_id,
                };
                (tracked.plugin, event)
            }
            Event::SubflowEstablished(s) | Event::SubflowClosed(s) | Event::SubflowPriority(s) => {
                let Some(tracked) = self.route(s.token) else {
                    return;
                };
                let sub = s.canonical();
                let event = match event {
                    Event::SubflowEstablished(_) => PluginEvent::NewSubflow(sub),
                    Event::SubflowClosed(_) => PluginEvent::SubflowClosed(sub),
                    _ => PluginEvent::SubflowPriority(sub),
                };
                if !matches!(event, PluginEvent::SubflowClosed(_)) {
                    self.pm.mapped().note(s.token, s.local, s.remote);
                }
                (tracked.plugin, event)
            }
            Event::ListenerCreated(l) | Event::ListenerClosed(l) => {
                let local = canonical(l.local);
                let event = if matches!(event, Event::ListenerCreated(_)) {
                    PluginEvent::ListenerCreated(local)
                } else {
                    PluginEvent::ListenerClosed(local)
                };
                self.deliver(Lane::Listener(local), &[default], event).await;
                return;
            }
            Event::Other(e) => {
                debug!(kind = ?e.kind, "event for no plugin");
                return;
            }
        };
        self.deliver_to_connection(plugin, event).await;
    }

    /// CREATED: a new connection for the default plugin, unless a resync gave it already.
    fn created(&mut self, c: &mptcp_pm::Connection) -> Option<(usize, PluginEvent)> {
        let plugin = match self.connections.get(&c.token).copied() {
            // Known already: a resync gave it before this event, queued behind the overrun.
            Some(Tracked {
                announced: true, ..
            }) => {
                debug!("CREATED of a connection already known from a resync");
                return None;
            }
            Some(tracked) => tracked.plugin,
            None => self.default,
        };
        self.track(c.token, Some(Tracked::new(plugin)));
        self.pm.mapped().note(c.token, c.local, c.remote);
        Some((plugin, PluginEvent::NewConnection(c.canonical())))
    }

    /// ESTABLISHED: for the connection's plugin, unless a resync gave it already.
    async fn established(&mut self, c: &mptcp_pm::Connection) -> Option<(usize, PluginEvent)> {
        let tracked = self.route(c.token)?;
        if tracked.established {
            debug!("ESTABLISHED of a connection already established by a resync");
            return None;
        }
        if !tracked.announced {
            // Its CREATED was lost: ESTABLISHED carries the same.
            self.pm.mapped().note(c.token, c.local, c.remote);
            let event = PluginEvent::NewConnection(c.canonical());
            self.deliver_to_connection(tracked.plugin, event).await;
        }
        self.track(
            c.token,
            Some(Tracked {
                established: true,
                announced: true,
                ..tracked
            }),
        );
        Some((
            tracked.plugin,
            PluginEvent::ConnectionEstablished(c.canonical()),
        ))
    }

    /// Queues a telemetry event for the plugin that handles its connection, in that
    /// connection's lane. An event for a connection not tracked is dropped (debug line).
    pub async fn on_telemetry(&mut self, event: TelemetryEvent) {
        let Some(tracked) = self.connections.get(&event.token).copied() else {
            debug!("telemetry event for an unknown connection dropped");
            return;
        };
        self.deliver_to_connection(tracked.plugin, PluginEvent::Telemetry(event))
            .await;
    }

    /// The connection of `token`. An unknown token is dropped (as in the C daemon), unless
    /// events were lost and not recovered: then it is the default plugin's, whose CREATED may
    /// have been lost.
    fn route(&mut self, token: Token) -> Option<Tracked> {
        if let Some(&tracked) = self.connections.get(&token) {
            return Some(tracked);
        }
        if self.events_lost {
            let tracked = Tracked::new(self.default);
            self.track(token, Some(tracked));
            return Some(tracked);
        }
        debug!("event for an unknown connection dropped");
        None
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
    pub(crate) async fn settle(&mut self) -> usize {
        self.drain().await;
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

    /// Connections a path manager outside the daemon handled until it went (`views`, the
    /// daemon's view of each live one): the default plugin gets `new_connection`,
    /// `connection_established` (if established) and `new_subflow` for each further subflow,
    /// as after an overrun, and their later events. Returns how many it took.
    pub async fn adopt_released(&mut self, views: Vec<mptcpd_plugin::ConnectionView>) -> usize {
        resync::adopt_released(self, views).await
    }

    /// Calls each plugin's `exit` in reverse priority order, then removes every endpoint
    /// this daemon added (and only those) and closes the listeners. Returns how many
    /// endpoints were removed.
    pub async fn shutdown(mut self) -> usize {
        self.drain().await;
        for plugin in self.plugins.iter().rev() {
            plugin.exit(&*self.pm).await;
        }
        let removed = self.pm.remove_owned().await;
        info!(removed, "endpoints of this daemon removed");
        removed
    }

    /// A stop that hands over to the next daemon (a restart or an upgrade): calls each
    /// plugin's `exit` as [`Self::shutdown`] does, but leaves the endpoints this daemon added
    /// in the kernel and in the state file, for the next daemon to adopt (so live
    /// connections keep their subflows). Returns how many were left.
    pub async fn hand_over(mut self) -> usize {
        self.drain().await;
        for plugin in self.plugins.iter().rev() {
            plugin.exit(&*self.pm).await;
        }
        let kept = mptcpd_plugin::PathManager::owned_endpoints(&*self.pm).len();
        info!(
            kept,
            "endpoints of this daemon left for the next one to adopt"
        );
        kept
    }
}

/// What follows a plugin's handling of `event` in its lane: the mapped subflows are
/// forgotten only once the plugin's commands no longer name them, and the host's tracking
/// logged (at debug level, for tests that watch state drain).
fn after<K: Commands>(event: &PluginEvent, pm: &HostPm<K>, tracked: &AtomicUsize) {
    match event {
        PluginEvent::SubflowClosed(s) => {
            pm.mapped().forget(s.token, s.local, s.remote);
            return;
        }
        PluginEvent::ConnectionClosed(token) => pm.mapped().forget_connection(*token),
        PluginEvent::NewConnection(_) => {}
        _ => return,
    }
    debug!(
        "tracking {} connections, {} listeners, {} mapped subflows",
        tracked.load(Ordering::Relaxed),
        pm.listeners().len(),
        pm.mapped().len()
    );
}

#[cfg(test)]
mod concurrency_tests;
#[cfg(test)]
mod tests;
