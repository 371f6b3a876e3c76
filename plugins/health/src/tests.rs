//! The plugin against the fake kernel: four connections, each with a subflow from A, B and
//! another tool's address C to its own peer; the figures the daemon's view shows advance
//! each tick as the test's paths say. In-kernel path manager by default; the userspace
//! one where a test says so (`Setup::userspace`).

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use mptcpd_plugin::{
    Commands as _, ConnectionView, Endpoint, EndpointFlags, EndpointPolicy, Event, EventFlags,
    HealthConfig, NewSubflow, PathDecision, PathFigures, PathProbe, PluginConfig, PmKind,
    ProbeOutcome, Subflow, SubflowPath, SubflowView, TelemetryEvent, TelemetryKind,
    testing::{self, Call, RecordingPm, block_on},
};

use mptcpd_plugin::Plugin as _;

use crate::{Health, NAME, State};

const A: &str = "192.0.2.1";
const B: &str = "198.51.100.1";
/// Another tool's endpoint.
const C: &str = "192.0.2.77";
const PEERS: u32 = 4;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn remote(peer: u32) -> SocketAddr {
    SocketAddr::new(
        IpAddr::from([203, 0, 113, u8::try_from(peer).unwrap()]),
        443,
    )
}

fn local(addr: &str) -> SocketAddr {
    SocketAddr::new(ip(addr), 40_000)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Healthy,
    /// 30% retransmitted.
    Lossy,
    /// No subflow from the address any more (closed).
    Gone,
}

struct Setup {
    plugin: Health,
    pm: RecordingPm,
    now: Duration,
    /// Per connection (token = peer), the figures of the subflows from A, B, C.
    figures: Vec<[PathFigures; 3]>,
    /// Peers whose subflow from B the view shows backup (someone else set it).
    backup_b: Vec<u32>,
}

impl Setup {
    /// A and B are this daemon's endpoints (ids 1, 2; flags `addr_flags`), C another tool's.
    fn new(addr_flags: EndpointFlags) -> Self {
        Self::with_kind(addr_flags, PmKind::Kernel)
    }

    /// The userspace path manager: the same four connections (peer 4's accepted by this
    /// side), subflows from B bound to interface 1 under id 1.
    fn userspace() -> Self {
        Self::with_kind(EndpointFlags::SUBFLOW, PmKind::Userspace)
    }

    fn with_kind(addr_flags: EndpointFlags, kind: PmKind) -> Self {
        let pm = RecordingPm::new();
        pm.set_pm_kind(kind);
        for (id, addr) in [(1, A), (2, B)] {
            block_on(pm.add_endpoint(Endpoint {
                id,
                addr: ip(addr),
                port: None,
                flags: addr_flags,
                if_idx: None,
            }))
            .unwrap();
        }
        pm.insert_endpoint(Endpoint {
            id: 3,
            addr: ip(C),
            port: None,
            flags: EndpointFlags::SUBFLOW,
            if_idx: None,
        });
        let plugin = Health::new(&PluginConfig {
            addr_flags,
            health: HealthConfig {
                hold_secs: 10,
                ..HealthConfig::DEFAULT
            },
            ..PluginConfig::default()
        });
        let setup = Self {
            plugin,
            pm,
            now: Duration::ZERO,
            figures: vec![[PathFigures::new(10_000, 0, 10_000, 10, 0, 0, 0, 0); 3]; 4],
            backup_b: Vec::new(),
        };
        for peer in 1..=PEERS {
            let mut conn = testing::connection(SubflowPath {
                token: peer,
                local: local(A),
                remote: remote(peer),
            });
            if kind == PmKind::Userspace && peer == PEERS {
                conn.flags = EventFlags::SERVER_SIDE;
            }
            setup.event(&Event::NewConnection(conn));
        }
        setup.pm.take_calls();
        setup
    }

    fn event(&self, event: &Event) {
        block_on(self.plugin.handle(self.now, event, &self.pm));
    }

