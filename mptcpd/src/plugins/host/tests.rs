//! Routing, selection and the endpoint life cycle, with a recording fake kernel.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use mptcpd_plugin::{
    BoxFuture, Commands as _, Endpoint, EndpointFlags, Event as PluginEvent, PathFigures,
    PathManager, Plugin, PluginConfig, TelemetryEvent, TelemetryKind, done,
    testing::{self, Call, RecordingPm},
};
use mptcpd_plugin_addr_adv::AddrAdv;
use mptcpd_plugin_sspi::Sspi;

use super::PluginHost;
use crate::{
    connections::Connections,
    diag::{DiagError, InfoFlags, MptcpSocket, wire::state},
    plugins::{HostPm, listeners::ListenerManager},
};
use mptcp_pm::{Connection, Event, EventFlags, Listener, NewSubflow, Subflow, SubflowPath};
use mptcpd_netmon::{self as netmon, AddressScope, LocalAddress, NetEvent, OperState};

type Log = Arc<Mutex<Vec<String>>>;

/// Records which events it got.
struct Probe {
    name: &'static str,
    log: Log,
}

impl Probe {
    fn note(&self, what: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{what}", self.name));
    }
}

impl Plugin for Probe {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "probe"
    }
    /// "b" wants ticks, "a" does not.
    fn wants_ticks(&self) -> bool {
        self.name == "b"
    }
    /// "c" observes connections.
    fn observes_connections(&self) -> bool {
        self.name == "c"
    }
    fn reconfigure(&self, config: &PluginConfig) {
        self.note(&format!("reconfigure hold={}", config.health.hold_secs));
    }
    fn on_event<'a>(
        &'a self,
        event: &'a PluginEvent,
        pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        match event {
            PluginEvent::Telemetry(t) => {
                let view = pm.connection_view(t.token).map(|v| v.subflows.len());
                self.note(&format!("telemetry {} {:?} view={view:?}", t.token, t.kind));
            }
            PluginEvent::NewConnection(c) if c.flags.is_empty() => {
                self.note(&format!("new_connection {}", c.token));
            }
            PluginEvent::NewConnection(c) => {
                self.note(&format!("new_connection {} flags={}", c.token, c.flags));
            }
            PluginEvent::ConnectionEstablished(c) => {
                self.note(&format!("established {}", c.token));
            }
            PluginEvent::ConnectionClosed(t) => self.note(&format!("closed {t}")),
            PluginEvent::NewSubflow(s) => {
                self.note(&format!("new_subflow {} backup={}", s.token, s.backup));
            }
            PluginEvent::SubflowClosed(Subflow {
                token,
                error,
                reset_reason,
                reset_flags,
                ..
            }) => self.note(&format!(
                "subflow_closed {token} error={error:?} reset={reset_reason:?}/{reset_flags:?}"
            )),
            PluginEvent::ListenerCreated(l) => self.note(&format!("listener {l}")),
            PluginEvent::NewLocalAddress { iface, addr } => {
                self.note(&format!("new_local_address {} {addr}", iface.name));
            }
            PluginEvent::UpdateInterface(i) => self.note(&format!(
                "update_interface {} ready={} oper_state={:?} link_type={}",
                i.name,
                i.is_ready(),
                i.oper_state,
                i.link_type
            )),
            PluginEvent::DeleteInterface(i) => self.note(&format!("delete_interface {}", i.name)),
            PluginEvent::Tick => self.note("tick"),
            _ => {}
        }
        done()
    }
}

/// Passes an `mptcp_pm` event and waits until it has been handled.
async fn pm_event(host: &mut PluginHost<RecordingPm>, event: Event) {
    host.on_pm_event(&event).await;
    host.drain().await;
}

/// Passes a network event and waits until it has been handled.
async fn net_event(host: &mut PluginHost<RecordingPm>, event: NetEvent) {
    host.on_net_event(&event).await;
    host.drain().await;
}

