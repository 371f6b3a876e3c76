//! The manager's event signals: every MPTCP and network event the plugins see, and every
//! health decision, as `org.mptcpd.Manager1` signals (`docs/dbus.md`).
//!
//! The event loop hands events to a [`Sink`], which never waits: a bounded queue to the bus
//! task, whose overflow is dropped, counted and logged (a slow bus must not slow path
//! management). The bus task names connections by their object paths ([`Paths`]), never by
//! their tokens.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use mptcp_pm::{Event, Token};
use mptcpd_common::dbus::{CONNECTION_PATH_PREFIX, NO_ID};
use mptcpd_netmon::{Interface, NetEvent, OperState};
use mptcpd_plugin::PathDecision;
use tokio::sync::mpsc;
use zbus::{object_server::SignalEmitter, zvariant::OwnedObjectPath};

use super::{claims::Owner, control::Control, manager::Manager};

/// Events queued for the bus at most; more are dropped until the bus task catches up.
const QUEUE: usize = 4096;

/// Test-only: a smaller queue, so that a test can overflow it (`tests/tests/dbus_signals.rs`).
const TEST_QUEUE: &str = "MPTCPD_TEST_DBUS_QUEUE";

/// What the bus task turns into a signal.
#[derive(Debug, Clone)]
pub(super) enum BusEvent {
    /// With the external path manager that handles its connection, if one does.
    Pm(Event, Option<Owner>),
    Net(NetEvent),
    Decision(PathDecision),
}

/// The event loop's end of the queue; a clone shares it.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    queue: mpsc::Sender<BusEvent>,
    dropped: Arc<AtomicU64>,
}

/// The bus task's end of the queue.
pub(super) struct Source {
    queue: mpsc::Receiver<BusEvent>,
    dropped: Arc<AtomicU64>,
}

/// A queue of [`QUEUE`] events (or the test setting's).
pub(super) fn queue() -> (Sink, Source) {
    let test_size = std::env::var(TEST_QUEUE).ok().and_then(|n| n.parse().ok());
    if let Some(size) = test_size {
        tracing::warn!("{TEST_QUEUE}={size}: a test setting, not for production");
    }
    let (sender, receiver) = mpsc::channel(test_size.unwrap_or(QUEUE).max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        Sink {
            queue: sender,
            dropped: Arc::clone(&dropped),
        },
        Source {
            queue: receiver,
            dropped,
        },
    )
}

impl Sink {
    /// Queues an MPTCP event (those the plugins do not see are left out), with the external
    /// path manager that handles its connection.
    pub(crate) fn pm_event(&self, event: &Event, owner: Option<Owner>) {
        if !matches!(event, Event::Other(_)) {
            self.send(BusEvent::Pm(event.clone(), owner));
        }
    }

    /// Queues a network-monitor event.
    pub(crate) fn net_event(&self, event: &NetEvent) {
        self.send(BusEvent::Net(event.clone()));
    }

    /// Queues a health decision.
    pub(crate) fn decision(&self, decision: &PathDecision) {
        self.send(BusEvent::Decision(decision.clone()));
    }

    fn send(&self, event: BusEvent) {
        // Closed: no bus task (no bus), nobody to tell.
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(event)
            && self.dropped.fetch_add(1, Ordering::Relaxed) == 0
        {
            tracing::warn!(
                "D-Bus: the bus is behind; dropping event signals (counted when it catches up)"
            );
        }
    }
}

impl Source {
    /// The next event, and how many were dropped before it (logged).
    pub(super) async fn recv(&mut self) -> Option<(BusEvent, u64)> {
        let event = self.queue.recv().await?;
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!("D-Bus: {dropped} event signals dropped: the bus was behind");
        }
        Some((event, dropped))
    }
}

/// Paths of closed connections kept for their late `ConnectionClosed`.
const RETIRED: usize = 1024;

/// Connection object paths by token: `CONNECTION_PATH_PREFIX` + a counter, handed out when a
/// connection is first seen (its object, or an event about it), kept until its
/// `ConnectionClosed` (or, if that was lost, among the last [`RETIRED`] closed).
#[derive(Debug, Default)]
pub(super) struct Paths {
    counter: u64,
    live: HashMap<Token, OwnedObjectPath>,
    retired: HashMap<Token, OwnedObjectPath>,
    order: VecDeque<Token>,
}