    /// One second of traffic on each path, then a tick.
    fn second(&mut self, a: Path, b: Path, c: Path) {
        self.now += Duration::from_secs(1);
        for (i, figures) in self.figures.iter_mut().enumerate() {
            let peer = u32::try_from(i).unwrap() + 1;
            let mut view = ConnectionView::new(peer, local(A), remote(peer));
            for (id, (figures, (addr, path))) in
                (0..).zip(figures.iter_mut().zip([(A, a), (B, b), (C, c)]))
            {
                if path == Path::Gone {
                    continue;
                }
                figures.segs_out += 100;
                figures.bytes_acked += 100_000;
                if path == Path::Lossy {
                    figures.retransmissions += 30;
                }
                let mut sub = SubflowView::new(local(addr), remote(peer));
                sub.figures = Some(*figures);
                sub.local_id = Some(id);
                sub.if_index = Some(u32::from(id));
                sub.backup = addr == B && self.backup_b.contains(&peer);
                view.subflows.push(sub);
            }
            self.pm.set_connection_view(view);
        }
        self.event(&Event::Tick);
    }

    fn seconds(&mut self, n: u32, a: Path, b: Path, c: Path) {
        for _ in 0..n {
            self.second(a, b, c);
        }
    }

    /// B blackholed: RTO after RTO, nothing acknowledged, on every connection (telemetry
    /// events, before the next tick).
    fn blackhole_b(&mut self) {
        for _ in 0..3 {
            for peer in 1..=PEERS {
                let figures = &mut self.figures[usize::try_from(peer - 1).unwrap()][1];
                figures.segs_out += 1;
                figures.retransmissions += 1;
                figures.rtos += 1;
                let figures = *figures;
                self.event(&Event::Telemetry(TelemetryEvent::new(
                    peer,
                    local(B),
                    remote(peer),
                    TelemetryKind::Rto {
                        consecutive: figures.rtos,
                    },
                    figures,
                )));
            }
        }
    }

    /// A subflow from B to `peer` established (a re-probe's join).
    fn joined_b(&self, peer: u32) {
        let mut sub = testing::subflow(SubflowPath {
            token: peer,
            local: local(B),
            remote: remote(peer),
        });
        sub.local_id = 2;
        self.event(&Event::NewSubflow(sub));
    }

    /// The actions reported since the last call.
    fn actions(&self) -> Vec<String> {
        self.pm
            .take_decisions()
            .into_iter()
            .map(|d| d.action)
            .collect()
    }

    fn flags(&self, id: u8) -> EndpointFlags {
        self.pm
            .endpoints()
            .into_iter()
            .find(|e| e.id == id)
            .unwrap()
            .flags
    }
}

#[test]
fn a_degraded_address_becomes_backup_and_is_restored_after_the_hold_time() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(3, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.pm.take_calls(), []);
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    assert_eq!(
        s.pm.take_calls(),
        [Call::SetEndpointFlags(
            2,
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP
        )]
    );
    assert_eq!(s.plugin.state(ip(B)), State::Degraded);
    // Reported to the daemon, with the figures and what was done.
    let reported = s.pm.take_decisions();
    assert_eq!(reported.len(), 1, "{reported:?}");
    let PathDecision {
        plugin,
        addr,
        from,
        to,
        reason,
        action,
    } = &reported[0];
    assert_eq!(
        (*plugin, *addr, *from, *to, action.as_str()),
        (
            NAME,
            ip(B),
            State::Healthy,
            State::Degraded,
            "endpoint 2 set backup"
        )
    );
    assert!(reason.contains("% retransmitted"), "{reason}");
    s.seconds(9, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.pm.take_calls(), [], "healthy for less than the hold time");
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(
        s.pm.take_calls(),
        [Call::SetEndpointFlags(2, EndpointFlags::SUBFLOW)]
    );
    assert_eq!(s.flags(2), EndpointFlags::SUBFLOW);
}

