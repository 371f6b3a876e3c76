//! The plugin against the fake kernel: four connections, each with a subflow from A, B and
//! another tool's address C to its own peer; the figures the daemon's view shows advance
//! each tick as the test's paths say.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use mptcpd_plugin::{
    Commands as _, ConnectionView, Endpoint, EndpointFlags, Event, HealthConfig, PathDecision,
    PathFigures, PluginConfig, SubflowPath, SubflowView, TelemetryEvent, TelemetryKind,
    testing::{self, Call, RecordingPm, block_on},
};

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
}

struct Setup {
    plugin: Health,
    pm: RecordingPm,
    now: Duration,
    /// Per connection (token = peer), the figures of the subflows from A, B, C.
    figures: Vec<[PathFigures; 3]>,
}

impl Setup {
    /// A and B are this daemon's endpoints (ids 1, 2; flags `addr_flags`), C another tool's.
    fn new(addr_flags: EndpointFlags) -> Self {
        let pm = RecordingPm::new();
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
        };
        for peer in 1..=PEERS {
            setup.event(&Event::NewConnection(testing::connection(SubflowPath {
                token: peer,
                local: local(A),
                remote: remote(peer),
            })));
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
            for (figures, (addr, path)) in figures.iter_mut().zip([(A, a), (B, b), (C, c)]) {
                figures.segs_out += 100;
                figures.bytes_acked += 100_000;
                if path == Path::Lossy {
                    figures.retransmissions += 30;
                }
                let mut sub = SubflowView::new(local(addr), remote(peer));
                sub.figures = Some(*figures);
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
    s.seconds(3, Path::Healthy, Path::Lossy, Path::Healthy);
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

#[test]
fn a_restore_gives_back_the_configured_backup_flag() {
    let configured = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    let mut s = Setup::new(configured);
    // Another tool cleared the flag meanwhile: the demotion sets it, the restore keeps it.
    block_on(s.pm.set_endpoint_flags(2, EndpointFlags::SUBFLOW)).unwrap();
    s.pm.take_calls();
    s.seconds(3, Path::Healthy, Path::Lossy, Path::Healthy);
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
fn rto_telemetry_alone_demotes_a_blackholed_address() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(2, Path::Healthy, Path::Healthy, Path::Healthy);
    // B blackholed: RTO after RTO, nothing acknowledged, before the next tick.
    for _ in 0..3 {
        for peer in 1..=PEERS {
            let figures = &mut s.figures[usize::try_from(peer - 1).unwrap()][1];
            figures.segs_out += 1;
            figures.retransmissions += 1;
            figures.rtos += 1;
            let figures = *figures;
            s.event(&Event::Telemetry(TelemetryEvent::new(
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
    assert_eq!(s.plugin.state(ip(B)), State::Dead);
    assert_eq!(
        s.pm.take_calls(),
        [Call::SetEndpointFlags(
            2,
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP
        )]
    );
}

#[test]
fn closed_connections_stop_counting() {
    let mut s = Setup::new(EndpointFlags::SUBFLOW);
    s.seconds(3, Path::Healthy, Path::Lossy, Path::Healthy);
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
