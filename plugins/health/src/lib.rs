//! `health`: acts on the health of local addresses judged from the subflow telemetry across
//! connections (see the README for the model and its settings).
//!
//! - It observes connections ([`Plugin::observes_connections`]): loaded beside the plugin
//!   that handles them (`addr_adv` for the in-kernel path manager, `mesh` or `sspi` for the
//!   userspace one), it hears their events after that plugin and never becomes the default
//!   by priority. It remembers the connections it sees, with the path manager the kernel
//!   gave each ([`PathManager::pm_kind`], read when it first hears of the connection) and,
//!   on each [`Event::Tick`] (about once a second; the plugin asks for them), reads their
//!   views ([`PathManager::connection_views`], one read for all) and feeds every subflow's
//!   figures to the decision core ([`decision::Core`]); telemetry events feed it at once.
//! - In-kernel path manager: through the daemon's own endpoint of the address only
//!   ([`PathManager::owned_endpoints`]): Degraded sets `backup`, Healthy gives back the
//!   `backup` flag `addr-flags` gave; Dead takes the endpoint out of the kernel
//!   ([`PathManager::suspend_endpoint`]: the kernel closes its subflows in every connection)
//!   and puts it back after a backoff ([`reprobe`]): the kernel then opens subflows from it
//!   again, which is the re-probe. Each re-probe is first a test outside the connections
//!   ([`PathManager::probe_path`]: a TCP connection attempt from the address, on its
//!   interface, to a peer address and port its subflows used, reset at once if answered);
//!   the endpoint goes back only when that is answered, so a path still dead costs the
//!   connections nothing (each join the kernel opens on a dead path, and its closing, stalls
//!   every connection's data on it).
//! - Userspace path manager, per connection: Degraded sets each subflow from the address
//!   backup (`SET_FLAGS` with the token), and each one that joins while it stays degraded;
//!   Healthy clears the backup flag of those it set (never one another plugin or the peer
//!   set); Dead destroys them and re-creates, once a test as
//!   above is answered, those of connections this side opened (same local address and id,
//!   same remote, bound to the same interface).
//! - Every decision and action is logged at info with the figures that caused it
//!   (connections are never named by token) and reported to the daemon
//!   ([`PathManager::report_decision`]).
//!
//! State sits behind one `std::sync::Mutex`, never held across the kernel's answers.

mod actions;
mod config;
pub mod decision;
pub mod reprobe;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt,
    net::{IpAddr, SocketAddr},
    sync::{Mutex, MutexGuard, PoisonError},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use mptcpd_plugin::{
    BoxFuture, Chain, EndpointFlags, EndpointPolicy, Event, HealthConfig, NewSubflow, PRIORITY_LOW,
    PathDecision, PathManager, Plugin, PluginConfig, PmKind, ProbeOutcome, SubflowPath,
    TelemetryKind, Token,
};
use tracing::{debug, info, warn};

use decision::{Core, Decision, Figures, Health as State};
use reprobe::{Phase, Reprobe, Step};

/// The plugin's registered name.
pub const NAME: &str = "health";

/// A subflow's two ends.
type Pair = (SocketAddr, SocketAddr);

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
    reprobe: Reprobe,
    conns: HashMap<Token, Conn>,
    /// Per dead address, the userspace-PM subflows destroyed, to re-create at each re-probe.
    closed: BTreeMap<IpAddr, Vec<NewSubflow>>,
    /// Per dead address, the daemon's endpoint taken out of the kernel: its id, the flags
    /// it comes back with and its interface.
    suspended: BTreeMap<IpAddr, (u8, EndpointFlags, Option<i32>)>,
    /// Per dead address, the peers (address and port) its subflows used: what its tests
    /// try.
    peers: BTreeMap<IpAddr, Vec<SocketAddr>>,
    /// Per dead address, its test under way.
    tests: BTreeMap<IpAddr, Test>,
    /// `[interface PATTERN]` flags: what a restore gives back on each interface.
    policy: EndpointPolicy,
    /// Interface names by index (from the interface events every plugin hears).
    ifnames: HashMap<u32, String>,
}

