//! The daemon's D-Bus surface (`docs/dbus.md`): the name `org.mptcpd.Mptcpd` on the
//! system bus (`DBUS_SYSTEM_BUS_ADDRESS` honoured), the manager object (read-only `Manager1`,
//! state-changing `Control1`), and one object per MPTCP connection under an
//! `ObjectManager`, kept in step with the connection table.
//! Without a bus, or with the name taken, one warning and the daemon runs on.

mod caller;
mod claims;
mod connection;
mod control;
mod errors;
mod external;
mod health;
mod manager;
mod signals;
mod wire;

use std::{collections::HashMap, sync::Arc, time::Duration};

use mptcp_pm::{PmClient, Token};
use mptcpd_common::{
    Chain,
    dbus::{BUS_NAME, MANAGER_PATH},
};
use tokio::sync::{mpsc, watch};
use zbus::{
    fdo::{ObjectManager, RequestNameFlags},
    object_server::ObjectServer,
    zvariant::OwnedObjectPath,
};

use crate::{
    config::Config,
    connections::Connections,
    plugins::{Decisions, HostPm, NetlinkPm},
};
pub(crate) use claims::SharedClaims;
use connection::Connection;
use external::External;
use manager::{Manager, ManagerSignals as _};

/// How often at most the manager sends `FiguresUpdated`.
const FIGURES_PERIOD: Duration = Duration::from_secs(1);

/// A bound on connecting and claiming the name: a bus that does not answer is no bus.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon's side of the bus task: what it tells the bus after start.
#[derive(Debug)]
pub(crate) struct Bus {
    config: watch::Sender<Vec<(&'static str, String)>>,
    events: signals::Sink,
    claims: SharedClaims,
}

impl Bus {
    /// Connects in the background (the daemon does not wait for the bus) and serves the
    /// objects until the daemon stops. The connections external path managers give back
    /// (they unregistered or left the bus) come out of `handback`, for the default plugin.
    pub(crate) fn spawn(
        pm: PmClient,
        handle: Arc<HostPm<NetlinkPm>>,
        connections: Connections,
        decisions: Decisions,
        plugins: Vec<String>,
        config: &Config,
        handback: mpsc::UnboundedSender<Vec<Token>>,
    ) -> Self {
        let (sender, receiver) = watch::channel(crate::config::pairs(config));
        let (events, source) = signals::queue();
        let sink = events.clone();
        decisions.observe(move |d| sink.decision(d));
        let manager = Manager {
            pm,
            plugins,
            config: receiver.clone(),
            decisions: decisions.clone(),
        };
        let claims = SharedClaims::default();
        let external = External {
            claims: claims.clone(),
            handback,
        };
        let control = control::Control {
            pm: Arc::clone(&handle),
            allowed: caller::Allowed {
                name: config.dbus_group.clone(),
            },
            external: external.clone(),
            connections: connections.clone(),
        };
        tokio::spawn(async move {
            let connecting = connect(manager, control);
            let connection = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(e)) => {
                    tracing::warn!("D-Bus: {}; running without the D-Bus interface", Chain(&e));
                    return;
                }
                Err(_) => {
                    tracing::warn!(
                        "D-Bus: no answer from the system bus in {}s; running without the \
                         D-Bus interface",
                        CONNECT_TIMEOUT.as_secs()
                    );
                    return;
                }
            };
            tracing::info!("D-Bus: serving {BUS_NAME}");
            tokio::spawn(external::watch_departures(
                connection.clone(),
                external,
                handle,
            ));
            serve(
                &connection,
                Sources {
                    connections,
                    decisions,
                },
                receiver,
                source,
            )
            .await;
        });
        Self {
            config: sender,
            events,
            claims,
        }
    }

    /// An MPTCP event, for its signal; never waits. Returns whether an external path manager
    /// handles its connection (then the plugins must not see it).
    pub(crate) fn pm_event(&self, event: &mptcp_pm::Event) -> bool {
        let owner = self.claims.lock().route(event);
        let claimed = owner.is_some();
        self.events.pm_event(event, owner);
        claimed
    }

    /// The claims of external path managers (after lost events, the event loop keeps the
    /// live ones from the plugins).
    pub(crate) const fn claims(&self) -> &SharedClaims {
        &self.claims
    }

    /// A network-monitor event, for its signal; never waits.
    pub(crate) fn net_event(&self, event: &mptcpd_netmon::NetEvent) {
        self.events.net_event(event);
    }

    /// A reload changed the effective configuration.
    pub(crate) fn configuration(&self, config: &Config) {
        self.config.send_replace(crate::config::pairs(config));
    }
}

/// Connects, serves the manager, then claims the name: not queued behind, nor replacing, nor
/// replaceable by, another owner (a second daemon on the same bus stays off it).
async fn connect(manager: Manager, control: control::Control) -> zbus::Result<zbus::Connection> {
    let connection = zbus::connection::Builder::system()?
        .serve_at(MANAGER_PATH, ObjectManager)?
        .serve_at(MANAGER_PATH, manager)?
        .serve_at(MANAGER_PATH, control)?
        .build()
        .await?;
    connection
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DoNotQueue.into())
        .await?;
    Ok(connection)
}

/// One connection object.
struct Object {
    path: OwnedObjectPath,
    shape: wire::Shape,
}

