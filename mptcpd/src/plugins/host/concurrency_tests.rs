//! The host's lanes: connections handled concurrently, each in order; shutdown after the
//! last event. Paused time: a host that deadlocks makes the bounding timeout fire at once
//! instead of hanging.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use mptcpd_plugin::{
    BoxFuture, Event as PluginEvent, PathManager, Plugin, Token, testing::RecordingPm,
};
use tokio::{sync::Notify, time::timeout};

use super::{
    PluginHost,
    tests::{self, connection},
};
use crate::plugins::{HostPm, listeners::ListenerManager};
use mptcp_pm::{Event, Subflow};

/// A bound on a hang (paused time: not waited for), not a performance expectation.
const HANG: Duration = Duration::from_secs(60);

/// Connection `token`'s subflow from local port `port`.
fn subflow(token: Token, port: u16) -> Subflow {
    Subflow {
        local: SocketAddr::from(([198, 51, 100, 1], port)),
        ..tests::subflow(token)
    }
}

async fn host(plugin: impl Plugin + 'static) -> PluginHost<RecordingPm> {
    let pm = HostPm::with_listeners(RecordingPm::new(), None, ListenerManager::with_protocol(6));
    PluginHost::with_plugins(vec![Arc::new(plugin)], 0, pm)
        .await
        .unwrap()
}

/// What a plugin saw, in the order it saw it.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn note(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Connection 1's CREATED waits until connection 2's CREATED arrives.
#[derive(Default)]
struct Gate {
    open: Notify,
    log: Log,
}

impl Plugin for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }
    fn description(&self) -> &'static str {
        "waits on one connection for another"
    }
    fn on_event<'a>(&'a self, event: &'a PluginEvent, _: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event {
                PluginEvent::NewConnection(c) if c.token == 1 => {
                    self.log.note("1 waits".to_owned());
                    self.open.notified().await;
                    self.log.note("1 goes on".to_owned());
                }
                PluginEvent::NewConnection(c) => {
                    self.log.note(format!("{} opens", c.token));
                    self.open.notify_one();
                }
                _ => {}
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_waiting_for_the_kernel_does_not_hold_up_another() {
    let gate = Gate::default();
    let log = gate.log.clone();
    let mut host = host(gate).await;
    let both = async {
        host.on_pm_event(&Event::Created(connection(1))).await;
        host.on_pm_event(&Event::Created(connection(2))).await;
        host.drain().await;
    };
    timeout(HANG, both)
        .await
        .expect("connection 2's event was not delivered while connection 1's waited");
    assert_eq!(log.lines(), ["1 waits", "2 opens", "1 goes on"]);
    assert_eq!(host.connections(), 2);
}

/// Yields a different number of times per event, so that lanes interleave, then notes it.
#[derive(Default)]
struct Shuffler {
    log: Log,
}

impl Plugin for Shuffler {
    fn name(&self) -> &'static str {
        "shuffler"
    }
    fn description(&self) -> &'static str {
        "takes its time, differently for each event"
    }
    fn on_event<'a>(&'a self, event: &'a PluginEvent, _: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (token, what) = match event {
                PluginEvent::NewConnection(c) => (c.token, "created".to_owned()),
                PluginEvent::ConnectionEstablished(c) => (c.token, "established".to_owned()),
                PluginEvent::NewSubflow(s) => (s.token, format!("subflow {}", s.local.port())),
                PluginEvent::ConnectionClosed(token) => (*token, "closed".to_owned()),
                _ => return,
            };
            let port = match event {
                PluginEvent::NewSubflow(s) => u32::from(s.local.port()),
                _ => 0,
            };
            // Earlier events of a connection take longer: a host that does not keep them in
            // order lets later ones overtake.
            for _ in 0..(token * 7 + 50 - port % 50) % 23 {
                tokio::task::yield_now().await;
            }
            self.log.note(format!("{token} {what}"));
        })
    }
}

#[tokio::test(start_paused = true)]
async fn each_connections_events_keep_their_order_when_connections_interleave() {
    let shuffler = Shuffler::default();
    let log = shuffler.log.clone();
    let mut host = host(shuffler).await;
    let tokens: [Token; 4] = [1, 2, 3, 4];
    let mut sent = Vec::new();
    for token in tokens {
        host.on_pm_event(&Event::Created(connection(token))).await;
        sent.push(format!("{token} created"));
    }
    for token in tokens {
        host.on_pm_event(&Event::Established(connection(token)))
            .await;
        sent.push(format!("{token} established"));
    }
    for port in 1..=10 {
        for token in tokens {
            host.on_pm_event(&Event::SubflowEstablished(subflow(token, port)))
                .await;
            sent.push(format!("{token} subflow {port}"));
        }
    }
    for token in tokens {
        host.on_pm_event(&Event::Closed { token }).await;
        sent.push(format!("{token} closed"));
    }
    timeout(HANG, host.drain()).await.expect("drained");
    let seen = log.lines();
    for token in tokens {
        let of = |lines: &[String]| -> Vec<String> {
            let prefix = format!("{token} ");
            lines
                .iter()
                .filter(|l| l.starts_with(&prefix))
                .cloned()
                .collect()
        };
        assert_eq!(of(&seen), of(&sent), "connection {token}'s events in order");
    }
    assert_ne!(seen, sent, "the connections' lanes interleaved");
    assert_eq!(host.connections(), 0);
}

/// Notes events and `exit` after yielding a while on each event.
#[derive(Default)]
struct Slow {
    log: Log,
}

impl Plugin for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn description(&self) -> &'static str {
        "slow to handle events"
    }
    fn exit<'a>(&'a self, _: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        self.log.note("exit".to_owned());
        mptcpd_plugin::done()
    }
    fn on_event<'a>(&'a self, event: &'a PluginEvent, _: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            assert_ne!(event.token(), Some(9), "a plugin bug");
            self.log.note(format!("{:?}", event.token()));
        })
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_every_lane_and_a_panic_stops_nothing() {
    let slow = Slow::default();
    let log = slow.log.clone();
    let mut host = host(slow).await;
    for token in [9, 1, 2] {
        host.on_pm_event(&Event::Created(connection(token))).await;
    }
    host.on_pm_event(&Event::SubflowEstablished(subflow(1, 5)))
        .await;
    let stats = host.stats();
    timeout(HANG, host.shutdown()).await.expect("shut down");
    let mut lines = log.lines();
    assert_eq!(lines.pop().as_deref(), Some("exit"), "exit comes last");
    lines.sort();
    assert_eq!(lines, ["Some(1)", "Some(1)", "Some(2)"]);
    assert_eq!(stats.snapshot().plugin_errors, 1, "the panic is counted");
}