/// A connection seen.
#[derive(Debug)]
struct Conn {
    /// The path manager the kernel gave it.
    kind: PmKind,
    /// This side accepted it: the peer's subflows end at its ephemeral ports, which listen
    /// for nothing, so they are never re-created from here.
    server_side: bool,
    /// The subflows observed (forgotten with it).
    seen: BTreeSet<Pair>,
    /// The subflows this plugin set backup (userspace PM).
    backups: BTreeSet<Pair>,
    /// The subflows the kernel said closed: a closed subflow with data unacknowledged still
    /// retransmits (its telemetry goes on) and would count as a dead subflow of its address
    /// long after the path recovered.
    closed: BTreeSet<Pair>,
}

/// A test of a dead path under way ([`PathManager::probe_path`]).
struct Test {
    remote: SocketAddr,
    outcome: BoxFuture<'static, ProbeOutcome>,
}

impl Test {
    /// The outcome if there is one yet (polled at ticks, never waited for: the attempt
    /// runs on its own).
    fn outcome(&mut self) -> Option<ProbeOutcome> {
        match self
            .outcome
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(outcome) => Some(outcome),
            Poll::Pending => None,
        }
    }
}

impl fmt::Debug for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Test")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn track(&mut self, token: Token, server_side: bool, pm: &dyn PathManager) -> &mut Conn {
        self.conns.entry(token).or_insert_with(|| Conn {
            kind: pm.pm_kind(),
            server_side,
            seen: BTreeSet::new(),
            backups: BTreeSet::new(),
            closed: BTreeSet::new(),
        })
    }

    /// An address's state: Dead while its re-probe runs, else the core's.
    fn state(&self, addr: IpAddr) -> State {
        if self.reprobe.phase(addr).is_some() {
            return State::Dead;
        }
        self.core.state(addr)
    }

    fn forget_connection(&mut self, token: Token) {
        if let Some(conn) = self.conns.remove(&token) {
            for (local, remote) in conn.seen {
                self.core.forget(local, remote);
            }
        }
        for subflows in self.closed.values_mut() {
            subflows.retain(|s| s.token != token);
        }
    }
}

impl Health {
    /// A plugin with the daemon's settings (`addr-flags`, `health-*`).
    #[must_use]
    pub fn new(config: &PluginConfig) -> Self {
        let hold = Duration::from_secs(config.health.hold_secs.into());
        let max = Duration::from_secs(config.health.reprobe_max_secs.into());
        Self {
            addr_flags: config.addr_flags,
            origin: Instant::now(),
            inner: Mutex::new(Inner {
                config: config.health,
                core: Core::new(config.health.into()),
                reprobe: Reprobe::new(hold, max),
                conns: HashMap::new(),
                closed: BTreeMap::new(),
                suspended: BTreeMap::new(),
                peers: BTreeMap::new(),
                tests: BTreeMap::new(),
                policy: config.policy.clone(),
                ifnames: HashMap::new(),
            }),
        }
    }

    /// Whether the configuration makes an endpoint on interface `if_idx` backup: its
    /// `[interface PATTERN]` flags, else `addr-flags`.
    fn configured_backup(&self, if_idx: Option<i32>) -> bool {
        let inner = self.inner();
        let name = if_idx
            .and_then(|i| u32::try_from(i).ok())
            .and_then(|i| inner.ifnames.get(&i));
        let flags = name.map_or(self.addr_flags, |name| {
            inner.policy.flags_for(name, self.addr_flags)
        });
        flags.contains(EndpointFlags::BACKUP)
    }

    /// The hold time in force, seconds.
    fn hold_secs(&self) -> u32 {
        self.inner().config.hold_secs
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; if it did, the maps are still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// An address's state as reported (for tests and the log): Dead while its re-probe runs.
    #[must_use]
    pub fn state(&self, addr: IpAddr) -> State {
        self.inner().state(addr)
    }

    /// How many connections the plugin remembers (for tests).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.inner().conns.len()
    }

