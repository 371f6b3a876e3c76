//! Routing, selection and the endpoint life cycle, with a recording fake kernel.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use mptcpd_plugin::{
    BoxFuture, Commands as _, Connection, Endpoint, EndpointFlags, Interface, PathManager, Plugin,
    PluginConfig, Subflow, Token, done,
    testing::{Call, RecordingPm, block_on},
};
use mptcpd_plugin_addr_adv::AddrAdv;
use mptcpd_plugin_sspi::Sspi;

use super::PluginHost;
use crate::{
    diag::{DiagError, InfoFlags, MptcpSocket, wire::state},
    netmon::{self, AddressScope, LocalAddress, NetEvent, OperState},
    plugins::{HostPm, ListenerManager},
    pm::wire::{self, Event, EventFlags, Listener},
};

type Log = Arc<Mutex<Vec<String>>>;

/// Records which callbacks it got.
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
    fn new_connection<'a>(
        &'a mut self,
        c: &'a Connection,
        _: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        self.note(&format!("new_connection {}", c.token));
        done()
    }
    fn connection_established<'a>(
        &'a mut self,
        c: &'a Connection,
        _: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        self.note(&format!("established {}", c.token));
        done()
    }
    fn connection_closed<'a>(&'a mut self, t: Token, _: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        self.note(&format!("closed {t}"));
        done()
    }
    fn new_subflow<'a>(&'a mut self, s: &'a Subflow, _: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        self.note(&format!("new_subflow {} backup={}", s.token, s.backup));
        done()
    }
    fn listener_created<'a>(
        &'a mut self,
        l: SocketAddr,
        _: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        self.note(&format!("listener {l}"));
        done()
    }
    fn new_local_address<'a>(
        &'a mut self,
        i: &'a Interface,
        a: IpAddr,
        _: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        self.note(&format!("new_local_address {} {a}", i.name));
        done()
    }
    fn delete_interface<'a>(
        &'a mut self,
        i: &'a Interface,
        _: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        self.note(&format!("delete_interface {}", i.name));
        done()
    }
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

