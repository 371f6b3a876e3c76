//! The network monitor against the real kernel. Each test runs a monitor inside a namespace of
//! its own and changes links, addresses and routes there with `ip`.

use std::{
    net::IpAddr,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use mptcpd_netmon::{NetEvent, NetworkMonitor, NotifyFlags};
use mptcpd_tests::{
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
    skip,
};
use tokio::sync::oneshot;

/// How long an expected event may take (kernel notifications arrive within milliseconds;
/// carrier changes go through linkwatch, which may batch them for up to a second).
const WAIT: Duration = Duration::from_secs(10);

enum Report {
    Started(Vec<NetEvent>),
    Event(NetEvent),
    Failed(String),
}

/// A monitor on a thread of its own inside a namespace, with its events on a channel.
struct Monitor {
    reports: mpsc::Receiver<Report>,
    /// Events received and not consumed yet (the start-up dump's first).
    pending: Vec<NetEvent>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Monitor {
    /// Starts a monitor inside `netns` and waits until its start-up dump is applied.
    fn start(netns: &NetNs, flags: NotifyFlags) -> Self {
        let (report, reports) = mpsc::channel();
        let (stop, stopped) = oneshot::channel();
        // The thread inherits the namespace of the one that spawns it.
        let thread = netns
            .run(move || thread::spawn(move || serve(flags, &report, stopped)))
            .unwrap();
        let mut monitor = Self {
            reports,
            pending: Vec::new(),
            stop: Some(stop),
            thread: Some(thread),
        };
        match monitor.reports.recv_timeout(WAIT) {
            Ok(Report::Started(dump)) => monitor.pending = dump,
            Ok(Report::Failed(e)) => panic!("monitor did not start: {e}"),
            Ok(Report::Event(_)) => unreachable!("events come after Started"),
            Err(e) => panic!("monitor did not start: {e}"),
        }
        monitor
    }

    /// The events of the start-up dump not consumed yet.
    fn dump(&self) -> &[NetEvent] {
        &self.pending
    }

    fn next(&mut self, deadline: Instant) -> Option<NetEvent> {
        if !self.pending.is_empty() {
            return Some(self.pending.remove(0));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.reports.recv_timeout(left) {
            Ok(Report::Event(event)) => Some(event),
            Ok(Report::Failed(e)) => panic!("monitor failed: {e}"),
            Ok(Report::Started(_)) => unreachable!("started twice"),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("monitor thread ended"),
        }
    }

    /// Consumes events until one matches; returns all of them, the match last.
    fn expect(&mut self, what: &str, matches: impl Fn(&NetEvent) -> bool) -> Vec<NetEvent> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while let Some(event) = self.next(deadline) {
            let found = matches(&event);
            seen.push(event);
            if found {
                return seen;
            }
        }
        panic!("no {what} within {WAIT:?}; got {seen:#?}");
    }

    /// Consumes events until each of `addrs` was reported, in any order.
    fn expect_addresses(&mut self, addrs: &[&str]) {
        let mut missing: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
        while !missing.is_empty() {
            let seen = self.expect(&format!("NewLocalAddress for {missing:?}"), |event| {
                matches!(event, NetEvent::NewLocalAddress { address, .. } if missing.contains(&address.addr))
            });
            if let Some(NetEvent::NewLocalAddress { address, .. }) = seen.last() {
                missing.retain(|a| *a != address.addr);
            }
        }
    }

    /// Consumes the events of the next `window` and fails if one matches.
    fn expect_none_for(
        &mut self,
        window: Duration,
        what: &str,
        matches: impl Fn(&NetEvent) -> bool,
    ) {
        let deadline = Instant::now() + window;
        while let Some(event) = self.next(deadline) {
            assert!(!matches(&event), "unexpected {what}: {event:#?}");
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _stopped = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !thread::panicking()
        {
            panic!("monitor thread panicked");
        }
    }
}

/// The monitor thread: a current-thread runtime that forwards events until told to stop.
fn serve(flags: NotifyFlags, report: &mpsc::Sender<Report>, mut stop: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut monitor = match NetworkMonitor::start(flags).await {
            Ok(monitor) => monitor,
            Err(e) => {
                let _gone = report.send(Report::Failed(format!("{e}")));
                return;
            }
        };
        let mut dump = Vec::new();
        while let Some(event) = monitor.try_next_event() {
            dump.push(event);
        }
        if report.send(Report::Started(dump)).is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = &mut stop => return,
                event = monitor.next_event() => {
                    let Some(event) = event else {
                        let why = monitor.wait().await;
                        let _gone = report.send(Report::Failed(format!("stopped: {why:?}")));
                        return;
                    };
                    if report.send(Report::Event(event)).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

fn ip(addr: &str) -> IpAddr {
    addr.parse().unwrap()
}

fn new_interface(name: &'static str) -> impl Fn(&NetEvent) -> bool {
    move |event| matches!(event, NetEvent::NewInterface(i) if i.name == name)
}

fn delete_interface(name: &'static str) -> impl Fn(&NetEvent) -> bool {
    move |event| matches!(event, NetEvent::DeleteInterface(i) if i.name == name)
}

fn new_address(addr: &str) -> impl Fn(&NetEvent) -> bool {
    let addr = ip(addr);
    move |event| matches!(event, NetEvent::NewLocalAddress { address, .. } if address.addr == addr)
}

fn delete_address(addr: &str) -> impl Fn(&NetEvent) -> bool {
    let addr = ip(addr);
    move |event| matches!(event, NetEvent::DeleteLocalAddress { address, .. } if address.addr == addr)
}

fn any_new_address(event: &NetEvent) -> bool {
    matches!(event, NetEvent::NewLocalAddress { .. })
}

/// Any new address but the IPv6 link-local one the kernel gives each veth (reported once its
/// duplicate address detection is over, at a time the test does not control).
fn new_address_not_link_local(event: &NetEvent) -> bool {
    matches!(event, NetEvent::NewLocalAddress { address, .. }
        if !matches!(address.addr, IpAddr::V6(v6) if v6.is_unicast_link_local()))
}

/// A namespace to monitor with one veth `nm0` whose peer `nm1` lives in a second namespace.
fn lab(test: &str) -> (NetNs, NetNs, VethPair) {
    let netns = NetNs::new(&format!("mptcpd-t-{test}")).unwrap();
    let peer = NetNs::new(&format!("mptcpd-t-{test}p")).unwrap();
    let veth = VethPair::new("nm0", &netns, "nm1", &peer).unwrap();
    (netns, peer, veth)
}

#[test]
fn initial_dump_reports_interfaces_and_with_existing_their_addresses() {
    if !skip::require_root("initial_dump_reports_interfaces_and_with_existing_their_addresses") {
        return;
    }
    let (netns, _peer, _veth) = lab("nmdump");
    let _v4 = Address::add(&netns, "nm0", "198.51.100.1/24").unwrap();
    let _v6 = Address::add(&netns, "nm0", "fd00:1::1/64").unwrap();

    let mut monitor = Monitor::start(&netns, NotifyFlags::EXISTING);
    // The loopback interface is never reported (as in the C daemon).
    assert!(
        !monitor.dump().iter().any(new_interface("lo")),
        "{:#?}",
        monitor.dump()
    );
    // nm0 is in the dump unless its carrier was still settling; then it follows at once.
    let seen = monitor.expect("NewInterface nm0", new_interface("nm0"));
    assert!(!seen.iter().any(new_address("198.51.100.1")), "{seen:#?}");
    monitor.expect_addresses(&["198.51.100.1", "fd00:1::1"]);
    drop(monitor);

    // Without `existing`: the interfaces still (C issue #180), the addresses not.
    let mut monitor = Monitor::start(&netns, NotifyFlags::empty());
    assert!(
        !monitor.dump().iter().any(any_new_address),
        "{:#?}",
        monitor.dump()
    );
    monitor.expect("NewInterface nm0", new_interface("nm0"));
    let _later = Address::add(&netns, "nm0", "198.51.100.2/24").unwrap();
    let seen = monitor.expect("NewLocalAddress 198.51.100.2", new_address("198.51.100.2"));
    assert_eq!(
        seen.iter()
            .filter(|e| new_address_not_link_local(e))
            .count(),
        1,
        "{seen:#?}"
    );
}

#[test]
fn ipv4_and_ipv6_addresses_are_reported_and_withdrawn() {
    if !skip::require_root("ipv4_and_ipv6_addresses_are_reported_and_withdrawn") {
        return;
    }
    let (netns, _peer, _veth) = lab("nmaddr");
    let mut monitor = Monitor::start(&netns, NotifyFlags::empty());
    monitor.expect("NewInterface nm0", new_interface("nm0"));

    let v4 = Address::add(&netns, "nm0", "198.51.100.1/24").unwrap();
    let seen = monitor.expect("NewLocalAddress 198.51.100.1", new_address("198.51.100.1"));
    let Some(NetEvent::NewLocalAddress { interface, address }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(interface.name, "nm0");
    assert_eq!(address.ifindex, interface.index);
    assert_eq!(address.prefix_len, 24);

    let v6 = Address::add(&netns, "nm0", "fd00:1::1/64").unwrap();
    let seen = monitor.expect("NewLocalAddress fd00:1::1", new_address("fd00:1::1"));
    let Some(NetEvent::NewLocalAddress { address, .. }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(address.prefix_len, 64);

    drop(v4);
    monitor.expect(
        "DeleteLocalAddress 198.51.100.1",
        delete_address("198.51.100.1"),
    );
    drop(v6);
    monitor.expect("DeleteLocalAddress fd00:1::1", delete_address("fd00:1::1"));
}

#[test]
fn skip_link_local_ignores_ipv6_and_ipv4_link_local_addresses() {
    if !skip::require_root("skip_link_local_ignores_ipv6_and_ipv4_link_local_addresses") {
        return;
    }
    let (netns, _peer, _veth) = lab("nmll");
    let mut monitor = Monitor::start(&netns, NotifyFlags::SKIP_LINK_LOCAL);
    monitor.expect("NewInterface nm0", new_interface("nm0"));
    let _fe80 = Address::add(&netns, "nm0", "fe80::1234/64").unwrap();
    // `ip` gives 169.254/16 the global scope: skipped by value.
    let _v4ll = Address::add(&netns, "nm0", "169.254.7.7/16").unwrap();
    let _global = Address::add(&netns, "nm0", "fd00:1::9/64").unwrap();
    // Notifications arrive in order: had the link-local ones been reported, it was before.
    let seen = monitor.expect("NewLocalAddress fd00:1::9", new_address("fd00:1::9"));
    assert_eq!(
        seen.iter().filter(|e| any_new_address(e)).count(),
        1,
        "{seen:#?}"
    );
    drop(monitor);

    let mut monitor = Monitor::start(&netns, NotifyFlags::EXISTING);
    monitor.expect_addresses(&["fe80::1234", "169.254.7.7"]);
}

#[test]
fn skip_loopback_ignores_the_loopback_interface_and_host_scope() {
    if !skip::require_root("skip_loopback_ignores_the_loopback_interface_and_host_scope") {
        return;
    }
    let (netns, _peer, _veth) = lab("nmlo");
    // Removed with the veth.
    netns
        .ip(&["addr", "add", "10.3.0.1/32", "dev", "nm0", "scope", "host"])
        .unwrap();

    let flags = NotifyFlags::EXISTING | NotifyFlags::SKIP_LOOPBACK;
    let mut monitor = Monitor::start(&netns, flags);
    let _marker = Address::add(&netns, "nm0", "198.51.100.3/24").unwrap();
    let seen = monitor.expect("NewLocalAddress 198.51.100.3", new_address("198.51.100.3"));
    let leaked: Vec<_> = seen
        .iter()
        .filter(|e| match e {
            NetEvent::NewInterface(i) => i.name == "lo",
            NetEvent::NewLocalAddress { address, .. } => address.addr != ip("198.51.100.3"),
            _ => false,
        })
        .collect();
    assert!(leaked.is_empty(), "{leaked:#?}");
    drop(monitor);

    // Without skip_loopback the host-scope address on nm0 is reported; lo never is.
    let mut monitor = Monitor::start(&netns, NotifyFlags::EXISTING);
    let seen = monitor.expect("NewLocalAddress 10.3.0.1", new_address("10.3.0.1"));
    assert!(!seen.iter().any(new_interface("lo")), "{seen:#?}");
}

/// Asserts that `seen` withdrew each of `addrs` before `DeleteInterface nm0`, which it ends with.
fn assert_withdrawn_before_interface(seen: &[NetEvent], addrs: &[&str]) {
    for addr in addrs {
        assert!(seen.iter().any(delete_address(addr)), "{addr}: {seen:#?}");
    }
    assert!(matches!(seen.last(), Some(NetEvent::DeleteInterface(_))));
}

#[test]
fn link_down_withdraws_addresses_and_link_up_offers_them_again() {
    if !skip::require_root("link_down_withdraws_addresses_and_link_up_offers_them_again") {
        return;
    }
    let (netns, peer, veth) = lab("nmdown");
    let mut monitor = Monitor::start(&netns, NotifyFlags::empty());
    monitor.expect("NewInterface nm0", new_interface("nm0"));
    // Plain `ip` commands: deleting the veth at the end takes the addresses with it.
    netns
        .ip(&["addr", "add", "198.51.100.1/24", "dev", "nm0"])
        .unwrap();
    netns
        .ip(&["addr", "add", "fd00:1::1/64", "dev", "nm0", "nodad"])
        .unwrap();
    monitor.expect("NewLocalAddress 198.51.100.1", new_address("198.51.100.1"));
    monitor.expect("NewLocalAddress fd00:1::1", new_address("fd00:1::1"));

    // Cable unplugged (C issue #334): the peer goes down, nm0 loses its carrier.
    peer.ip(&["link", "set", "nm1", "down"]).unwrap();
    let seen = monitor.expect("DeleteInterface nm0", delete_interface("nm0"));
    assert_withdrawn_before_interface(&seen, &["198.51.100.1", "fd00:1::1"]);
    peer.ip(&["link", "set", "nm1", "up"]).unwrap();
    let seen = monitor.expect("NewInterface nm0", new_interface("nm0"));
    assert!(!seen.iter().any(new_address("198.51.100.1")), "{seen:#?}");
    monitor.expect("NewLocalAddress 198.51.100.1", new_address("198.51.100.1"));
    monitor.expect("NewLocalAddress fd00:1::1", new_address("fd00:1::1"));

    // Administratively down: the kernel also deletes the IPv6 address.
    netns.ip(&["link", "set", "nm0", "down"]).unwrap();
    let seen = monitor.expect("DeleteInterface nm0", delete_interface("nm0"));
    assert_withdrawn_before_interface(&seen, &["198.51.100.1"]);
    netns.ip(&["link", "set", "nm0", "up"]).unwrap();
    monitor.expect("NewInterface nm0", new_interface("nm0"));
    monitor.expect("NewLocalAddress 198.51.100.1", new_address("198.51.100.1"));

    // Deleted: addresses first.
    drop(veth);
    let seen = monitor.expect("DeleteInterface nm0", delete_interface("nm0"));
    assert_withdrawn_before_interface(&seen, &["198.51.100.1"]);
}

#[test]
fn check_route_reports_an_address_once_its_default_route_appears_and_withdraws_it_after() {
    if !skip::require_root(
        "check_route_reports_an_address_once_its_default_route_appears_and_withdraws_it_after",
    ) {
        return;
    }
    let (netns, peer, _veth) = lab("nmroute");
    let _other = VethPair::new("nm2", &netns, "nm3", &peer).unwrap();
    let mut monitor = Monitor::start(&netns, NotifyFlags::CHECK_ROUTE);
    monitor.expect("NewInterface nm0", new_interface("nm0"));

    // The probe the lookup uses (192.0.2.1, 2001:db8::) must not be on-link: other ranges.
    let _v4 = Address::add(&netns, "nm0", "198.51.100.1/24").unwrap();
    let _v6 = Address::add(&netns, "nm0", "fd00:1::1/64").unwrap();
    // Well past the C daemon's 30 ms of retries.
    monitor.expect_none_for(
        Duration::from_millis(300),
        "address without a default route",
        new_address_not_link_local,
    );

    netns
        .ip(&[
            "route",
            "add",
            "default",
            "via",
            "198.51.100.254",
            "dev",
            "nm0",
        ])
        .unwrap();
    let seen = monitor.expect("NewLocalAddress 198.51.100.1", new_address("198.51.100.1"));
    assert!(!seen.iter().any(new_address("fd00:1::1")), "{seen:#?}");
    netns
        .ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd00:1::fe",
            "dev",
            "nm0",
        ])
        .unwrap();
    monitor.expect("NewLocalAddress fd00:1::1", new_address("fd00:1::1"));

    // A default route through nm0 does not make an address on nm2 routable.
    let _elsewhere = Address::add(&netns, "nm2", "203.0.113.1/24").unwrap();
    let _marker = VethPair::new("nm4", &netns, "nm5", &peer).unwrap();
    let seen = monitor.expect("NewInterface nm4", new_interface("nm4"));
    assert!(!seen.iter().any(new_address("203.0.113.1")), "{seen:#?}");

    netns.ip(&["route", "del", "default"]).unwrap();
    monitor.expect(
        "DeleteLocalAddress 198.51.100.1",
        delete_address("198.51.100.1"),
    );
    netns.ip(&["-6", "route", "del", "default"]).unwrap();
    monitor.expect("DeleteLocalAddress fd00:1::1", delete_address("fd00:1::1"));
}