    /// Reads the views of the connections seen, then judges at `now`. A connection the
    /// daemon no longer tracks is forgotten (its CLOSED may have been lost).
    /// Also returns the subflows of userspace-PM connections from an address that stays
    /// degraded that are not backup yet (joins since its decision, which set the others;
    /// one the kernel did not list yet when it joined): the tick sets them.
    fn tick(&self, now: Duration, pm: &dyn PathManager) -> (Vec<Decision>, Vec<SubflowPath>) {
        // One read of the sources for all connections, not one per connection.
        let mut all: HashMap<Token, _> = pm
            .connection_views()
            .into_iter()
            .map(|view| (view.token, view))
            .collect();
        let mut inner = self.inner();
        let tokens: Vec<Token> = inner.conns.keys().copied().collect();
        let mut views = Vec::new();
        for token in tokens {
            let Some(view) = all.remove(&token) else {
                inner.forget_connection(token);
                continue;
            };
            for sub in &view.subflows {
                let Some(figures) = sub.figures else { continue };
                let closed = inner
                    .conns
                    .get(&token)
                    .is_some_and(|c| c.closed.contains(&(sub.local, sub.remote)));
                if closed {
                    continue;
                }
                inner.core.observe(now, sub.local, sub.remote, figures);
                if let Some(conn) = inner.conns.get_mut(&token) {
                    conn.seen.insert((sub.local, sub.remote));
                }
            }
            views.push(view);
        }
        let decisions = inner.core.evaluate(now);
        let mut joins = Vec::new();
        for view in &views {
            let Some(conn) = inner.conns.get(&view.token) else {
                continue;
            };
            if conn.kind != PmKind::Userspace {
                continue;
            }
            for sub in &view.subflows {
                let addr = sub.local.ip().to_canonical();
                let pair = (sub.local, sub.remote);
                // A decision of this tick acts on every subflow from its address itself.
                if !sub.backup
                    && !conn.backups.contains(&pair)
                    && !conn.closed.contains(&pair)
                    && inner.state(addr) == State::Degraded
                    && !decisions.iter().any(|d| d.addr == addr)
                {
                    joins.push(SubflowPath {
                        token: view.token,
                        local: sub.local,
                        remote: sub.remote,
                    });
                }
            }
        }
        (decisions, joins)
    }

    /// An event at `now` (the tests' clock).
    async fn handle(&self, now: Duration, event: &Event, pm: &dyn PathManager) {
        let decisions = match event {
            Event::NewConnection(conn) | Event::ConnectionEstablished(conn) => {
                self.inner().track(conn.token, conn.server_side(), pm);
                return;
            }
            Event::ConnectionClosed(token) => {
                self.inner().forget_connection(*token);
                return;
            }
            Event::NewInterface(i) | Event::UpdateInterface(i) => {
                self.inner().ifnames.insert(i.index, i.name.clone());
                return;
            }
            Event::DeleteInterface(i) => {
                self.inner().ifnames.remove(&i.index);
                return;
            }
            Event::NewSubflow(sub) => {
                let degraded_join = {
                    let mut inner = self.inner();
                    let addr = sub.local.ip().to_canonical();
                    inner.reprobe.established(addr);
                    let userspace = inner.conns.get_mut(&sub.token).is_some_and(|conn| {
                        conn.closed.remove(&(sub.local, sub.remote));
                        conn.kind == PmKind::Userspace
                    });
                    userspace && !sub.backup && inner.state(addr) == State::Degraded
                };
                if degraded_join {
                    let path = SubflowPath {
                        token: sub.token,
                        local: sub.local,
                        remote: sub.remote,
                    };
                    if let Err(e) = actions::backup_join(self, path, pm).await {
                        // The kernel may not list the join yet: the next tick sets it.
                        debug!(
                            "setting the backup flag of subflow {} -> {} that joined: {}; \
                             again at the next tick",
                            sub.local,
                            sub.remote,
                            Chain(&e)
                        );
                    }
                }
                return;
            }
            Event::SubflowClosed(sub) => {
                let mut inner = self.inner();
                inner.core.forget(sub.local, sub.remote);
                if let Some(conn) = inner.conns.get_mut(&sub.token) {
                    conn.backups.remove(&(sub.local, sub.remote));
                    conn.closed.insert((sub.local, sub.remote));
                }
                return;
            }
            Event::Telemetry(t) => {
                let mut inner = self.inner();
                let closed = inner
                    .conns
                    .get(&t.token)
                    .is_some_and(|c| c.closed.contains(&(t.local, t.remote)));
                if closed {
                    return;
                }
                inner.core.observe(now, t.local, t.remote, t.figures);
                if let TelemetryKind::Rto { consecutive } = t.kind {
                    inner.core.rto(t.local, t.remote, consecutive);
                }
                if let Some(conn) = inner.conns.get_mut(&t.token) {
                    conn.seen.insert((t.local, t.remote));
                }
                inner.core.evaluate(now)
            }
            Event::Tick => {
                let (decisions, joins) = self.tick(now, pm);
                self.act(now, decisions, pm).await;
                for path in joins {
                    if let Err(e) = actions::backup_join(self, path, pm).await {
                        warn!(
                            "setting the backup flag of subflow {} -> {}: {}",
                            path.local,
                            path.remote,
                            Chain(&e)
                        );
                    }
                }
                self.reprobe(now, pm).await;
                return;
            }
            _ => return,
        };
        self.act(now, decisions, pm).await;
    }