fn probes(log: &Log) -> Vec<Box<dyn Plugin>> {
    ["a", "b"]
        .into_iter()
        .map(|name| {
            let probe: Box<dyn Plugin> = Box::new(Probe {
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

fn connection(token: u32) -> wire::Connection {
    wire::Connection {
        token,
        local: sock("10.0.0.1:1000"),
        remote: sock("10.0.0.2:80"),
        local_id: Some(0),
        remote_id: Some(0),
        flags: EventFlags::empty(),
        server_side: false,
    }
}

fn subflow(token: u32) -> wire::Subflow {
    wire::Subflow {
        token,
        local: sock("10.0.1.1:1001"),
        remote: sock("10.0.0.2:80"),
        local_id: 1,
        remote_id: 0,
        backup: false,
        if_idx: None,
        error: None,
        reset_reason: None,
        reset_flags: None,
    }
}

fn link(index: u32, name: &str) -> netmon::Interface {
    netmon::Interface {
        index,
        name: name.to_owned(),
        flags: 0x1_0043,
        oper_state: OperState::Up,
        link_type: 1,
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

#[test]
fn connection_events_go_to_the_default_plugin_per_token_and_net_events_to_all() {
    let log = Log::default();
    let mut host = block_on(PluginHost::with_plugins(
        probes(&log),
        1,
        pm(RecordingPm::new(), None),
    ))
    .unwrap();
    assert_eq!(host.default_plugin(), "b");
    block_on(host.on_pm_event(&Event::Created(connection(7))));
    block_on(host.on_pm_event(&Event::Established(connection(7))));
    let mut backup = subflow(7);
    backup.backup = true;
    block_on(host.on_pm_event(&Event::SubflowEstablished(backup)));
    // Unknown connection: dropped.
    block_on(host.on_pm_event(&Event::SubflowEstablished(subflow(8))));
    block_on(host.on_pm_event(&Event::ListenerCreated(Listener {
        local: sock("0.0.0.0:80"),
    })));
    block_on(host.on_net_event(&address(3, "eth0", "10.0.0.1")));
    block_on(host.on_net_event(&NetEvent::DeleteInterface(link(3, "eth0"))));
    assert_eq!(host.connections(), 1);
    block_on(host.on_pm_event(&Event::Closed { token: 7 }));
    assert_eq!(host.connections(), 0, "a closed connection is forgotten");
    // After the close, its events go nowhere.
    block_on(host.on_pm_event(&Event::Established(connection(7))));
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
    block_on(host.resync(Err(DiagError::Lost)));
    block_on(host.on_pm_event(&Event::SubflowEstablished(subflow(9))));
    block_on(host.on_pm_event(&Event::Closed { token: 9 }));
    assert_eq!(taken(&log), ["b:new_subflow 9 backup=false", "b:closed 9"]);
    assert_eq!(host.connections(), 0);
}

fn addr_adv() -> Vec<Box<dyn Plugin>> {
    let config = PluginConfig {
        addr_flags: EndpointFlags::SUBFLOW,
    };
    vec![Box::new(AddrAdv::new(&config))]
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

#[test]
fn shutdown_removes_only_our_endpoints() {
    let kernel = RecordingPm::new();
    let by_hand = Endpoint {
        id: 1,
        addr: ip("192.0.2.1"),
        port: None,
        flags: EndpointFlags::SIGNAL,
        if_idx: None,
    };
    kernel.insert_endpoint(by_hand);
    let mut host = block_on(PluginHost::with_plugins(addr_adv(), 0, pm(kernel, None))).unwrap();
    block_on(host.on_net_event(&address(3, "eth0", "10.0.0.1")));
    block_on(host.on_net_event(&address(4, "eth1", "10.0.1.1")));
    let kernel_view = block_on(host.pm().kernel().dump_endpoints()).unwrap();
    assert_eq!(
        kernel_view,
        [by_hand, ours(2, "10.0.0.1", 3), ours(3, "10.0.1.1", 4)],
        "the hand-made endpoint's id is kept off"
    );
    let removed = block_on(host.shutdown());
    assert_eq!(removed, 2);
}

#[test]
fn a_restart_adopts_ours_without_duplicates_and_removes_stale_ones() {
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
    let mut host = block_on(PluginHost::with_plugins(
        addr_adv(),
        0,
        pm(kernel, Some(file.clone())),
    ))
    .unwrap();
    block_on(host.on_net_event(&address(3, "eth0", "10.0.0.1")));
    block_on(host.on_net_event(&address(4, "eth1", "10.0.1.1")));
    block_on(host.on_net_event(&address(5, "eth2", "10.0.2.1")));
    // The daemon is killed: no shutdown. The kernel keeps the endpoints.
    let kernel = RecordingPm::new();
    for e in host.pm().kernel().endpoints() {
        kernel.insert_endpoint(e);
    }
    drop(host);

    // Restarted: 10.0.1.1 went away meanwhile, 10.0.2.1 moved to another interface.
    let mut host = block_on(PluginHost::with_plugins(
        addr_adv(),
        0,
        pm(kernel, Some(file)),
    ))
    .unwrap();
    host.pm().kernel().take_calls();
    block_on(host.on_net_event(&address(3, "eth0", "10.0.0.1")));
    block_on(host.on_net_event(&address(6, "eth3", "10.0.2.1")));
    let calls = host.pm().kernel().take_calls();
    assert_eq!(
        adds(&calls),
        [ours(3, "10.0.2.1", 6)],
        "10.0.0.1 is adopted, not added again: {calls:?}"
    );
    assert!(calls.contains(&Call::RemoveEndpoint(3)), "{calls:?}");
    assert_eq!(block_on(host.settle()), 1, "10.0.1.1's endpoint is stale");
    let left = host.pm().kernel().endpoints();
    assert_eq!(
        left,
        [ours(1, "10.0.0.1", 3), ours(3, "10.0.2.1", 6), by_hand],
        "no duplicate, no stale one, the hand-made one untouched"
    );
    // The adopted endpoint follows its address as if this run had added it.
    block_on(host.on_net_event(&deleted(3, "eth0", "10.0.0.1")));
    assert_eq!(host.pm().kernel().endpoints().len(), 2);
    assert_eq!(block_on(host.shutdown()), 1);
}

#[test]
fn resync_forgets_endpoints_removed_behind_our_back() {
    let mut host = block_on(PluginHost::with_plugins(
        addr_adv(),
        0,
        pm(RecordingPm::new(), None),
    ))
    .unwrap();
    block_on(host.on_net_event(&address(3, "eth0", "10.0.0.1")));
    block_on(host.pm().kernel().remove_endpoint(1)).unwrap();
    block_on(host.resync(Ok(Vec::new())));
    assert_eq!(host.pm().owned_endpoints(), []);
    assert_eq!(block_on(host.shutdown()), 0);
}

#[test]
fn zero_ids_are_refused() {
    let pm = pm(RecordingPm::new(), None);
    let e = ours(0, "10.0.0.1", 1);
    assert_eq!(
        block_on(pm.announce(1, e)),
        Err(mptcpd_plugin::PmError::ZeroId)
    );
    assert_eq!(
        block_on(pm.add_endpoint(e)),
        Err(mptcpd_plugin::PmError::ZeroId)
    );
    assert_eq!(pm.kernel().take_calls(), []);
}

fn live(token: u32, state: u8, orphan: bool) -> MptcpSocket {
    MptcpSocket {
        state,
        local: sock("[::ffff:10.0.0.1]:1000"),
        remote: sock("[::ffff:10.0.0.2]:80"),
        token,
        flags: InfoFlags::REMOTE_KEY_RECEIVED,
        orphan,
    }
}

#[test]
fn a_resync_closes_what_is_gone_and_gives_the_default_plugin_what_it_missed() {
    let log = Log::default();
    let mut host = block_on(PluginHost::with_plugins(
        probes(&log),
        1,
        pm(RecordingPm::new(), None),
    ))
    .unwrap();
    for token in [7, 8, 9, 14] {
        block_on(host.on_pm_event(&Event::Created(connection(token))));
    }
    block_on(host.on_pm_event(&Event::Established(connection(7))));
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
        // Still connecting, fallen back to TCP, closed: not for plugins.
        live(11, state::SYN_SENT, false),
        fallback,
        live(13, state::CLOSE, true),
    ];
    block_on(host.resync(Ok(kernel)));
    assert_eq!(
        taken(&log),
        [
            "b:closed 9",
            "b:closed 14",
            "b:established 8",
            "b:new_connection 10",
            "b:established 10",
            "b:new_connection 15",
            "b:established 15",
        ]
    );
    assert_eq!(host.connections(), 4);
    // The events queued behind the overrun are not passed on twice, and unknown tokens are
    // dropped again.
    block_on(host.on_pm_event(&Event::Established(connection(8))));
    block_on(host.on_pm_event(&Event::Created(connection(10))));
    block_on(host.on_pm_event(&Event::Established(connection(10))));
    block_on(host.on_pm_event(&Event::Closed { token: 9 }));
    block_on(host.on_pm_event(&Event::SubflowEstablished(subflow(11))));
    assert_eq!(taken(&log), Vec::<String>::new());
    block_on(host.on_pm_event(&Event::SubflowEstablished(subflow(10))));
    block_on(host.on_pm_event(&Event::Closed { token: 10 }));
    assert_eq!(
        taken(&log),
        ["b:new_subflow 10 backup=false", "b:closed 10"]
    );
    assert_eq!(host.connections(), 3);
}

#[test]
fn mapped_ipv4_addresses_reach_plugins_as_ipv4() {
    let plugins: Vec<Box<dyn Plugin>> = vec![Box::new(Sspi::new())];
    let mut host = block_on(PluginHost::with_plugins(
        plugins,
        0,
        pm(RecordingPm::new(), None),
    ))
    .unwrap();
    block_on(host.on_net_event(&address(3, "eth0", "192.0.2.2")));
    block_on(host.on_net_event(&address(4, "eth1", "127.0.0.1")));
    block_on(host.on_net_event(&address(4, "eth1", "::1")));
    // A dual-stack (AF_INET6) server socket that accepted an IPv4 client.
    let conn = wire::Connection {
        local: sock("[::ffff:192.0.2.2]:5201"),
        remote: sock("[::ffff:192.0.2.1]:40000"),
        ..connection(5)
    };
    block_on(host.on_pm_event(&Event::Created(conn)));
    block_on(host.on_pm_event(&Event::Established(conn)));
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
    let joined = |port: u16| wire::Subflow {
        local: SocketAddr::new(ip("::ffff:127.0.0.1"), port),
        remote: sock("[::ffff:192.0.2.1]:40001"),
        ..subflow(5)
    };
    block_on(host.on_pm_event(&Event::SubflowEstablished(joined(1000))));
    block_on(host.on_pm_event(&Event::SubflowEstablished(joined(1001))));
    assert_eq!(
        host.pm().kernel().take_calls(),
        [Call::SubflowDestroy(
            5,
            sock("[::ffff:127.0.0.1]:1001"),
            sock("[::ffff:192.0.2.1]:40001")
        )]
    );
    block_on(host.on_pm_event(&Event::Closed { token: 5 }));
    assert_eq!(host.pm().listeners(), []);
}

#[test]
fn flag_changes_and_failed_removals_keep_the_record_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endpoints");
    let mut host = block_on(PluginHost::with_plugins(
        addr_adv(),
        0,
        pm(RecordingPm::new(), Some(file.clone())),
    ))
    .unwrap();
    block_on(host.on_net_event(&address(3, "eth0", "10.0.0.1")));
    // A refused add leaves no record behind.
    host.pm().kernel().fail_next("add_endpoint", libc::EPERM);
    block_on(host.on_net_event(&address(4, "eth1", "10.0.1.1")));
    // A flag change through the handle is recorded: the next run identifies it by its flags.
    let backup = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    block_on(host.pm().set_endpoint_flags(1, backup)).unwrap();
    let kernel = RecordingPm::new();
    for e in host.pm().kernel().endpoints() {
        kernel.insert_endpoint(e);
    }
    host.pm().kernel().fail_next("remove_endpoint", libc::EPERM);
    assert_eq!(block_on(host.shutdown()), 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("endpoint added 1 10.0.0.1 - subflow,backup 3"),
        "{text}"
    );
    assert!(!text.contains("10.0.1.1"), "{text}");

    // The next run adopts it, and (no plugin claiming it) removes it.
    let mut host = block_on(PluginHost::with_plugins(
        addr_adv(),
        0,
        pm(kernel, Some(file.clone())),
    ))
    .unwrap();
    assert_eq!(block_on(host.settle()), 1);
    assert_eq!(host.pm().kernel().endpoints(), []);
    assert!(!file.exists());
}
