//! The one `mptcp_pm` event listener of a namespace: every timestamp of the storm comes from
//! here (the moment an event is read), the same for every subject; never from polling. It also
//! tells the clients when their connection reached what they wait for.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::Instant,
};

use anyhow::Context as _;
use mptcp_pm::{Event, EventItem, PmClient};
use tokio::sync::oneshot;

use mptcpd_tests::net::netns::NetNs;

/// What a client waits for before it closes its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Until {
    /// ESTABLISHED (the C daemon's `sspi` opens no subflow).
    Established,
    /// The first `SUB_ESTABLISHED`: the second subflow.
    Joined,
}

/// One connection as the events showed it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Seen {
    /// The initial subflow's local port (the client's key).
    pub(super) port: u16,
    pub(super) established: Option<Instant>,
    /// The first `SUB_ESTABLISHED`.
    pub(super) joined: Option<Instant>,
    pub(super) closed: bool,
}

/// What a round's events showed.
#[derive(Debug, Default)]
pub(super) struct Heard {
    /// By token.
    pub(super) connections: HashMap<u32, Seen>,
    /// Events by kind.
    pub(super) by_kind: BTreeMap<&'static str, u64>,
    /// The listener's own receive-buffer overruns (its timings are then incomplete).
    pub(super) overruns: u64,
}

impl Heard {
    /// Events of `kind` (`SUB_ESTABLISHED`, `ANNOUNCED`, ...).
    pub(super) fn count(&self, kind: &str) -> u64 {
        self.by_kind.get(kind).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct State {
    heard: Heard,
    by_port: HashMap<u16, u32>,
    waiters: HashMap<u16, (Until, oneshot::Sender<()>)>,
}

impl State {
    fn reached(&self, port: u16, until: Until) -> bool {
        let seen = self
            .by_port
            .get(&port)
            .and_then(|token| self.heard.connections.get(token));
        match until {
            Until::Established => seen.is_some_and(|s| s.established.is_some()),
            Until::Joined => seen.is_some_and(|s| s.joined.is_some()),
        }
    }

    fn wake(&mut self, port: u16) {
        if let Some(&(until, _)) = self.waiters.get(&port)
            && self.reached(port, until)
            && let Some((_, waiter)) = self.waiters.remove(&port)
        {
            let _gone = waiter.send(());
        }
    }

    fn record(&mut self, event: &Event, at: Instant) {
        *self.heard.by_kind.entry(kind(event)).or_default() += 1;
        let (token, port) = match event {
            Event::Created(c) | Event::Established(c) => (c.token, Some(c.local.port())),
            Event::SubflowEstablished(s) => (s.token, None),
            Event::Closed { token } => (*token, None),
            _ => return,
        };
        let seen = self.heard.connections.entry(token).or_default();
        match event {
            Event::Established(_) => {
                seen.established.get_or_insert(at);
            }
            Event::SubflowEstablished(_) => {
                seen.joined.get_or_insert(at);
            }
            Event::Closed { .. } => seen.closed = true,
            _ => {}
        }
        if let Some(port) = port {
            seen.port = port;
            self.by_port.insert(port, token);
        }
        let port = seen.port;
        self.wake(port);
    }
}

/// The listener: a thread reading the namespace's events until dropped.
#[derive(Debug)]
pub(super) struct Listener {
    state: Arc<Mutex<State>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Listener {
    /// Subscribes in `ns` (events from the moment this returns are heard) and starts reading.
    pub(super) fn start(ns: &NetNs) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut events = {
            let _in = ns.enter()?;
            rt.block_on(async {
                let pm = PmClient::connect().await?;
                pm.subscribe()
            })
            .context("subscribing to mptcp_pm events")?
        };
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = oneshot::channel();
        let thread = {
            let state = Arc::clone(&state);
            std::thread::spawn(move || {
                rt.block_on(async {
                    loop {
                        tokio::select! {
                            item = events.recv() => {
                                let item = item?;
                                let at = Instant::now();
                                let mut state = lock(&state);
                                match item {
                                    EventItem::Event(event) => state.record(&event, at),
                                    EventItem::Overrun => state.heard.overruns += 1,
                                    EventItem::Malformed(_) => {}
                                }
                            }
                            _ = &mut stopped => return anyhow::Ok(()),
                        }
                    }
                })
            })
        };
        Ok(Self {
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Resolves once the connection whose initial subflow has local port `port` reached
    /// `until` (at once if it has).
    pub(super) fn wait(&self, port: u16, until: Until) -> oneshot::Receiver<()> {
        let (waiter, reached) = oneshot::channel();
        let mut state = lock(&self.state);
        state.waiters.insert(port, (until, waiter));
        state.wake(port);
        reached
    }

    /// What was heard since the last call; starts afresh.
    pub(super) fn take(&self) -> Heard {
        let mut state = lock(&self.state);
        state.by_port.clear();
        state.waiters.clear();
        std::mem::take(&mut state.heard)
    }

    /// How many of the connections heard so far were closed, of how many.
    pub(super) fn closed(&self) -> (usize, usize) {
        let state = lock(&self.state);
        let all = &state.heard.connections;
        (all.values().filter(|s| s.closed).count(), all.len())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _gone = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("bench: storm: the event listener failed: {e:#}"),
                Err(_) => eprintln!("bench: storm: the event listener panicked"),
            }
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The kernel's name of an event.
fn kind(event: &Event) -> &'static str {
    match event {
        Event::Created(_) => "CREATED",
        Event::Established(_) => "ESTABLISHED",
        Event::Closed { .. } => "CLOSED",
        Event::Announced(_) => "ANNOUNCED",
        Event::Removed { .. } => "REMOVED",
        Event::SubflowEstablished(_) => "SUB_ESTABLISHED",
        Event::SubflowClosed(_) => "SUB_CLOSED",
        Event::SubflowPriority(_) => "SUB_PRIORITY",
        Event::ListenerCreated(_) => "LISTENER_CREATED",
        Event::ListenerClosed(_) => "LISTENER_CLOSED",
        Event::Other(_) => "other",
    }
}