    async fn act(&self, now: Duration, decisions: Vec<Decision>, pm: &dyn PathManager) {
        for d in decisions {
            let Decision {
                addr,
                from,
                to,
                figures,
            } = d;
            let phase = self.inner().reprobe.phase(addr);
            let action = match phase {
                // Its re-probe died: closed again, with a longer wait.
                Some(Phase::Probing { .. }) if to == State::Dead => {
                    info!(%addr, "path {addr} dead again while re-probed: {figures}");
                    let action = actions::close_path(self, addr, now, pm).await;
                    info!(%addr, "path {addr}: {action}");
                    report(pm, addr, State::Dead, State::Dead, figures, action);
                    continue;
                }
                // The re-probe decides, not the core's view of a closed path.
                Some(_) => {
                    debug!(%addr, %to, "path {addr} being re-probed: {to} ignored");
                    continue;
                }
                None => {
                    info!(%addr, %from, %to, "path {addr} {to} (was {from}): {figures}");
                    match to {
                        State::Dead => actions::close_path(self, addr, now, pm).await,
                        State::Degraded | State::Healthy => {
                            actions::set_backup(self, addr, to == State::Degraded, pm).await
                        }
                    }
                }
            };
            info!(%addr, "path {addr}: {action}");
            report(pm, addr, from, to, figures, action);
        }
    }

    /// What the re-probe schedule says is due at `now`, after the tests that ended.
    async fn reprobe(&self, now: Duration, pm: &dyn PathManager) {
        let ended: Vec<(IpAddr, SocketAddr, ProbeOutcome)> = {
            let mut inner = self.inner();
            let mut ended = Vec::new();
            inner.tests.retain(|&addr, test| match test.outcome() {
                Some(outcome) => {
                    ended.push((addr, test.remote, outcome));
                    false
                }
                None => true,
            });
            ended
        };
        for (addr, remote, outcome) in ended {
            self.test_ended(addr, remote, &outcome, now, pm).await;
        }
        // Twice: an unanswered test's path is due again at once (its next test).
        for _pass in 0..2 {
            let steps = self.inner().reprobe.due(now);
            if steps.is_empty() {
                break;
            }
            self.steps(steps, now, pm).await;
        }
    }