impl Paths {
    /// The path of a live connection, handed out now if it has none.
    pub(super) fn of(&mut self, token: Token) -> OwnedObjectPath {
        if let Some(path) = self.live.get(&token) {
            return path.clone();
        }
        // A token the kernel reuses is a new connection.
        self.retired.remove(&token);
        self.counter += 1;
        let path = OwnedObjectPath::try_from(format!("{CONNECTION_PATH_PREFIX}{}", self.counter))
            .unwrap_or_default();
        self.live.insert(token, path.clone());
        path
    }

    /// Its object went: the path waits for the connection's `ConnectionClosed`.
    pub(super) fn retire(&mut self, token: Token) {
        let Some(path) = self.live.remove(&token) else {
            return;
        };
        if self.order.len() == RETIRED
            && let Some(oldest) = self.order.pop_front()
        {
            self.retired.remove(&oldest);
        }
        self.retired.insert(token, path);
        self.order.push_back(token);
    }

    /// The path of a connection that closed (handed out now if it never had one); forgotten.
    fn closed(&mut self, token: Token) -> OwnedObjectPath {
        if let Some(path) = self.live.remove(&token) {
            return path;
        }
        if let Some(path) = self.retired.remove(&token) {
            self.order.retain(|t| *t != token);
            return path;
        }
        let path = self.of(token);
        self.live.remove(&token);
        path
    }
}

/// Addresses as the connection objects show them (IPv4-mapped as IPv4).
fn addr(addr: SocketAddr) -> String {
    mptcp_pm::canonical(addr).to_string()
}

fn id(id: Option<u8>) -> i16 {
    id.map_or(NO_ID, i16::from)
}

fn oper_state(state: OperState) -> String {
    match state {
        OperState::Unknown => "unknown".to_owned(),
        OperState::NotPresent => "notpresent".to_owned(),
        OperState::Down => "down".to_owned(),
        OperState::LowerLayerDown => "lowerlayerdown".to_owned(),
        OperState::Testing => "testing".to_owned(),
        OperState::Dormant => "dormant".to_owned(),
        OperState::Up => "up".to_owned(),
        OperState::Other(n) => n.to_string(),
    }
}

/// Sends the signal of `event`.
pub(super) async fn emit(
    emitter: &SignalEmitter<'_>,
    paths: &mut Paths,
    event: &BusEvent,
) -> zbus::Result<()> {
    match event {
        BusEvent::Pm(event, owner) => {
            let sent = pm(emitter, paths, event).await;
            if let Some(owner) = owner {
                claimed(emitter, owner, event).await?;
            }
            sent
        }
        BusEvent::Net(event) => net(emitter, event).await,
        BusEvent::Decision(d) => {
            let PathDecision {
                plugin,
                addr,
                from,
                to,
                reason,
                action,
            } = d;
            Manager::path_decision(
                emitter,
                &addr.to_canonical().to_string(),
                plugin,
                from.as_str(),
                to.as_str(),
                reason,
                action,
            )
            .await
        }
    }
}

/// `ClaimedEvent`, to the external path manager that handles the connection only (it carries
/// the token).
async fn claimed(emitter: &SignalEmitter<'_>, owner: &Owner, event: &Event) -> zbus::Result<()> {
    let Some((kind, token, details)) = super::external::details(event) else {
        return Ok(());
    };
    let owner = zbus::names::UniqueName::try_from(owner.to_string())?;
    let to = emitter
        .clone()
        .set_destination(zbus::names::BusName::Unique(owner));
    Control::claimed_event(&to, kind, token, details).await
}

async fn pm(emitter: &SignalEmitter<'_>, paths: &mut Paths, event: &Event) -> zbus::Result<()> {
    match event {
        Event::Created(c) | Event::Established(c) => {
            let path = paths.of(c.token);
            let (local, remote) = (addr(c.local), addr(c.remote));
            // The two signals take the same arguments.
            macro_rules! send {
                ($signal:path) => {
                    $signal(
                        emitter,
                        path.as_ref(),
                        &local,
                        &remote,
                        id(c.local_id),
                        id(c.remote_id),
                        c.server_side(),
                    )
                    .await
                };
            }
            if matches!(event, Event::Created(_)) {
                send!(Manager::connection_created)
            } else {
                send!(Manager::connection_established)
            }
        }
        Event::Closed { token } => {
            Manager::connection_closed(emitter, paths.closed(*token).as_ref()).await
        }
        Event::Announced(a) => {
            let a = a.canonical();
            Manager::address_announced(
                emitter,
                paths.of(a.token).as_ref(),
                a.id,
                &a.addr.to_string(),
                a.port.unwrap_or(0),
            )
            .await
        }
        Event::Removed { token, remote_id } => {
            Manager::address_removed(emitter, paths.of(*token).as_ref(), *remote_id).await
        }
        Event::SubflowEstablished(s) | Event::SubflowClosed(s) | Event::SubflowPriority(s) => {
            subflow(emitter, paths, event, s).await
        }
        Event::ListenerCreated(l) => Manager::listener_created(emitter, &addr(l.local)).await,
        Event::ListenerClosed(l) => Manager::listener_closed(emitter, &addr(l.local)).await,
        Event::Other(_) => Ok(()),
    }
}