/// What the objects show.
struct Sources {
    connections: Connections,
    decisions: Decisions,
}

/// Keeps the connection objects in step with the table, sends the figures at most once per
/// [`FIGURES_PERIOD`] while they change, invalidates `PathHealth` when a decision changed it,
/// sends the configuration when a reload changes it, and sends the event signals.
async fn serve(
    bus: &zbus::Connection,
    sources: Sources,
    mut config: watch::Receiver<Vec<(&'static str, String)>>,
    mut events: signals::Source,
) {
    let Sources {
        connections,
        decisions,
    } = &sources;
    let server = bus.object_server();
    let mut path_health = health::all(decisions);
    let mut changes = connections.changes();
    let mut objects: HashMap<Token, Object> = HashMap::new();
    let mut paths = signals::Paths::default();
    let Ok(emitter) = zbus::object_server::SignalEmitter::new(bus, MANAGER_PATH) else {
        return;
    };
    let mut sent = wire::Sent::default();
    let mut tick = tokio::time::interval(FIGURES_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            table_changed = changes.changed() => {
                if table_changed.is_err() {
                    return;
                }
                sync(server, &sources, &mut objects, &mut paths).await;
            }
            _ = tick.tick() => {
                // `Established` and the judgements change without a table change; a tick
                // catches them.
                sync(server, &sources, &mut objects, &mut paths).await;
                let now = health::all(decisions);
                if now != path_health
                    && let Ok(manager) = server.interface::<_, Manager>(MANAGER_PATH).await
                {
                    let emitter = manager.signal_emitter();
                    report(manager.get().await.path_health_invalidate(emitter), "PathHealth").await;
                }
                path_health = now;
                let due = sent.due(&connections.all(), |t| objects.get(&t).map(|o| o.path.clone()));
                if !due.is_empty()
                    && let Ok(manager) = server.interface::<_, Manager>(MANAGER_PATH).await
                {
                    report(manager.figures_updated(due), "FiguresUpdated").await;
                }
            }
            Some((event, dropped)) = events.recv() => {
                if dropped > 0 {
                    report(Manager::signals_dropped(&emitter, dropped), "SignalsDropped").await;
                }
                // A new connection's object first, so that its path leads somewhere.
                if let signals::BusEvent::Pm(mptcp_pm::Event::Created(c), _) = &event
                    && !objects.contains_key(&c.token)
                {
                    sync(server, &sources, &mut objects, &mut paths).await;
                }
                report(signals::emit(&emitter, &mut paths, &event), "an event signal").await;
            }
            config_changed = config.changed() => {
                if config_changed.is_err() {
                    return;
                }
                if let Ok(manager) = server.interface::<_, Manager>(MANAGER_PATH).await {
                    let emitter = manager.signal_emitter();
                    report(manager.get().await.configuration_changed(emitter), "Configuration").await;
                }
            }
        }
    }
}

/// Sends a signal, logging (debug) a failure: a bus that went away is not the daemon's
/// problem.
async fn report(sending: impl Future<Output = zbus::Result<()>>, what: &str) {
    if let Err(e) = sending.await {
        tracing::debug!("D-Bus: sending {what}: {}", Chain(&e));
    }
}

/// Adds the objects of new connections, removes those of closed ones, and signals property
/// changes of the others.
async fn sync(
    server: &ObjectServer,
    sources: &Sources,
    objects: &mut HashMap<Token, Object>,
    paths: &mut signals::Paths,
) {
    let Sources {
        connections,
        decisions,
    } = sources;
    let views = connections.all();
    let live: std::collections::HashSet<Token> = views.iter().map(|v| v.token).collect();
    let gone: Vec<Token> = objects
        .keys()
        .filter(|t| !live.contains(t))
        .copied()
        .collect();
    for token in gone {
        paths.retire(token);
        if let Some(object) = objects.remove(&token)
            && let Err(e) = server.remove::<Connection, _>(&object.path).await
        {
            tracing::debug!("D-Bus: removing {}: {}", object.path.as_str(), Chain(&e));
        }
    }
    for view in &views {
        let shape = wire::Shape::of(view, decisions);
        if let Some(object) = objects.get_mut(&view.token) {
            if object.shape != shape {
                changed(server, &object.path, &object.shape, &shape).await;
                object.shape = shape;
            }
            continue;
        }
        let path = paths.of(view.token);
        match server
            .at(
                &path,
                Connection::new(view, connections.clone(), decisions.clone()),
            )
            .await
        {
            Ok(_) => {
                objects.insert(view.token, Object { path, shape });
            }
            Err(e) => tracing::debug!("D-Bus: adding {}: {}", path.as_str(), Chain(&e)),
        }
    }
}

/// `PropertiesChanged` for what changed between `old` and `new`.
async fn changed(
    server: &ObjectServer,
    path: &OwnedObjectPath,
    old: &wire::Shape,
    new: &wire::Shape,
) {
    let Ok(object) = server.interface::<_, Connection>(path).await else {
        return;
    };
    let emitter = object.signal_emitter();
    let iface = object.get().await;
    if old.established != new.established {
        report(iface.established_changed(emitter), "Established").await;
    }
    if old.subflows != new.subflows {
        report(iface.subflows_invalidate(emitter), "Subflows").await;
    }
    if old.path_health != new.path_health {
        report(iface.path_health_invalidate(emitter), "PathHealth").await;
    }
}
