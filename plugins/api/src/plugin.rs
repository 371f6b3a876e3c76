//! The plugin trait: a descriptor (name, description, priority), `init` and `exit`, and one
//! entry point for every event ([`Event`]).

use std::{
    future::{self, Future},
    pin::Pin,
};

use crate::{EndpointFlags, EndpointPolicy, Event, PathManager};

/// What the plugin's entry points return: a future the host awaits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most favourable priority (C `MPTCPD_PLUGIN_PRIORITY_HIGH`); lower numbers win.
pub const PRIORITY_HIGH: i32 = -20;
/// The priority of both built-in plugins.
pub const PRIORITY_DEFAULT: i32 = 0;
/// Least favourable priority.
pub const PRIORITY_LOW: i32 = 19;

/// A future that does nothing.
pub fn done<'a>() -> BoxFuture<'a, ()> {
    Box::pin(future::ready(()))
}

/// What plugins are built with: the settings of the daemon that concern them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginConfig {
    /// `--addr-flags`: flags of the endpoints plugins add for the in-kernel path manager.
    pub addr_flags: EndpointFlags,
    /// `--max-subflows`: most subflows a plugin opens per connection (`mesh`); `None`: the
    /// kernel's subflow limit.
    pub max_subflows: Option<u32>,
    /// The `health-*` settings (`health`).
    pub health: HealthConfig,
    /// `[policy]` and `[interface PATTERN]`: flags per interface, ranking under the endpoint
    /// limit (`addr_adv`).
    pub policy: EndpointPolicy,
}

/// The `health` plugin's thresholds, as the configuration gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// `health-hold`: least seconds between two changes of an address's state, and how long
    /// it must look healthy again before its flags are restored.
    pub hold_secs: u32,
    /// `health-retrans-percent`: retransmitted segments per 100 sent that make a subflow
    /// degraded (0: never).
    pub retrans_percent: u32,
    /// `health-rtt-percent`: smoothed RTT over the path's baseline, in percent, that makes a
    /// subflow degraded (0: never).
    pub rtt_percent: u32,
    /// `health-dead-rtos`: retransmission timeouts without progress that make a subflow dead
    /// (0: never).
    pub dead_rtos: u32,
    /// `health-min-peers`: distinct peers whose subflows must agree (0: the share alone).
    pub min_peers: u32,
    /// `health-min-share`: or percent of the address's subflows, from two peers or more, that
    /// must agree (0: the peers alone).
    pub min_share_percent: u32,
    /// Longest wait, in seconds, between two re-probes of a dead path: the first comes
    /// after `hold_secs`, each failed one doubles the wait up to this.
    pub reprobe_max_secs: u32,
}

impl HealthConfig {
    /// The defaults.
    pub const DEFAULT: Self = Self {
        hold_secs: 10,
        retrans_percent: 10,
        rtt_percent: 300,
        dead_rtos: 2,
        min_peers: 3,
        min_share_percent: 50,
        reprobe_max_secs: 300,
    };
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A path-manager plugin, shared by the host's lanes (hence `Send + Sync` and `&self`).
///
/// Connection events ([`Event::token`] is `Some`, telemetry included) reach the plugin that
/// handles the connection: the default plugin, chosen by `--path-manager` or else by priority;
/// then, in the same lane and order, every other loaded plugin that observes connections
/// ([`Plugin::observes_connections`]: e.g. `health` beside `addr_adv`, `mesh` or sspi). Listener
/// events go to the default plugin. Interface and address events go to every loaded plugin,
/// in priority order. Events of one connection arrive in order, one at a time; so do
/// interface and address events; events of different connections may be handled at the
/// same time (see the crate docs).
pub trait Plugin: Send + Sync {
    /// The name `--path-manager` and `--load-plugins` use.
    fn name(&self) -> &'static str;

    /// One line about the plugin.
    fn description(&self) -> &'static str;

    /// Lower numbers are more favourable (nice-like): with no `--path-manager`, the loaded
    /// plugin with the lowest priority is the default one (ties: registration order).
    fn priority(&self) -> i32 {
        PRIORITY_DEFAULT
    }

    /// Called once after loading, in priority order, before any event.
    fn init<'a>(&'a self, _pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        done()
    }

    /// Called once at shutdown, after the last event, in reverse priority order, before the
    /// daemon removes the endpoints it added.
    fn exit<'a>(&'a self, _pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        done()
    }

    /// Whether the plugin wants [`crate::Event::Tick`] (about once a second; the daemon ticks
    /// only when a loaded plugin wants it).
    fn wants_ticks(&self) -> bool {
        false
    }

    /// Whether the plugin hears every connection's events (telemetry included) even when
    /// another plugin handles the connection: an observer acts beside the default plugin
    /// (health decisions) rather than replacing it. It hears them after the handling plugin,
    /// in the connection's lane.
    fn observes_connections(&self) -> bool {
        false
    }

    /// The configuration was reloaded (SIGHUP): `config` holds the new settings, of which a
    /// plugin applies what it can without a restart (keeping what it learnt). Called from the
    /// daemon's loop, possibly while the plugin handles events in its lanes; the default does
    /// nothing.
    fn reconfigure(&self, config: &PluginConfig) {
        let _ = config;
    }

    /// An event; `pm` commands the kernel and answers each command.
    fn on_event<'a>(&'a self, event: &'a Event, pm: &'a dyn PathManager) -> BoxFuture<'a, ()>;
}