async fn subflow(
    emitter: &SignalEmitter<'_>,
    paths: &mut Paths,
    event: &Event,
    s: &mptcp_pm::Subflow,
) -> zbus::Result<()> {
    let mptcp_pm::Subflow {
        token,
        local,
        remote,
        local_id,
        remote_id,
        backup,
        if_idx,
        error,
        reset_reason,
        reset_flags: _,
    } = *s;
    let path = paths.of(token);
    let (local, remote) = (addr(local), addr(remote));
    let if_index = if_idx.and_then(|i| u32::try_from(i).ok()).unwrap_or(0);
    let (error, reset_reason) = (error.unwrap_or(0), reset_reason.unwrap_or(0));
    // The three signals take the same arguments.
    macro_rules! send {
        ($signal:path) => {
            $signal(
                emitter,
                path.as_ref(),
                &local,
                &remote,
                local_id,
                remote_id,
                backup,
                if_index,
                error,
                reset_reason,
            )
            .await
        };
    }
    match event {
        Event::SubflowEstablished(_) => send!(Manager::subflow_established),
        Event::SubflowClosed(_) => send!(Manager::subflow_closed),
        _ => send!(Manager::subflow_priority),
    }
}

async fn net(emitter: &SignalEmitter<'_>, event: &NetEvent) -> zbus::Result<()> {
    match event {
        NetEvent::NewInterface(i) | NetEvent::UpdateInterface(i) | NetEvent::DeleteInterface(i) => {
            let Interface {
                index,
                name,
                flags,
                oper_state: state,
                link_type: _,
            } = i;
            let (state, ready) = (oper_state(*state), i.is_ready());
            match event {
                NetEvent::NewInterface(_) => {
                    Manager::network_interface_added(emitter, *index, name, *flags, &state, ready)
                        .await
                }
                NetEvent::UpdateInterface(_) => {
                    Manager::network_interface_changed(emitter, *index, name, *flags, &state, ready)
                        .await
                }
                _ => {
                    Manager::network_interface_removed(emitter, *index, name, *flags, &state, ready)
                        .await
                }
            }
        }
        NetEvent::NewLocalAddress { address, .. } => {
            let a = address;
            Manager::local_address_added(emitter, a.ifindex, &a.addr.to_string(), a.prefix_len)
                .await
        }
        NetEvent::DeleteLocalAddress { address, .. } => {
            let a = address;
            Manager::local_address_removed(emitter, a.ifindex, &a.addr.to_string(), a.prefix_len)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_keeps_its_path_until_closed_even_after_its_object_went() {
        let mut paths = Paths::default();
        let first = paths.of(7);
        assert_eq!(first.as_str(), format!("{CONNECTION_PATH_PREFIX}1"));
        assert_eq!(paths.of(7), first, "the same connection, the same path");
        assert_ne!(paths.of(8), first);
        // Its object went before its `ConnectionClosed` was sent.
        paths.retire(7);
        assert_eq!(paths.closed(7), first);
        // Closed before its object went.
        let second = paths.of(8);
        assert_eq!(paths.closed(8), second);
        paths.retire(8);
        // A token reused is a new connection.
        assert_ne!(paths.of(7), first);
    }

    #[test]
    fn lost_closes_keep_a_bounded_number_of_paths() {
        let mut paths = Paths::default();
        for token in 0..2 * u32::try_from(RETIRED).unwrap() {
            paths.of(token);
            paths.retire(token);
        }
        assert_eq!(paths.retired.len(), RETIRED);
        assert_eq!(paths.order.len(), RETIRED);
        assert!(paths.live.is_empty());
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_never_waits() {
        let (sink, mut source) = queue();
        let event = Event::Closed { token: 1 };
        for _ in 0..QUEUE + 3 {
            sink.pm_event(&event, None);
        }
        assert_eq!(source.dropped.load(Ordering::Relaxed), 3);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (_, dropped) = source.recv().await.unwrap();
            assert_eq!(dropped, 3, "told with the next event");
        });
        assert_eq!(source.dropped.load(Ordering::Relaxed), 0, "reported");
    }
}