/// The restore follows the `[interface PATTERN]` flags of the endpoint's interface: a
/// cellular link configured `backup` stays backup when its path recovers.
#[test]
fn a_restore_gives_back_the_interfaces_configured_flags() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    block_on(s.pm.remove_endpoint(2)).unwrap();
    block_on(s.pm.add_endpoint(Endpoint {
        id: 2,
        addr: ip(B),
        port: None,
        flags: EndpointFlags::SUBFLOW,
        if_idx: Some(7),
    }))
    .unwrap();
    let mut wwan = testing::interface(7);
    wwan.name = "wwan0".to_owned();
    s.event(&Event::NewInterface(wwan));
    s.plugin.reconfigure(&PluginConfig {
        addr_flags: EndpointFlags::SUBFLOW,
        health: HealthConfig {
            hold_secs: 10,
            ..HealthConfig::DEFAULT
        },
        policy: EndpointPolicy {
            interface_flags: vec![(
                "wwan*".parse().unwrap(),
                EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
            )],
            ..EndpointPolicy::default()
        },
        ..PluginConfig::default()
    });
    s.pm.take_calls();
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    let backup = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    assert_eq!(s.pm.take_calls(), [Call::SetEndpointFlags(2, backup)]);
    s.seconds(15, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.plugin.state(ip(B)), State::Healthy);
    assert_eq!(
        s.pm.take_calls(),
        [],
        "wwan0's endpoints are backup by configuration"
    );
    assert_eq!(s.flags(2), backup);
}

#[test]
fn a_restore_gives_back_the_configured_backup_flag() {
    let configured = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    let mut s = Setup::new(configured);
    // Another tool cleared the flag meanwhile: the demotion sets it, the restore keeps it.
    block_on(s.pm.set_endpoint_flags(2, EndpointFlags::SUBFLOW)).unwrap();
    s.pm.take_calls();
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    assert_eq!(s.pm.take_calls(), [Call::SetEndpointFlags(2, configured)]);
    s.seconds(15, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.plugin.state(ip(B)), State::Healthy);
    assert_eq!(s.pm.take_calls(), []);
    assert_eq!(s.flags(2), configured);
}

#[test]
fn another_tools_endpoint_is_never_touched() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(15, Path::Healthy, Path::Healthy, Path::Lossy);
    assert_eq!(s.plugin.state(ip(C)), State::Degraded);
    assert_eq!(s.pm.take_calls(), []);
    assert_eq!(s.flags(3), EndpointFlags::SUBFLOW);
}

#[test]
fn when_every_address_is_degraded_nothing_is_touched() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(15, Path::Lossy, Path::Lossy, Path::Lossy);
    assert_eq!(s.pm.take_calls(), []);
}

#[test]
fn rto_telemetry_alone_closes_a_blackholed_address() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    s.blackhole_b();
    assert_eq!(s.plugin.state(ip(B)), State::Dead);
    assert_eq!(s.pm.take_calls(), [Call::SuspendEndpoint(2)]);
}

#[test]
fn a_closed_subflows_late_telemetry_does_not_count() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    // An earlier subflow from B on each connection, closed by the kernel with data
    // unacknowledged: it goes on retransmitting, RTO after RTO.
    let old = |peer| SubflowPath {
        token: peer,
        local: SocketAddr::new(ip(B), 39_999),
        remote: remote(peer),
    };
    for peer in 1..=PEERS {
        s.event(&Event::SubflowClosed(testing::subflow(old(peer))));
        for rtos in 1..=5 {
            let figures = PathFigures::new(10_000, 0, 10_000, 1, 0, 0, rtos, rtos);
            s.event(&Event::Telemetry(TelemetryEvent::new(
                peer,
                old(peer).local,
                old(peer).remote,
                TelemetryKind::Rto { consecutive: rtos },
                figures,
            )));
        }
    }
    s.seconds(10, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.plugin.state(ip(B)), State::Healthy);
    assert_eq!(s.pm.take_calls(), []);
}

/// One tick per second for `n` seconds, B without subflows (closed).
fn closed_seconds(s: &mut Setup, n: u32) {
    s.seconds(n, Path::Healthy, Path::Gone, Path::Healthy);
}