    /// Does what the schedule says is due.
    async fn steps(&self, steps: Vec<Step>, now: Duration, pm: &dyn PathManager) {
        for step in steps {
            let (addr, to, action) = match step {
                Step::Reopen(addr) => {
                    if let Some(action) = actions::start_test(self, addr, now, pm) {
                        (addr, State::Dead, action)
                    } else if let Some(action) = actions::reopen(self, addr, now, pm).await {
                        (addr, State::Dead, action)
                    } else {
                        self.release(addr, now);
                        let action = "nothing left to re-probe: released".to_owned();
                        (addr, State::Healthy, action)
                    }
                }
                Step::Failed(addr) if self.inner().tests.contains_key(&addr) => {
                    // Its test's own timeout is the test window too: a last look.
                    let test = self.inner().tests.remove(&addr);
                    if let Some(mut test) = test {
                        let outcome = test.outcome().unwrap_or(ProbeOutcome::NoAnswer);
                        self.test_ended(addr, test.remote, &outcome, now, pm).await;
                    }
                    continue;
                }
                Step::Failed(addr) => {
                    let window = self.inner().reprobe.window();
                    let mut action = format!(
                        "re-probe failed (no subflow established within {} s): ",
                        window.as_secs_f32()
                    );
                    action.push_str(&actions::close_path(self, addr, now, pm).await);
                    (addr, State::Dead, action)
                }
                Step::Recovered(addr) => {
                    self.release(addr, now);
                    let action = format!(
                        "re-probe held for {} s: path in use again, backoff reset",
                        self.hold_secs()
                    );
                    (addr, State::Healthy, action)
                }
            };
            info!(%addr, "path {addr}: {action}");
            report(pm, addr, State::Dead, to, Figures::default(), action);
        }
    }

    /// A dead path's test ended: answered, the path is re-opened at once; else it stays
    /// closed until the next one.
    async fn test_ended(
        &self,
        addr: IpAddr,
        remote: SocketAddr,
        outcome: &ProbeOutcome,
        now: Duration,
        pm: &dyn PathManager,
    ) {
        let within = if *outcome == ProbeOutcome::NoAnswer {
            let window = self.inner().reprobe.test_window();
            format!(" within {} s", window.as_secs_f32())
        } else {
            String::new()
        };
        let tested = format!("test from {addr} to {remote}: {outcome}{within}");
        let (to, action) = if outcome.answered() {
            if let Some(action) = actions::reopen(self, addr, now, pm).await {
                (State::Dead, format!("{tested}; {action}"))
            } else {
                self.release(addr, now);
                let action = format!("{tested}; nothing to re-open: released");
                (State::Healthy, action)
            }
        } else {
            let closed = actions::close_path(self, addr, now, pm).await;
            (State::Dead, format!("{tested}: {closed}"))
        };
        info!(%addr, "path {addr}: {action}");
        report(pm, addr, State::Dead, to, Figures::default(), action);
    }

    /// A dead path is done with: healthy again for the core (the hold time runs from now).
    fn release(&self, addr: IpAddr, now: Duration) {
        let mut inner = self.inner();
        inner.reprobe.forget(addr);
        inner.closed.remove(&addr);
        inner.suspended.remove(&addr);
        inner.peers.remove(&addr);
        inner.tests.remove(&addr);
        inner.core.set_state(addr, State::Healthy, now);
    }
}

/// Tells the daemon (metrics, D-Bus) what was decided and done.
fn report(
    pm: &dyn PathManager,
    addr: IpAddr,
    from: State,
    to: State,
    figures: Figures,
    action: String,
) {
    pm.report_decision(PathDecision {
        plugin: NAME,
        addr,
        from,
        to,
        reason: figures.to_string(),
        action,
    });
}

impl Plugin for Health {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "a local address degraded across connections becomes backup; a dead one is closed \
         and re-probed"
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
        inner.policy = config.policy.clone();
        let changed = config::changes(&inner.config, &config.health);
        if changed.is_empty() {
            return;
        }
        inner.config = config.health;
        inner.core.set_thresholds(config.health.into());
        let HealthConfig {
            hold_secs,
            reprobe_max_secs,
            ..
        } = config.health;
        inner.reprobe.set_schedule(
            Duration::from_secs(hold_secs.into()),
            Duration::from_secs(reprobe_max_secs.into()),
        );
        info!("health: new settings apply: {}", changed.join(", "));
    }

    fn on_event<'a>(&'a self, event: &'a Event, pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(self.handle(self.now(), event, pm))
    }
}

#[cfg(test)]
mod tests;
