//! `health`: demotes a local address whose subflows are degraded across enough connections
//! to `backup`, and restores it once healthy again, for the in-kernel path manager (see the
//! README for the model and its settings).
//!
//! - It observes connections ([`Plugin::observes_connections`]): loaded beside the plugin
//!   that handles them (`addr_adv` for the in-kernel path manager), it hears their events
//!   after that plugin and never becomes the default by priority. It remembers the connections it sees and, on each [`Event::Tick`] (about once
//!   a second; the plugin asks for them), reads their views ([`PathManager::connection_views`], one read for all) and
//!   feeds every subflow's figures to the decision core ([`decision::Core`]); telemetry
//!   events feed it at once (an RTO does not wait for the tick).
//! - A decision is acted on through the in-kernel endpoint of the address, and only one this
//!   daemon owns ([`PathManager::owned_endpoints`]): Degraded or Dead sets `backup`; Healthy
//!   again gives back the `backup` flag the configuration gave (`addr-flags`). Subflows of a
//!   dead path are not closed (the kernel's own stale-subflow logic and the backup flag
//!   steer traffic away).
//! - Every decision is logged at info with the figures that caused it (connections are never
//!   named by token) and reported to the daemon ([`PathManager::report_decision`]).
//!
//! State sits behind one `std::sync::Mutex`, never held across the kernel's answers.

mod config;
pub mod decision;

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, SocketAddr},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use mptcpd_plugin::{
    BoxFuture, Chain, EndpointFlags, Event, HealthConfig, PRIORITY_LOW, PathDecision, PathManager,
    Plugin, PluginConfig, Token,
};
use tracing::{info, warn};

use decision::{Core, Decision, Health as State};

/// The plugin's registered name.
pub const NAME: &str = "health";

/// The `health` plugin.
#[derive(Debug)]
pub struct Health {
    /// The flags the configuration gives endpoints (`addr-flags`): what a restore gives back.
    addr_flags: EndpointFlags,
    /// The origin of the core's time.
    origin: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The `[health]` settings in force (a reload replaces them).
    config: HealthConfig,
    core: Core,
    /// Connections seen and the subflows observed on each (forgotten with it).
    conns: HashMap<Token, BTreeSet<(SocketAddr, SocketAddr)>>,
}

impl Inner {
    fn forget_connection(&mut self, token: Token) {
        for (local, remote) in self.conns.remove(&token).unwrap_or_default() {
            self.core.forget(local, remote);
        }
    }
}