#[test]
fn a_dead_addresss_endpoint_is_removed_and_re_added_every_hold_time() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    s.blackhole_b();
    assert_eq!(s.pm.take_calls(), [Call::SuspendEndpoint(2)]);
    assert_eq!(s.actions(), ["endpoint 2 removed; re-probe in 10 s"]);
    // Out of the kernel, still the daemon's.
    assert_eq!(s.pm.suspended().len(), 1);
    assert!(s.pm.endpoints().iter().all(|e| e.id != 2));
    closed_seconds(&mut s, 9);
    assert_eq!(
        s.pm.take_calls(),
        [],
        "the first re-probe waits the hold time"
    );
    closed_seconds(&mut s, 1);
    assert_eq!(
        s.pm.take_calls(),
        [Call::ResumeEndpoint(2, EndpointFlags::SUBFLOW)]
    );
    assert_eq!(s.flags(2), EndpointFlags::SUBFLOW);
    let actions = s.actions();
    assert!(
        actions[0].starts_with("re-probe 1: endpoint 2 re-added"),
        "{actions:?}"
    );
    assert_eq!(
        s.plugin.state(ip(B)),
        State::Dead,
        "until the re-probe holds"
    );
    // Nothing joins within the probe window: out again, re-probed a hold time after the
    // last began (the fast phase).
    closed_seconds(&mut s, 2);
    assert_eq!(s.pm.take_calls(), [Call::SuspendEndpoint(2)]);
    assert_eq!(
        s.actions(),
        [
            "re-probe failed (no subflow established within 2 s): endpoint 2 removed; \
          re-probe in 8 s"
        ]
    );
    closed_seconds(&mut s, 7);
    assert_eq!(s.pm.take_calls(), []);
    closed_seconds(&mut s, 1);
    assert_eq!(
        s.pm.take_calls(),
        [Call::ResumeEndpoint(2, EndpointFlags::SUBFLOW)]
    );
    s.actions();
    // This time a join works and holds: the path is healthy, the backoff reset.
    s.joined_b(1);
    s.seconds(10, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.plugin.state(ip(B)), State::Healthy);
    let reported = s.pm.take_decisions();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(
        (
            reported[0].from,
            reported[0].to,
            reported[0].action.as_str()
        ),
        (
            State::Dead,
            State::Healthy,
            "re-probe held for 10 s: path in use again, backoff reset"
        )
    );
    assert_eq!(s.pm.take_calls(), []);
    // Dead again later: the first re-probe after the hold time again.
    s.seconds(10, Path::Healthy, Path::Healthy, Path::Healthy);
    s.blackhole_b();
    assert_eq!(s.pm.take_calls(), [Call::SuspendEndpoint(2)]);
    assert_eq!(s.actions(), ["endpoint 2 removed; re-probe in 10 s"]);
}

fn probe_b(peer: u32) -> Call {
    Call::ProbePath(PathProbe {
        local: ip(B),
        if_index: None,
        remote: remote(peer),
        timeout: Duration::from_millis(900),
    })
}

#[test]
fn a_dead_paths_endpoint_comes_back_only_once_a_test_outside_the_connections_is_answered() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.pm.answer_probes(ProbeOutcome::NoAnswer);
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    s.blackhole_b();
    assert_eq!(s.pm.take_calls(), [Call::SuspendEndpoint(2)]);
    s.actions();
    closed_seconds(&mut s, 10);
    // The re-probe is a test from B to a peer its subflows used: no endpoint re-added.
    assert_eq!(s.pm.take_calls(), [probe_b(1)]);
    assert_eq!(
        s.actions(),
        [
            "re-probe: testing the path first (a TCP connection attempt from 198.51.100.1 to \
             203.0.113.1:443, reset at once if answered); endpoint 2 stays removed until it \
             is answered"
        ]
    );
    // Not answered (seen at the next tick): still out, the next test at once (it costs the
    // connections nothing), to the next peer.
    closed_seconds(&mut s, 1);
    assert_eq!(s.pm.take_calls(), [probe_b(2)]);
    let actions = s.actions();
    assert_eq!(
        actions[0],
        "test from 198.51.100.1 to 203.0.113.1:443: no answer within 0.9 s: endpoint 2 still \
         removed; re-probe in 0 s"
    );
    assert!(s.pm.endpoints().iter().all(|e| e.id != 2));
    // The path carries packets again: the next test is answered and the endpoint re-added
    // at the tick that sees it; the re-probe then holds as before.
    s.pm.answer_probes(ProbeOutcome::Answered { refused: false });
    closed_seconds(&mut s, 1);
    assert_eq!(s.pm.take_calls(), [probe_b(3)]);
    closed_seconds(&mut s, 1);
    assert_eq!(
        s.pm.take_calls(),
        [Call::ResumeEndpoint(2, EndpointFlags::SUBFLOW)]
    );
    let actions = s.actions();
    assert!(
        actions.last().unwrap().starts_with(
            "test from 198.51.100.1 to 203.0.113.3:443: answered (SYN-ACK; reset at once); \
             re-probe 1: endpoint 2 re-added"
        ),
        "{actions:?}"
    );
    s.joined_b(1);
    s.seconds(10, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.plugin.state(ip(B)), State::Healthy);
    assert_eq!(s.pm.take_calls(), []);
}

