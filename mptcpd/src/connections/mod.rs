//! The daemon's view of its network namespace's MPTCP connections: the path manager's table
//! (from `mptcp_pm` events: token, ids, interface, backup) joined with the subflow telemetry's
//! figures. One shared handle ([`Connections`]) feeds the plugins' handle
//! (`PathManager::connection_view`), the D-Bus objects, the metrics and `mptcpctl`.

mod join;
mod sources;
mod table;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use mptcp_pm::{Event, Token, canonical};
use mptcpd_common::{Chain, telemetry::SubflowRecord};
use mptcpd_plugin::{ConnectionView, TelemetryEvent, TelemetryKind};
use tokio::sync::{mpsc, watch};

pub use join::{Figures, ProbedRetransmits, mptcp_figures, path_figures};
pub use sources::{KernelDiag, RecordSource, SocketSource};
pub use table::Table;

use crate::diag::MptcpSocket;

/// Telemetry events queued for the plugins at most; beyond, they are dropped (with a debug
/// line): the ring buffer's own bound, and at most one fallback per connection.
const EVENTS_QUEUED: usize = 1024;

/// A cheap, shared handle on the connection table.
#[derive(Clone)]
pub struct Connections {
    inner: Arc<Shared>,
}

struct Shared {
    table: Mutex<Table>,
    /// Bumped when a connection or a subflow appears or goes (not when figures change).
    changes: watch::Sender<u64>,
    sources: Mutex<Sources>,
    /// Telemetry events for the plugins (see [`Connections::take_events`]).
    events: mpsc::Sender<TelemetryEvent>,
    events_rx: Mutex<Option<mpsc::Receiver<TelemetryEvent>>>,
}

/// Where figures are read from; none set: views without figures.
#[derive(Default)]
struct Sources {
    records: Option<Arc<dyn RecordSource>>,
    sockets: Option<Arc<dyn SocketSource>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves data that is still consistent per entry.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("connections", &self.table().len())
            .finish()
    }
}

impl Default for Connections {
    fn default() -> Self {
        Self::new()
    }
}

impl Connections {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        let (events, events_rx) = mpsc::channel(EVENTS_QUEUED);
        Self {
            inner: Arc::new(Shared {
                table: Mutex::new(Table::default()),
                changes: watch::Sender::new(0),
                sources: Mutex::default(),
                events,
                events_rx: Mutex::new(Some(events_rx)),
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.inner.table)
    }

    /// Subflow figures from now on come from `source` (the subflow telemetry, when it runs);
    /// `None`: no more subflow figures.
    pub fn set_record_source(&self, source: Option<Arc<dyn RecordSource>>) {
        lock(&self.inner.sources).records = source;
    }

    /// Connection-level figures from now on come from `source` (the daemon: `mptcp_diag`).
    pub fn set_socket_source(&self, source: Option<Arc<dyn SocketSource>>) {
        lock(&self.inner.sources).sockets = source;
    }

    /// Every connection, by token order, with the figures read now: one walk of the
    /// telemetry's records and one `mptcp_diag` dump, whatever the number of connections.
    #[must_use]
    pub fn all(&self) -> Vec<ConnectionView> {
        let (records, sockets, probed) = self.read_sources();
        let figures =
            Figures::new(&records, sockets.as_deref()).with_probed_retransmits(probed.as_ref());
        let mut views = self.table().all();
        for view in &mut views {
            figures.fill(view);
        }
        self.report_fallbacks(&views);
        views
    }

    /// One connection, with its figures read now.
    #[must_use]
    pub fn get(&self, token: Token) -> Option<ConnectionView> {
        // Nothing is read for a connection the table does not have.
        self.table().get(token)?;
        let (records, sockets, probed) = self.read_sources();
        let figures =
            Figures::new(&records, sockets.as_deref()).with_probed_retransmits(probed.as_ref());
        let mut view = self.table().get(token)?;
        figures.fill(&mut view);
        self.report_fallbacks(std::slice::from_ref(&view));
        Some(view)
    }

    /// The token of the connection that has a subflow from `local` to `remote`.
    #[must_use]
    pub fn token_of(&self, local: SocketAddr, remote: SocketAddr) -> Option<Token> {
        let (local, remote) = (canonical(local), canonical(remote));
        self.table()
            .all()
            .into_iter()
            .find(|v| {
                v.subflows
                    .iter()
                    .any(|s| s.local == local && s.remote == remote)
            })
            .map(|v| v.token)
    }

    /// Reads the sources, without holding the table's lock; a source that fails gives no
    /// figures this time (one debug line).
    fn read_sources(
        &self,
    ) -> (
        Vec<SubflowRecord>,
        Option<Vec<MptcpSocket>>,
        Option<ProbedRetransmits>,
    ) {
        // The sources are cloned out: no lock is held while they read.
        let (records, sockets) = {
            let Sources { records, sockets } = &*lock(&self.inner.sources);
            (records.clone(), sockets.clone())
        };
        let probed = records.as_ref().and_then(|source| {
            source
                .mptcp_retransmits()
                .map_err(|e| tracing::debug!("probed retransmissions not read: {}", Chain(&e)))
                .ok()
                .flatten()
        });
        let records = records.map_or_else(Vec::new, |source| {
            source.records().unwrap_or_else(|e| {
                tracing::debug!("subflow figures not read: {}", Chain(&e));
                Vec::new()
            })
        });
        let sockets = sockets.and_then(|source| {
            source
                .sockets()
                .map_err(|e| tracing::debug!("MPTCP figures not read: {}", Chain(&e)))
                .ok()
        });
        (records, sockets, probed)
    }

    /// Queues an event for the plugin that handles its connection (the daemon passes them
    /// on); dropped, with a debug line, while [`EVENTS_QUEUED`] are waiting.
    pub fn report(&self, event: TelemetryEvent) {
        if self.inner.events.try_send(event).is_err() {
            tracing::debug!("telemetry event dropped: the plugins' queue is full");
        }
    }

    /// The telemetry events for the plugins: the ring buffer's (through [`Self::report`]) and
    /// a `Fallback` when a view read shows a connection's fallback flag for the first time.
    /// Once only (`None` after).
    #[must_use]
    pub fn take_events(&self) -> Option<mpsc::Receiver<TelemetryEvent>> {
        lock(&self.inner.events_rx).take()
    }

    fn report_fallbacks(&self, views: &[ConnectionView]) {
        let fallen = self.table().new_fallbacks(views);
        for view in fallen {
            let figures = view
                .subflows
                .first()
                .and_then(|s| s.figures)
                .unwrap_or_default();
            let event = TelemetryEvent::new(
                view.token,
                view.local,
                view.remote,
                TelemetryKind::Fallback,
                figures,
            );
            self.report(event);
        }
    }

    /// After lost `mptcp_pm` events: the kernel's list of connections (see [`Table::resync`]).
    pub fn resync(&self, live: &[MptcpSocket]) {
        if self.table().resync(live) {
            self.changed();
        }
    }

    /// Changes whenever a connection or subflow appears or goes; figures are read on demand.
    #[must_use]
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Applies a path-manager event.
    pub fn on_pm_event(&self, event: &Event) {
        if self.table().apply(event) {
            self.changed();
        }
    }

    fn changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests;