impl Health {
    /// A plugin with the daemon's settings (`addr-flags`, `health-*`).
    #[must_use]
    pub fn new(config: &PluginConfig) -> Self {
        Self {
            addr_flags: config.addr_flags,
            origin: Instant::now(),
            inner: Mutex::new(Inner {
                config: config.health,
                core: Core::new(config.health.into()),
                conns: HashMap::new(),
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; if it did, the maps are still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// An address's state (for tests and the log).
    #[must_use]
    pub fn state(&self, addr: IpAddr) -> State {
        self.inner().core.state(addr)
    }

    /// How many connections the plugin remembers (for tests).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.inner().conns.len()
    }

    /// Reads the views of the connections seen, then judges at `now`. A connection the
    /// daemon no longer tracks is forgotten (its CLOSED may have been lost).
    fn tick(&self, now: Duration, pm: &dyn PathManager) -> Vec<Decision> {
        // One read of the sources for all connections, not one per connection.
        let mut all: HashMap<Token, _> = pm
            .connection_views()
            .into_iter()
            .map(|view| (view.token, view))
            .collect();
        let mut inner = self.inner();
        let tokens: Vec<Token> = inner.conns.keys().copied().collect();
        let views: Vec<_> = tokens.into_iter().map(|t| (t, all.remove(&t))).collect();
        for (token, view) in views {
            let Some(view) = view else {
                inner.forget_connection(token);
                continue;
            };
            for sub in &view.subflows {
                let Some(figures) = sub.figures else { continue };
                inner.core.observe(now, sub.local, sub.remote, figures);
                if let Some(seen) = inner.conns.get_mut(&token) {
                    seen.insert((sub.local, sub.remote));
                }
            }
        }
        inner.core.evaluate(now)
    }

    /// An event at `now` (the tests' clock).
    async fn handle(&self, now: Duration, event: &Event, pm: &dyn PathManager) {
        let decisions = match event {
            Event::NewConnection(conn) | Event::ConnectionEstablished(conn) => {
                self.inner().conns.entry(conn.token).or_default();
                return;
            }
            Event::ConnectionClosed(token) => {
                self.inner().forget_connection(*token);
                return;
            }
            Event::SubflowClosed(sub) => {
                self.inner().core.forget(sub.local, sub.remote);
                return;
            }
            Event::Telemetry(t) => {
                let mut inner = self.inner();
                inner.core.observe(now, t.local, t.remote, t.figures);
                if let Some(seen) = inner.conns.get_mut(&t.token) {
                    seen.insert((t.local, t.remote));
                }
                inner.core.evaluate(now)
            }
            Event::Tick => self.tick(now, pm),
            _ => return,
        };
        self.act(decisions, pm).await;
    }

    async fn act(&self, decisions: Vec<Decision>, pm: &dyn PathManager) {
        for d in decisions {
            let Decision {
                addr,
                from,
                to,
                figures,
            } = d;
            info!(%addr, %from, %to, "path {addr} {to} (was {from}): {figures}");
            let action = self.act_on_endpoint(addr, to, pm).await;
            pm.report_decision(PathDecision {
                plugin: NAME,
                addr,
                from,
                to,
                reason: figures.to_string(),
                action,
            });
        }
    }

    /// Sets or restores the `backup` flag of the daemon's endpoint of `addr`; says what it did.
    async fn act_on_endpoint(&self, addr: IpAddr, to: State, pm: &dyn PathManager) -> String {
        let Some(endpoint) = pm
            .owned_endpoints()
            .into_iter()
            .find(|e| e.addr.to_canonical() == addr)
        else {
            info!(%addr, "no endpoint of this daemon for {addr}: nothing changed");
            return "nothing: no endpoint of this daemon".to_owned();
        };
        let backup = match to {
            State::Healthy => self.addr_flags.contains(EndpointFlags::BACKUP),
            State::Degraded | State::Dead => true,
        };
        let mut flags = endpoint.flags;
        flags.set(EndpointFlags::BACKUP, backup);
        let done = if backup { "set backup" } else { "restored" };
        if flags == endpoint.flags {
            return format!("nothing: endpoint {} already {done}", endpoint.id);
        }
        match pm.set_endpoint_flags(endpoint.id, flags).await {
            Ok(()) => {
                info!(
                    %addr, id = endpoint.id, backup,
                    "endpoint {addr} (id {}) {done}", endpoint.id
                );
                format!("endpoint {} {done}", endpoint.id)
            }
            Err(e) => {
                warn!("setting the flags of endpoint {addr}: {}", Chain(&e));
                format!(
                    "failed: setting the flags of endpoint {}: {}",
                    endpoint.id,
                    Chain(&e)
                )
            }
        }
    }
}

impl Plugin for Health {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "in-kernel path manager: a local address degraded across connections becomes backup"
    }

    /// Least favourable: an observer, never the default plugin by priority.
    fn priority(&self) -> i32 {
        PRIORITY_LOW
    }

    fn wants_ticks(&self) -> bool {
        true
    }

    fn observes_connections(&self) -> bool {
        true
    }

    /// New thresholds apply to the core at once; its subflows, baselines and states stay.
    fn reconfigure(&self, config: &PluginConfig) {
        let mut inner = self.inner();
        let changed = config::changes(&inner.config, &config.health);
        if changed.is_empty() {
            return;
        }
        inner.config = config.health;
        inner.core.set_thresholds(config.health.into());
        info!("health: new settings apply: {}", changed.join(", "));
    }

    fn on_event<'a>(&'a self, event: &'a Event, pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(self.handle(self.now(), event, pm))
    }
}

#[cfg(test)]
mod tests;