#[test]
fn an_endpoint_removed_while_suspended_is_not_re_added() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    s.blackhole_b();
    // Its address went away meanwhile: its plugin removes it (quietly).
    block_on(s.pm.remove_endpoint(2)).unwrap();
    s.pm.take_calls();
    s.actions();
    closed_seconds(&mut s, 10);
    assert_eq!(
        s.pm.take_calls(),
        [Call::ResumeEndpoint(2, EndpointFlags::SUBFLOW)]
    );
    assert!(
        s.pm.endpoints().iter().all(|e| e.id != 2),
        "not resurrected"
    );
    assert_eq!(s.actions(), ["nothing left to re-probe: released"]);
    assert_eq!(s.plugin.state(ip(B)), State::Healthy);
}

fn b_path(peer: u32) -> SubflowPath {
    SubflowPath {
        token: peer,
        local: local(B),
        remote: remote(peer),
    }
}

#[test]
fn userspace_pm_subflows_from_a_degraded_address_become_backup_and_are_restored() {
    let mut s = Setup::userspace();
    s.seconds(3, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.pm.take_calls(), []);
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    let set: Vec<_> = (1..=PEERS)
        .map(|p| Call::SetBackup(b_path(p), true))
        .collect();
    assert_eq!(sorted(s.pm.take_calls()), set, "no endpoint touched");
    assert_eq!(s.actions(), ["4 subflows set backup"]);
    assert_eq!(s.flags(2), EndpointFlags::SUBFLOW);
    s.seconds(11, Path::Healthy, Path::Healthy, Path::Healthy);
    let cleared: Vec<_> = (1..=PEERS)
        .map(|p| Call::SetBackup(b_path(p), false))
        .collect();
    assert_eq!(sorted(s.pm.take_calls()), cleared);
    assert_eq!(s.actions(), ["backup cleared on 4 subflows"]);
}

#[test]
fn userspace_pm_a_subflow_joining_from_a_degraded_address_becomes_backup_at_once() {
    let mut s = Setup::userspace();
    s.seconds(3, Path::Healthy, Path::Healthy, Path::Healthy);
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    assert_eq!(s.pm.take_calls().len(), 4, "4 subflows set backup");
    // Peer 1's subflow from B closes and joins again (`mesh` or the peer re-creating it)
    // while B stays lossy: no new decision comes, the join is set backup on its own.
    let sub = testing::subflow(b_path(1));
    s.event(&Event::SubflowClosed(sub));
    s.event(&Event::NewSubflow(sub));
    assert_eq!(s.pm.take_calls(), [Call::SetBackup(b_path(1), true)]);
    s.seconds(2, Path::Healthy, Path::Lossy, Path::Healthy);
    assert_eq!(s.pm.take_calls(), [], "no decision while B stays degraded");
    // One already backup (the peer's MP_PRIO; the view shows it) is not the plugin's, and
    // A's joins are healthy.
    s.backup_b.push(1);
    s.event(&Event::SubflowClosed(sub));
    s.event(&Event::NewSubflow(Subflow {
        backup: true,
        ..sub
    }));
    let a = SubflowPath {
        token: 2,
        local: SocketAddr::new(ip(A), 40_001),
        remote: remote(2),
    };
    s.event(&Event::NewSubflow(testing::subflow(a)));
    assert_eq!(s.pm.take_calls(), []);
    s.seconds(11, Path::Healthy, Path::Healthy, Path::Healthy);
    let cleared: Vec<_> = (2..=PEERS)
        .map(|p| Call::SetBackup(b_path(p), false))
        .collect();
    assert_eq!(
        sorted(s.pm.take_calls()),
        cleared,
        "peer 1's is the peer's now"
    );
}