fn sock(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn pm(kernel: RecordingPm, state_file: Option<std::path::PathBuf>) -> HostPm<RecordingPm> {
    HostPm::with_listeners(kernel, state_file, ListenerManager::with_protocol(6))
}

fn probes(log: &Log) -> Vec<Arc<dyn Plugin>> {
    ["a", "b"]
        .into_iter()
        .map(|name| {
            let probe: Arc<dyn Plugin> = Arc::new(Probe {
                name,
                log: log.clone(),
            });
            probe
        })
        .collect()
}

fn taken(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

pub(super) fn connection(token: u32) -> Connection {
    testing::connection(SubflowPath {
        token,
        local: sock("10.0.0.1:1000"),
        remote: sock("10.0.0.2:80"),
    })
}

pub(super) fn subflow(token: u32) -> Subflow {
    testing::subflow(SubflowPath {
        token,
        local: sock("10.0.1.1:1001"),
        remote: sock("10.0.0.2:80"),
    })
}

fn link(index: u32, name: &str) -> netmon::Interface {
    netmon::Interface {
        name: name.to_owned(),
        ..testing::interface(index)
    }
}

fn address(index: u32, name: &str, addr: &str) -> NetEvent {
    NetEvent::NewLocalAddress {
        interface: link(index, name),
        address: LocalAddress {
            ifindex: index,
            addr: ip(addr),
            prefix_len: 24,
            scope: AddressScope::Universe,
            flags: 0,
        },
    }
}

fn deleted(index: u32, name: &str, addr: &str) -> NetEvent {
    let NetEvent::NewLocalAddress { interface, address } = address(index, name, addr) else {
        unreachable!()
    };
    NetEvent::DeleteLocalAddress { interface, address }
}

/// Plugins get all the kernel says: a connection's event flags, a subflow's error and its
/// `MP_TCPRST` reason and flags (the C daemon, and this host until the types were one,
/// dropped the reset fields).
#[tokio::test]
async fn plugins_get_every_attribute_of_the_event() {
    let log = Log::default();
    let mut host = PluginHost::with_plugins(probes(&log), 0, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    let mut denied = connection(7);
    denied.flags = EventFlags::DENY_JOIN_ID0 | EventFlags::from_bits_retain(0x80);
    pm_event(&mut host, Event::Created(denied)).await;
    let mut reset = subflow(7);
    (reset.error, reset.reset_reason, reset.reset_flags) = (Some(104), Some(3), Some(1));
    pm_event(&mut host, Event::SubflowClosed(reset)).await;
    assert_eq!(
        taken(&log),
        [
            "a:new_connection 7 flags=deny_join_id0,0x80",
            "a:subflow_closed 7 error=Some(104) reset=Some(3)/Some(1)",
        ]
    );
}

/// A reload reaches every loaded plugin with the new settings.
#[tokio::test]
async fn a_reload_reconfigures_every_plugin() {
    let log = Log::default();
    let host = PluginHost::with_plugins(probes(&log), 0, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    let mut settings = crate::plugins::PluginSettings::default();
    settings.health.hold_secs = 2;
    host.reconfigure(&settings);
    let mut got = taken(&log);
    got.sort();
    let names: Vec<String> = host
        .plugin_names()
        .iter()
        .map(|n| format!("{n}:reconfigure hold=2"))
        .collect();
    let mut want = names;
    want.sort();
    assert_eq!(got, want);
}

/// Plugins get the monitor's interface as it is: its operational state and link type too
/// (the plugin API once had an interface type of its own without them).
#[tokio::test]
async fn plugins_get_the_monitors_whole_interface() {
    let log = Log::default();
    let mut host = PluginHost::with_plugins(probes(&log), 0, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    let mut dormant = link(3, "wlan0");
    (dormant.oper_state, dormant.link_type) = (OperState::Dormant, 801);
    net_event(&mut host, NetEvent::UpdateInterface(dormant)).await;
    assert_eq!(
        taken(&log),
        [
            "a:update_interface wlan0 ready=false oper_state=Dormant link_type=801",
            "b:update_interface wlan0 ready=false oper_state=Dormant link_type=801",
        ]
    );
}

#[tokio::test]
async fn connection_events_go_to_the_default_plugin_per_token_and_net_events_to_all() {
    let log = Log::default();
    let mut host = PluginHost::with_plugins(probes(&log), 1, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    assert_eq!(host.default_plugin(), "b");
    pm_event(&mut host, Event::Created(connection(7))).await;
    pm_event(&mut host, Event::Established(connection(7))).await;
    let mut backup = subflow(7);
    backup.backup = true;
    pm_event(&mut host, Event::SubflowEstablished(backup)).await;
    // Unknown connection: dropped.
    pm_event(&mut host, Event::SubflowEstablished(subflow(8))).await;
    let listener = Listener {
        local: sock("0.0.0.0:80"),
    };
    pm_event(&mut host, Event::ListenerCreated(listener)).await;
    net_event(&mut host, address(3, "eth0", "10.0.0.1")).await;
    net_event(&mut host, NetEvent::DeleteInterface(link(3, "eth0"))).await;
    assert_eq!(host.connections(), 1);
    pm_event(&mut host, Event::Closed { token: 7 }).await;
    assert_eq!(host.connections(), 0, "a closed connection is forgotten");
    // After the close, its events go nowhere.
    pm_event(&mut host, Event::Established(connection(7))).await;
    assert_eq!(
        taken(&log),
        [
            "b:new_connection 7",
            "b:established 7",
            "b:new_subflow 7 backup=true",
            "b:listener 0.0.0.0:80",
            "a:new_local_address eth0 10.0.0.1",
            "b:new_local_address eth0 10.0.0.1",
            "a:delete_interface eth0",
            "b:delete_interface eth0",
            "b:closed 7",
        ]
    );
    // After lost events that could not be recovered (no connection list), an unknown token is
    // taken to be the default plugin's.
    host.resync(Err(DiagError::Lost)).await;
    host.drain().await;
    pm_event(&mut host, Event::SubflowEstablished(subflow(9))).await;
    pm_event(&mut host, Event::Closed { token: 9 }).await;
    assert_eq!(taken(&log), ["b:new_subflow 9 backup=false", "b:closed 9"]);
    assert_eq!(host.connections(), 0);
}

fn addr_adv() -> Vec<Arc<dyn Plugin>> {
    let config = PluginConfig {
        addr_flags: EndpointFlags::SUBFLOW,
        ..PluginConfig::default()
    };
    vec![Arc::new(AddrAdv::new(&config))]
}

fn ours(id: u8, addr: &str, ifindex: i32) -> Endpoint {
    Endpoint {
        id,
        addr: ip(addr),
        port: None,
        flags: EndpointFlags::SUBFLOW,
        if_idx: Some(ifindex),
    }
}

fn adds(calls: &[Call]) -> Vec<Endpoint> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::AddEndpoint(e) => Some(*e),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn shutdown_removes_only_our_endpoints() {
    let kernel = RecordingPm::new();
    let by_hand = Endpoint {
        id: 1,
        addr: ip("192.0.2.1"),
        port: None,
        flags: EndpointFlags::SIGNAL,
        if_idx: None,
    };
    kernel.insert_endpoint(by_hand);
    let mut host = PluginHost::with_plugins(addr_adv(), 0, pm(kernel, None))
        .await
        .unwrap();
    net_event(&mut host, address(3, "eth0", "10.0.0.1")).await;
    net_event(&mut host, address(4, "eth1", "10.0.1.1")).await;
    let kernel_view = host.pm().kernel().dump_endpoints().await.unwrap();
    assert_eq!(
        kernel_view,
        [by_hand, ours(2, "10.0.0.1", 3), ours(3, "10.0.1.1", 4)],
        "the hand-made endpoint's id is kept off"
    );
    let removed = host.shutdown().await;
    assert_eq!(removed, 2);
}

#[tokio::test]
async fn a_restart_adopts_ours_without_duplicates_and_removes_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endpoints");
    let kernel = RecordingPm::new();
    let by_hand = Endpoint {
        id: 9,
        addr: ip("192.0.2.1"),
        port: None,
        flags: EndpointFlags::SIGNAL,
        if_idx: None,
    };
    kernel.insert_endpoint(by_hand);
    let mut host = PluginHost::with_plugins(addr_adv(), 0, pm(kernel, Some(file.clone())))
        .await
        .unwrap();
    net_event(&mut host, address(3, "eth0", "10.0.0.1")).await;
    net_event(&mut host, address(4, "eth1", "10.0.1.1")).await;
    net_event(&mut host, address(5, "eth2", "10.0.2.1")).await;
    // The daemon is killed: no shutdown. The kernel keeps the endpoints.
    let kernel = RecordingPm::new();
    for e in host.pm().kernel().endpoints() {
        kernel.insert_endpoint(e);
    }
    drop(host);

    // Restarted: 10.0.1.1 went away meanwhile, 10.0.2.1 moved to another interface.
    let mut host = PluginHost::with_plugins(addr_adv(), 0, pm(kernel, Some(file)))
        .await
        .unwrap();
    host.pm().kernel().take_calls();
    net_event(&mut host, address(3, "eth0", "10.0.0.1")).await;
    net_event(&mut host, address(6, "eth3", "10.0.2.1")).await;
    let calls = host.pm().kernel().take_calls();
    assert_eq!(
        adds(&calls),
        [ours(3, "10.0.2.1", 6)],
        "10.0.0.1 is adopted, not added again: {calls:?}"
    );
    assert!(calls.contains(&Call::RemoveEndpoint(3)), "{calls:?}");
    assert_eq!(host.settle().await, 1, "10.0.1.1's endpoint is stale");
    let left = host.pm().kernel().endpoints();
    assert_eq!(
        left,
        [ours(1, "10.0.0.1", 3), ours(3, "10.0.2.1", 6), by_hand],
        "no duplicate, no stale one, the hand-made one untouched"
    );
    // The adopted endpoint follows its address as if this run had added it.
    net_event(&mut host, deleted(3, "eth0", "10.0.0.1")).await;
    assert_eq!(host.pm().kernel().endpoints().len(), 2);
    assert_eq!(host.shutdown().await, 1);
}

/// `addr_adv` on an empty kernel, recording in the state file `file`.
async fn fresh_with_state(file: &std::path::Path) -> PluginHost<RecordingPm> {
    PluginHost::with_plugins(addr_adv(), 0, pm(RecordingPm::new(), Some(file.to_owned())))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_hand_over_leaves_our_endpoints_for_the_next_daemon_to_adopt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endpoints");
    let mut host = fresh_with_state(&file).await;
    net_event(&mut host, address(3, "eth0", "10.0.0.1")).await;
    net_event(&mut host, address(4, "eth1", "10.0.1.1")).await;
    let held = host.pm().kernel().endpoints();
    // The kernel outlives the daemon: the next one sees the same table.
    let kernel = RecordingPm::new();
    for e in &held {
        kernel.insert_endpoint(*e);
    }
    host.pm().kernel().take_calls();
    assert_eq!(host.hand_over().await, 2);

    let mut host = PluginHost::with_plugins(addr_adv(), 0, pm(kernel, Some(file)))
        .await
        .unwrap();
    net_event(&mut host, address(3, "eth0", "10.0.0.1")).await;
    net_event(&mut host, address(4, "eth1", "10.0.1.1")).await;
    assert_eq!(host.settle().await, 0, "nothing stale");
    let calls = host.pm().kernel().take_calls();
    assert_eq!(adds(&calls), [], "adopted, not added again: {calls:?}");
    assert!(
        !calls.iter().any(|c| matches!(c, Call::RemoveEndpoint(_))),
        "{calls:?}"
    );
    assert_eq!(
        host.pm().kernel().endpoints(),
        held,
        "the same ids, no duplicate"
    );
    assert_eq!(host.shutdown().await, 2, "adopted ones are ours to remove");
}

#[tokio::test]
async fn resync_forgets_endpoints_removed_behind_our_back() {
    let mut host = PluginHost::with_plugins(addr_adv(), 0, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    net_event(&mut host, address(3, "eth0", "10.0.0.1")).await;
    host.pm().kernel().remove_endpoint(1).await.unwrap();
    host.resync(Ok(Vec::new())).await;
    host.drain().await;
    assert_eq!(host.pm().owned_endpoints(), []);
    assert_eq!(host.shutdown().await, 0);
}

#[tokio::test]
async fn zero_ids_are_refused() {
    let pm = pm(RecordingPm::new(), None);
    let e = ours(0, "10.0.0.1", 1);
    assert!(matches!(
        pm.announce(1, e).await,
        Err(mptcpd_plugin::PmError::ZeroId)
    ));
    assert!(matches!(
        pm.add_endpoint(e).await,
        Err(mptcpd_plugin::PmError::ZeroId)
    ));
    let subflow = NewSubflow {
        token: 1,
        local: e,
        remote: sock("10.0.0.2:80"),
    };
    assert!(matches!(
        pm.subflow_create(subflow).await,
        Err(mptcpd_plugin::PmError::ZeroId)
    ));
    assert_eq!(pm.kernel().take_calls(), []);
    let subflow = NewSubflow {
        local: e.with_id(5),
        ..subflow
    };
    pm.subflow_create(subflow).await.unwrap();
    assert_eq!(pm.kernel().take_calls(), [Call::SubflowCreate(subflow)]);
}

fn live(token: u32, state: u8, orphan: bool) -> MptcpSocket {
    MptcpSocket {
        state,
        local: sock("[::ffff:10.0.0.1]:1000"),
        remote: sock("[::ffff:10.0.0.2]:80"),
        token,
        flags: InfoFlags::REMOTE_KEY_RECEIVED,
        orphan,
        retransmits: None,
        bytes_retrans: None,
        fully_established: None,
    }
}

#[tokio::test]
async fn a_resync_closes_what_is_gone_and_gives_the_default_plugin_what_it_missed() {
    let log = Log::default();
    let mut host = PluginHost::with_plugins(probes(&log), 1, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    for token in [7, 8, 9, 14] {
        pm_event(&mut host, Event::Created(connection(token))).await;
    }
    pm_event(&mut host, Event::Established(connection(7))).await;
    taken(&log);
    let mut fallback = live(12, state::ESTABLISHED, false);
    fallback.flags |= InfoFlags::FALLBACK;
    let kernel = vec![
        // Known and established: nothing to say.
        live(7, state::ESTABLISHED, false),
        // Known, its ESTABLISHED lost.
        live(8, state::ESTABLISHED, false),
        // 9 is not listed: its CLOSED was lost. 14 was closed by its owner.
        live(14, state::FIN_WAIT2, true),
        // Never seen: its CREATED and ESTABLISHED were lost.
        live(10, state::ESTABLISHED, false),
        // Not accepted yet (no file), never seen.
        live(15, state::ESTABLISHED, true),
        // Still connecting, never seen: its ESTABLISHED is to come.
        live(11, state::SYN_SENT, false),
        // Fallen back to TCP, closed: not for plugins.
        fallback,
        live(13, state::CLOSE, true),
    ];
    host.resync(Ok(kernel)).await;
    host.drain().await;
    assert_eq!(
        taken(&log),
        [
            "b:closed 9",
            "b:closed 14",
            "b:new_connection 11",
            "b:established 8",
            "b:new_connection 10",
            "b:established 10",
            "b:new_connection 15",
            "b:established 15",
        ]
    );
    assert_eq!(host.connections(), 5);
    // The events queued behind the overrun are not passed on twice, and unknown tokens are
    // dropped again.
    pm_event(&mut host, Event::Established(connection(8))).await;
    pm_event(&mut host, Event::Created(connection(10))).await;
    pm_event(&mut host, Event::Established(connection(10))).await;
    pm_event(&mut host, Event::Closed { token: 9 }).await;
    pm_event(&mut host, Event::Created(connection(11))).await;
    pm_event(&mut host, Event::SubflowEstablished(subflow(12))).await;
    assert_eq!(taken(&log), Vec::<String>::new());
    // The connection still connecting at the resync gets its paths once established.
    pm_event(&mut host, Event::Established(connection(11))).await;
    assert_eq!(taken(&log), ["b:established 11"]);
    pm_event(&mut host, Event::SubflowEstablished(subflow(10))).await;
    pm_event(&mut host, Event::Closed { token: 10 }).await;
    assert_eq!(
        taken(&log),
        ["b:new_subflow 10 backup=false", "b:closed 10"]
    );
    assert_eq!(host.connections(), 4);
}

#[tokio::test]
async fn a_resync_leaves_a_connection_not_fully_established_to_its_established() {
    let log = Log::default();
    let mut host = PluginHost::with_plugins(probes(&log), 1, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    pm_event(&mut host, Event::Created(connection(7))).await;
    taken(&log);
    let dumped = |token, fully_established| MptcpSocket {
        fully_established: Some(fully_established),
        ..live(token, state::ESTABLISHED, false)
    };
    let kernel = vec![
        // Clients with the peer's key from the SYN-ACK, not fully established (the kernel
        // would refuse their subflows): known, and never seen. ESTABLISHED is to come.
        dumped(7, false),
        dumped(8, false),
        // Fully established, never seen: its CREATED and ESTABLISHED were lost.
        dumped(9, true),
    ];
    host.resync(Ok(kernel)).await;
    host.drain().await;
    assert_eq!(
        taken(&log),
        [
            "b:new_connection 8",
            "b:new_connection 9",
            "b:established 9"
        ]
    );
    for token in [7, 8, 9] {
        pm_event(&mut host, Event::Established(connection(token))).await;
    }
    assert_eq!(taken(&log), ["b:established 7", "b:established 8"]);
}

#[tokio::test]
async fn a_connection_the_dump_lists_without_addresses_is_announced_by_its_events() {
    let log = Log::default();
    let mut host = PluginHost::with_plugins(probes(&log), 1, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    // Clients before their SYN-ACK: the dump has no addresses for them yet.
    let connecting = |token| MptcpSocket {
        local: sock("0.0.0.0:0"),
        remote: sock("0.0.0.0:0"),
        flags: InfoFlags::empty(),
        ..live(token, state::SYN_SENT, false)
    };
    host.resync(Ok(vec![connecting(7), connecting(8), connecting(9)]))
        .await;
    host.drain().await;
    assert_eq!(
        taken(&log),
        Vec::<String>::new(),
        "nothing without addresses"
    );
    assert_eq!(host.connections(), 3, "but tracked, for their events");
    // 9 fails to connect: its plugin never heard of it.
    pm_event(&mut host, Event::Closed { token: 9 }).await;
    // 7's CREATED comes; 8's was lost, its ESTABLISHED announces it.
    pm_event(&mut host, Event::Created(connection(7))).await;
    pm_event(&mut host, Event::Created(connection(7))).await;
    pm_event(&mut host, Event::Established(connection(7))).await;
    pm_event(&mut host, Event::Established(connection(8))).await;
    assert_eq!(
        taken(&log),
        [
            "b:new_connection 7",
            "b:established 7",
            "b:new_connection 8",
            "b:established 8"
        ]
    );
}

#[tokio::test]
async fn mapped_ipv4_addresses_reach_plugins_as_ipv4() {
    let plugins: Vec<Arc<dyn Plugin>> = vec![Arc::new(Sspi::new())];
    let mut host = PluginHost::with_plugins(plugins, 0, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    net_event(&mut host, address(3, "eth0", "192.0.2.2")).await;
    net_event(&mut host, address(4, "eth1", "127.0.0.1")).await;
    net_event(&mut host, address(4, "eth1", "::1")).await;
    // A dual-stack (AF_INET6) server socket that accepted an IPv4 client.
    let conn = Connection {
        local: sock("[::ffff:192.0.2.2]:5201"),
        remote: sock("[::ffff:192.0.2.1]:40000"),
        ..connection(5)
    };
    pm_event(&mut host, Event::Created(conn)).await;
    pm_event(&mut host, Event::Established(conn)).await;
    let announced: Vec<IpAddr> = host
        .pm()
        .kernel()
        .take_calls()
        .iter()
        .filter_map(|c| match c {
            Call::Announce(5, e) => Some(e.addr),
            _ => None,
        })
        .collect();
    assert_eq!(
        announced,
        [ip("127.0.0.1")],
        "IPv4, the connection's family"
    );
    // Joined subflows reported with mapped addresses are tracked per interface: a second
    // one on eth1 is closed, named to the kernel as it reported it.
    let joined = |port: u16| Subflow {
        local: SocketAddr::new(ip("::ffff:127.0.0.1"), port),
        remote: sock("[::ffff:192.0.2.1]:40001"),
        ..subflow(5)
    };
    pm_event(&mut host, Event::SubflowEstablished(joined(1000))).await;
    pm_event(&mut host, Event::SubflowEstablished(joined(1001))).await;
    assert_eq!(
        host.pm().kernel().take_calls(),
        [Call::SubflowDestroy(SubflowPath {
            token: 5,
            local: sock("[::ffff:127.0.0.1]:1001"),
            remote: sock("[::ffff:192.0.2.1]:40001")
        })]
    );
    pm_event(&mut host, Event::Closed { token: 5 }).await;
    assert_eq!(host.pm().listeners(), []);
}

#[tokio::test]
async fn flag_changes_and_failed_removals_keep_the_record_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endpoints");
    let mut host = fresh_with_state(&file).await;
    net_event(&mut host, address(3, "eth0", "10.0.0.1")).await;
    // A refused add leaves no record behind.
    host.pm().kernel().fail_next("add_endpoint", libc::EPERM);
    net_event(&mut host, address(4, "eth1", "10.0.1.1")).await;
    // A flag change through the handle is recorded: the next run identifies it by its flags.
    let backup = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    host.pm().set_endpoint_flags(1, backup).await.unwrap();
    let kernel = RecordingPm::new();
    for e in host.pm().kernel().endpoints() {
        kernel.insert_endpoint(e);
    }
    host.pm().kernel().fail_next("remove_endpoint", libc::EPERM);
    assert_eq!(host.shutdown().await, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("endpoint added 1 10.0.0.1 - subflow,backup 3"),
        "{text}"
    );
    assert!(!text.contains("10.0.1.1"), "{text}");

    // The next run adopts it, and (no plugin claiming it) removes it.
    let mut host = PluginHost::with_plugins(addr_adv(), 0, pm(kernel, Some(file.clone())))
        .await
        .unwrap();
    assert_eq!(host.settle().await, 1);
    assert_eq!(host.pm().kernel().endpoints(), []);
    assert!(!file.exists());
}

/// Telemetry events go to the plugin that handles their connection, whose handle answers
/// with the daemon's view of it; events of connections not tracked are dropped.
#[tokio::test]
async fn telemetry_events_reach_the_connections_plugin_which_sees_its_view() {
    let log = Log::default();
    let mut host = PluginHost::with_plugins(probes(&log), 1, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    let connections = Connections::new();
    let telemetry = |token, kind| {
        TelemetryEvent::new(
            token,
            sock("10.0.1.1:1001"),
            sock("10.0.0.2:80"),
            kind,
            PathFigures::default(),
        )
    };
    let created = Event::Created(connection(7));
    connections.on_pm_event(&created);
    pm_event(&mut host, created).await;
    host.on_telemetry(telemetry(7, TelemetryKind::Rto { consecutive: 2 }))
        .await;
    host.drain().await;
    // The view only once the daemon gave it.
    host.pm().set_connections(connections.clone());
    let sub = Event::SubflowEstablished(subflow(7));
    connections.on_pm_event(&sub);
    pm_event(&mut host, sub).await;
    host.on_telemetry(telemetry(7, TelemetryKind::Fallback))
        .await;
    host.on_telemetry(telemetry(
        9,
        TelemetryKind::Reset {
            sent: None,
            reason: None,
        },
    ))
    .await;
    host.drain().await;
    assert_eq!(
        taken(&log),
        [
            "b:new_connection 7",
            "b:telemetry 7 Rto { consecutive: 2 } view=None",
            "b:new_subflow 7 backup=false",
            "b:telemetry 7 Fallback view=Some(2)",
        ]
    );
}

/// Ticks reach every plugin that wants them, default or not; the daemon ticks only then.
#[tokio::test]
async fn ticks_reach_the_plugins_that_want_them() {
    let log = Log::default();
    let mut host = PluginHost::with_plugins(probes(&log), 1, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    assert!(host.wants_ticks());
    host.on_tick().await;
    host.drain().await;
    assert_eq!(taken(&log), ["b:tick"]);

    // "b" loaded beside the default "a": ticked all the same.
    let mut host = PluginHost::with_plugins(probes(&log), 0, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    assert!(host.wants_ticks());
    host.on_tick().await;
    host.drain().await;
    assert_eq!(taken(&log), ["b:tick"]);

    // Only "a": no ticks at all.
    let only_a = probes(&log).into_iter().take(1).collect();
    let mut host = PluginHost::with_plugins(only_a, 0, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    assert!(!host.wants_ticks());
    host.on_tick().await;
    host.drain().await;
    assert_eq!(taken(&log), Vec::<String>::new());
}

/// A plugin that observes connections hears each connection event (telemetry included)
/// after the plugin that handles it; one that does not observe hears none; an observer that
/// is itself the default hears each event once.
#[tokio::test]
async fn observers_hear_connection_events_after_the_handling_plugin() {
    let log = Log::default();
    let three = || -> Vec<Arc<dyn Plugin>> {
        ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let probe: Arc<dyn Plugin> = Arc::new(Probe {
                    name,
                    log: log.clone(),
                });
                probe
            })
            .collect()
    };
    for (default, expected) in [
        (
            0,
            vec![
                "a:new_connection 7",
                "c:new_connection 7",
                "a:telemetry 7 Fallback view=None",
                "c:telemetry 7 Fallback view=None",
                "a:closed 7",
                "c:closed 7",
            ],
        ),
        (
            2,
            vec![
                "c:new_connection 7",
                "c:telemetry 7 Fallback view=None",
                "c:closed 7",
            ],
        ),
    ] {
        let mut host = PluginHost::with_plugins(three(), default, pm(RecordingPm::new(), None))
            .await
            .unwrap();
        pm_event(&mut host, Event::Created(connection(7))).await;
        host.on_telemetry(TelemetryEvent::new(
            7,
            sock("10.0.1.1:1001"),
            sock("10.0.0.2:80"),
            TelemetryKind::Fallback,
            PathFigures::default(),
        ))
        .await;
        pm_event(&mut host, Event::Closed { token: 7 }).await;
        host.drain().await;
        assert_eq!(taken(&log), expected, "default plugin {default}");
    }
}

#[tokio::test]
async fn connections_an_external_path_manager_gave_back_reach_the_default_plugin_whole() {
    let log = Log::default();
    let mut host = PluginHost::with_plugins(probes(&log), 1, pm(RecordingPm::new(), None))
        .await
        .unwrap();
    // A server-side connection with a second subflow, established; one still connecting.
    let mut served =
        mptcpd_plugin::ConnectionView::new(5, sock("10.0.0.1:80"), sock("10.0.0.2:1000"));
    served.server_side = true;
    served.established = true;
    let mut initial = mptcpd_plugin::SubflowView::new(served.local, served.remote);
    initial.local_id = Some(0);
    let mut joined = mptcpd_plugin::SubflowView::new(sock("10.0.1.1:80"), sock("10.0.0.2:2000"));
    joined.local_id = Some(2);
    joined.backup = true;
    served.subflows = vec![initial, joined];
    let connecting =
        mptcpd_plugin::ConnectionView::new(6, sock("10.0.0.1:1001"), sock("10.0.0.2:80"));
    assert_eq!(host.adopt_released(vec![served, connecting]).await, 2);
    host.drain().await;
    assert_eq!(
        taken(&log),
        [
            "b:new_connection 5 flags=server_side",
            "b:established 5",
            "b:new_subflow 5 backup=true",
            "b:new_connection 6",
        ]
    );
    assert_eq!(host.connections(), 2);
    // Their later events are the default plugin's; the one not yet established gets its
    // ESTABLISHED, the other none twice.
    pm_event(&mut host, Event::Established(connection(6))).await;
    pm_event(&mut host, Event::Established(connection(5))).await;
    assert_eq!(taken(&log), ["b:established 6"]);
}
