//! Lanes: events of one connection (or of the network, or of one listening address) run in
//! order, one at a time; lanes run concurrently on the tokio runtime.
//!
//! A lane is a chain of tasks: each job's task first awaits the task of the job queued before
//! it in the same lane, so only the last task of each lane is kept. A semaphore bounds the
//! jobs queued or running, so that a storm of events waits at the event socket (where an
//! overrun leads to a resync) instead of piling up in memory.

use std::{
    collections::HashMap, future::Future, net::SocketAddr, panic::AssertUnwindSafe, sync::Arc,
};

use futures_util::FutureExt as _;
use mptcpd_plugin::Token;
use tokio::{sync::Semaphore, task::JoinHandle};
use tracing::error;

use crate::stats::Stats;

/// Jobs queued or running at most, over all lanes.
const MAX_QUEUED: usize = 4096;
/// Finished lanes are forgotten when the map has grown this much since the last sweep.
const SWEEP_AFTER: usize = 256;

/// What orders events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Lane {
    /// A connection's events.
    Connection(Token),
    /// Interface and address events (an interface's removal must follow its addresses').
    Network,
    /// A listening address's events.
    Listener(SocketAddr),
}

impl Lane {
    /// For logs: tokens are never logged (C mptcpd issue #25).
    const fn kind(self) -> &'static str {
        match self {
            Self::Connection(_) => "connection",
            Self::Network => "network",
            Self::Listener(_) => "listener",
        }
    }
}

/// The last task of each lane.
#[derive(Debug)]
pub(super) struct Lanes {
    tails: HashMap<Lane, JoinHandle<()>>,
    queued: Arc<Semaphore>,
    swept_at: usize,
    /// Counts the jobs that panicked.
    stats: Arc<Stats>,
}

impl Default for Lanes {
    fn default() -> Self {
        Self {
            tails: HashMap::new(),
            queued: Arc::new(Semaphore::new(MAX_QUEUED)),
            swept_at: 0,
            stats: Arc::default(),
        }
    }
}

impl Lanes {
    /// Queues `job` at the end of `lane`; waits only while [`MAX_QUEUED`] jobs are queued.
    /// A job that panics is logged, and its lane goes on.
    pub(super) async fn run(&mut self, lane: Lane, job: impl Future<Output = ()> + Send + 'static) {
        let Ok(permit) = Arc::clone(&self.queued).acquire_owned().await else {
            unreachable!("the semaphore is never closed");
        };
        let before = self.tails.remove(&lane);
        let stats = Arc::clone(&self.stats);
        let task = tokio::spawn(async move {
            if let Some(before) = before {
                // Jobs catch their panics: the task itself does not fail.
                let _finished = before.await;
            }
            if AssertUnwindSafe(job).catch_unwind().await.is_err() {
                error!(lane = lane.kind(), "a plugin panicked handling an event");
                stats.plugin_error();
            }
            drop(permit);
        });
        self.tails.insert(lane, task);
        if self.tails.len() >= self.swept_at + SWEEP_AFTER {
            self.tails.retain(|_, task| !task.is_finished());
            self.swept_at = self.tails.len();
        }
    }

    /// The counters the lanes add to.
    pub(super) const fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Waits until every job queued so far has run.
    pub(super) async fn drain(&mut self) {
        for (_, task) in self.tails.drain() {
            let _finished = task.await;
        }
        self.swept_at = 0;
    }
}