#[test]
fn userspace_pm_a_join_the_kernel_does_not_list_yet_is_set_backup_at_the_next_tick() {
    let mut s = Setup::userspace();
    s.seconds(3, Path::Healthy, Path::Healthy, Path::Healthy);
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    s.pm.take_calls();
    let sub = testing::subflow(b_path(1));
    s.event(&Event::SubflowClosed(sub));
    // The kernel's answer to a join it has not moved to the connection's list yet.
    s.pm.fail_next("set_backup", testing::EINVAL);
    s.event(&Event::NewSubflow(sub));
    assert_eq!(s.pm.take_calls(), [Call::SetBackup(b_path(1), true)]);
    s.second(Path::Healthy, Path::Lossy, Path::Healthy);
    assert_eq!(s.pm.take_calls(), [Call::SetBackup(b_path(1), true)]);
    s.seconds(2, Path::Healthy, Path::Lossy, Path::Healthy);
    assert_eq!(s.pm.take_calls(), [], "set: not tried again");
    s.seconds(11, Path::Healthy, Path::Healthy, Path::Healthy);
    let cleared: Vec<_> = (1..=PEERS)
        .map(|p| Call::SetBackup(b_path(p), false))
        .collect();
    assert_eq!(
        sorted(s.pm.take_calls()),
        cleared,
        "cleared with the others"
    );
}

#[test]
fn kernel_pm_a_subflow_joining_from_a_degraded_address_is_left_to_the_endpoint() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(3, Path::Healthy, Path::Healthy, Path::Healthy);
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    assert_eq!(s.flags(2), EndpointFlags::SUBFLOW | EndpointFlags::BACKUP);
    s.pm.take_calls();
    s.event(&Event::NewSubflow(testing::subflow(b_path(1))));
    assert_eq!(
        s.pm.take_calls(),
        [],
        "the kernel makes it backup from the endpoint"
    );
}

#[test]
fn userspace_pm_a_subflow_already_backup_is_left_alone() {
    let mut s = Setup::userspace();
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    // The view says peer 2's subflow from B is backup (the peer set it).
    s.backup_b.push(2);
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    let mut calls = s.pm.take_calls();
    calls.sort_by_key(|c| format!("{c:?}"));
    let expected: Vec<_> = [1, 3, 4]
        .into_iter()
        .map(|p| Call::SetBackup(b_path(p), true))
        .collect();
    assert_eq!(calls, expected);
    s.seconds(11, Path::Healthy, Path::Healthy, Path::Healthy);
    let mut calls = s.pm.take_calls();
    calls.sort_by_key(|c| format!("{c:?}"));
    let expected: Vec<_> = [1, 3, 4]
        .into_iter()
        .map(|p| Call::SetBackup(b_path(p), false))
        .collect();
    assert_eq!(calls, expected, "only the flags it set");
}

fn recreated(peer: u32) -> Call {
    Call::SubflowCreate(NewSubflow {
        token: peer,
        local: Endpoint {
            id: 1,
            addr: ip(B),
            port: None,
            flags: EndpointFlags::empty(),
            if_idx: Some(1),
        },
        remote: remote(peer),
    })
}

fn sorted(mut calls: Vec<Call>) -> Vec<Call> {
    calls.sort_by_key(|c| format!("{c:?}"));
    calls
}

