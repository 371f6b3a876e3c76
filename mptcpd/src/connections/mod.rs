//! The daemon's view of its network namespace's MPTCP connections: the path manager's table
//! (from `mptcp_pm` events: token, ids, interface, backup) joined with the subflow telemetry's
//! figures. One shared handle ([`Connections`]) feeds the plugins' handle
//! (`PathManager::connection_view`), the D-Bus objects, the metrics and `mptcpctl`.

mod table;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use mptcp_pm::{Event, Token};
use mptcpd_plugin::ConnectionView;
use tokio::sync::watch;

pub use table::Table;

/// A cheap, shared handle on the connection table.
#[derive(Clone)]
pub struct Connections {
    inner: Arc<Shared>,
}

struct Shared {
    table: Mutex<Table>,
    /// Bumped when a connection or a subflow appears or goes (not when figures change).
    changes: watch::Sender<u64>,
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
        Self {
            inner: Arc::new(Shared {
                table: Mutex::new(Table::default()),
                changes: watch::Sender::new(0),
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a table that is still consistent per entry.
        self.inner
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Every connection, by token order.
    #[must_use]
    pub fn all(&self) -> Vec<ConnectionView> {
        self.table().all()
    }

    /// One connection.
    #[must_use]
    pub fn get(&self, token: Token) -> Option<ConnectionView> {
        self.table().get(token)
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