#[test]
fn userspace_pm_dead_subflows_are_destroyed_and_re_created_with_backoff() {
    let mut s = Setup::userspace();
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    s.blackhole_b();
    let destroyed: Vec<_> = (1..=PEERS)
        .map(|p| Call::SubflowDestroy(b_path(p)))
        .collect();
    assert_eq!(sorted(s.pm.take_calls()), destroyed);
    assert_eq!(s.actions(), ["4 subflows destroyed; re-probe in 10 s"]);
    assert_eq!(s.plugin.state(ip(B)), State::Dead);
    closed_seconds(&mut s, 10);
    // Same local address, id and interface, same remote; not peer 4's: it opened that one.
    let created: Vec<_> = (1..PEERS).map(recreated).collect();
    assert_eq!(sorted(s.pm.take_calls()), created);
    // No join within the probe window: the re-probes are closed by id, re-probed a hold
    // time after the last began.
    closed_seconds(&mut s, 2);
    let removed: Vec<_> = (1..PEERS).map(|p| Call::RemoveAddress(p, 1)).collect();
    assert_eq!(sorted(s.pm.take_calls()), removed);
    let actions = s.actions();
    assert!(
        actions[1].ends_with("re-probe closed on 3 connections; re-probe in 8 s"),
        "{actions:?}"
    );
    closed_seconds(&mut s, 8);
    assert_eq!(sorted(s.pm.take_calls()), created);
    s.joined_b(1);
    s.seconds(10, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.plugin.state(ip(B)), State::Healthy);
    assert_eq!(s.pm.take_calls(), []);
}

#[test]
fn userspace_pm_dead_subflows_are_re_created_only_once_a_test_is_answered() {
    let mut s = Setup::userspace();
    s.pm.answer_probes(ProbeOutcome::NoAnswer);
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    s.blackhole_b();
    s.pm.take_calls();
    s.actions();
    closed_seconds(&mut s, 10);
    // A test from B on its subflows' interface to a peer they used; nothing re-created.
    let probe = |peer| {
        Call::ProbePath(PathProbe {
            local: ip(B),
            if_index: Some(1),
            remote: remote(peer),
            timeout: Duration::from_millis(900),
        })
    };
    assert_eq!(s.pm.take_calls(), [probe(1)]);
    s.actions();
    closed_seconds(&mut s, 1);
    assert_eq!(s.pm.take_calls(), [probe(2)]);
    let actions = s.actions();
    assert_eq!(
        actions[0],
        "test from 198.51.100.1 to 203.0.113.1:443: no answer within 0.9 s: subflows stay \
         closed; re-probe in 0 s"
    );
    s.pm.answer_probes(ProbeOutcome::Answered { refused: true });
    closed_seconds(&mut s, 2);
    let mut calls = s.pm.take_calls();
    assert_eq!(calls.remove(0), probe(3));
    // Answered: the subflows of connections this side opened are re-created.
    let created: Vec<_> = (1..PEERS).map(recreated).collect();
    assert_eq!(sorted(calls), created);
    let actions = s.actions();
    assert!(
        actions.last().unwrap().starts_with(
            "test from 198.51.100.1 to 203.0.113.3:443: answered (reset); re-probe 1: 3 \
             subflows re-created"
        ),
        "{actions:?}"
    );
}

#[test]
fn userspace_pm_connection_kind_is_read_when_first_heard_of() {
    // A connection created under the in-kernel path manager keeps it after the switch.
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.pm.set_pm_kind(PmKind::Userspace);
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    let calls = s.pm.take_calls();
    assert!(
        calls.iter().all(|c| !matches!(c, Call::SetBackup(..))),
        "{calls:?}"
    );
}

#[test]
fn closed_connections_stop_counting() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(5, Path::Healthy, Path::Lossy, Path::Healthy);
    assert_eq!(s.plugin.state(ip(B)), State::Degraded);
    for peer in 1..=PEERS {
        s.pm.forget_connection_view(peer);
        s.event(&Event::ConnectionClosed(peer));
    }
    s.pm.take_calls();
    // No view to read any more: only the forgetting lets B recover.
    for _ in 0..11 {
        s.now += Duration::from_secs(1);
        s.event(&Event::Tick);
    }
    assert_eq!(s.plugin.state(ip(B)), State::Healthy);
    assert_eq!(
        s.pm.take_calls(),
        [Call::SetEndpointFlags(2, EndpointFlags::SUBFLOW)]
    );
}

#[test]
fn a_connection_the_daemon_no_longer_tracks_is_forgotten_at_the_tick() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(1, Path::Healthy, Path::Healthy, Path::Healthy);
    assert_eq!(s.plugin.connections(), 4);
    // Its CLOSED lost: the daemon's view no longer has it.
    s.pm.forget_connection_view(1);
    s.now += Duration::from_secs(1);
    s.event(&Event::Tick);
    assert_eq!(s.plugin.connections(), 3);
}
