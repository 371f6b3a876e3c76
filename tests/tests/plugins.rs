//! The plugin host with the built-in plugins against the real kernel: a network monitor, a
//! path-manager client and a `PluginHost` inside network namespaces of their own, on the test
//! thread (`NetNs::enter`).
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use mptcpd::{
    netmon::{NetworkMonitor, NotifyFlags},
    plugins::{
        NetlinkPm, PluginHost, PluginSettings,
        api::{Commands as _, Endpoint, EndpointFlags, Limits},
    },
    pm::{EventItem, EventStream, PmClient, wire::Event},
};
use mptcpd_tests::{
    mptcp,
    netns::NetNs,
    skip, sysctl,
    veth::{Address, VethPair},
};
use tokio::time::{Instant, timeout_at};

const WAIT: Duration = Duration::from_secs(10);

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

fn sock(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

fn addr_adv(state_file: PathBuf, flags: EndpointFlags) -> PluginSettings {
    PluginSettings {
        path_manager: None,
        load_plugins: Some(vec!["addr_adv".to_owned()]),
        addr_flags: flags,
        state_file: Some(state_file),
    }
}

/// A monitor and a host in the current namespace, the monitor's start-up events applied.
struct Daemon {
    netmon: NetworkMonitor,
    host: PluginHost<NetlinkPm>,
}

impl Daemon {
    async fn start(settings: &PluginSettings, notify: NotifyFlags) -> Self {
        let netmon = NetworkMonitor::start(notify).await.expect("monitor");
        let pm = PmClient::connect().await.expect("mptcp_pm");
        let host = PluginHost::start(settings, NetlinkPm(pm))
            .await
            .expect("host");
        let mut daemon = Self { netmon, host };
        while let Some(event) = daemon.netmon.try_next_event() {
            daemon.host.on_net_event(&event).await;
        }
        daemon.host.settle().await;
        daemon
    }

    async fn endpoints(&self) -> Vec<Endpoint> {
        self.host
            .pm()
            .kernel()
            .dump_endpoints()
            .await
            .expect("dump")
    }

    /// Feeds network events to the host until the kernel's endpoints satisfy `done`.
    async fn until(&mut self, what: &str, done: impl Fn(&[Endpoint]) -> bool) -> Vec<Endpoint> {
        let deadline = Instant::now() + WAIT;
        loop {
            let endpoints = self.endpoints().await;
            if done(&endpoints) {
                return endpoints;
            }
            match timeout_at(deadline, self.netmon.next_event()).await {
                Ok(Some(event)) => self.host.on_net_event(&event).await,
                Ok(None) => panic!("the monitor stopped"),
                Err(_) => panic!("timed out waiting for {what}; endpoints: {endpoints:?}"),
            }
        }
    }
}

fn has(endpoints: &[Endpoint], addr: &str) -> bool {
    endpoints.iter().any(|e| e.addr == ip(addr))
}

fn ifindex(ns: &NetNs, dev: &str) -> i32 {
    let out = ns.ip(&["-o", "link", "show", dev]).expect("ip link");
    out.split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("ifindex")
}

#[tokio::test]
async fn addr_adv_follows_addresses_and_links() {
    if !skip::require_root("addr_adv_follows_addresses_and_links") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pl-", "follow")).unwrap();
    let _veth = VethPair::new("pl0", &ns, "pl1", &ns).unwrap();
    let _in = ns.enter().unwrap();
    let state = tempfile::tempdir().unwrap();
    let flags = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    let settings = addr_adv(state.path().join("endpoints"), flags);
    let mut daemon = Daemon::start(&settings, NotifyFlags::empty()).await;
    let limits = daemon
        .host
        .pm()
        .kernel()
        .get_limits()
        .await
        .expect("limits");
    assert_eq!(
        limits,
        Limits {
            add_addr_accepted: 2,
            subflows: 2
        },
        "init sets the C plugin's limits"
    );

    let address = Address::add(&ns, "pl0", "10.1.0.1/24").unwrap();
    let endpoints = daemon.until("an endpoint", |e| has(e, "10.1.0.1")).await;
    let [endpoint] = endpoints.as_slice() else {
        panic!("one endpoint: {endpoints:?}")
    };
    assert_eq!(endpoint.flags, flags);
    assert_eq!(endpoint.if_idx, Some(ifindex(&ns, "pl0")));
    assert_ne!(endpoint.id, 0);
    let limits = daemon
        .host
        .pm()
        .kernel()
        .get_limits()
        .await
        .expect("limits");
    assert_eq!(limits.subflows, 3);
    assert_eq!(limits.add_addr_accepted, 3);

    drop(address);
    daemon.until("removal", |e| e.is_empty()).await;

    let _address = Address::add(&ns, "pl0", "10.1.0.1/24").unwrap();
    daemon
        .until("an endpoint again", |e| has(e, "10.1.0.1"))
        .await;
    ns.ip(&["link", "set", "pl0", "down"]).unwrap();
    daemon.until("removal on link down", |e| e.is_empty()).await;
    ns.ip(&["link", "set", "pl0", "up"]).unwrap();
    daemon
        .until("the endpoint on link up", |e| has(e, "10.1.0.1"))
        .await;
    assert_eq!(daemon.host.shutdown().await, 1);
}

#[tokio::test]
async fn addr_adv_respects_the_eight_endpoint_limit() {
    if !skip::require_root("addr_adv_respects_the_eight_endpoint_limit") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pl-", "eight")).unwrap();
    let _veth = VethPair::new("pl0", &ns, "pl1", &ns).unwrap();
    let _in = ns.enter().unwrap();
    let state = tempfile::tempdir().unwrap();
    let settings = addr_adv(state.path().join("endpoints"), EndpointFlags::SIGNAL);
    let mut daemon = Daemon::start(&settings, NotifyFlags::empty()).await;
    let mut addresses: Vec<Address> = (1..=10)
        .map(|n| Address::add(&ns, "pl0", &format!("10.2.0.{n}/32")).unwrap())
        .collect();
    // (/32: each its own primary, so deleting one leaves the others.)
    // All ten are reported; eight get an endpoint, the rest wait without harm.
    daemon.until("eight endpoints", |e| e.len() == 8).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Some(event) = daemon.netmon.try_next_event() {
        daemon.host.on_net_event(&event).await;
    }
    let endpoints = daemon.endpoints().await;
    assert_eq!(endpoints.len(), 8, "{endpoints:?}");
    let missing: Vec<String> = (1..=10)
        .map(|n| format!("10.2.0.{n}"))
        .filter(|a| !has(&endpoints, a))
        .collect();
    assert_eq!(missing.len(), 2);
    // One with an endpoint goes: a waiting one takes its room.
    let holder = endpoints[0].addr;
    let at = (1..=10)
        .position(|n| ip(&format!("10.2.0.{n}")) == holder)
        .unwrap();
    drop(addresses.remove(at));
    let endpoints = daemon
        .until("a waiting address's endpoint", |e| {
            e.len() == 8 && !e.iter().any(|x| x.addr == holder)
        })
        .await;
    assert!(has(&endpoints, &missing[0]), "{endpoints:?}");
    assert_eq!(daemon.host.shutdown().await, 8);
    assert_eq!(
        PmClient::connect()
            .await
            .unwrap()
            .dump_addrs()
            .await
            .unwrap(),
        []
    );
}

fn by_hand() -> mptcpd::pm::wire::Endpoint {
    mptcpd::pm::wire::Endpoint::new(ip("192.0.2.1"), mptcpd::pm::wire::EndpointFlags::SIGNAL)
        .with_id(50)
}

#[tokio::test]
async fn shutdown_removes_only_the_daemons_endpoints() {
    if !skip::require_root("shutdown_removes_only_the_daemons_endpoints") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pl-", "shutdown")).unwrap();
    let _veth = VethPair::new("pl0", &ns, "pl1", &ns).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.unwrap();
    client
        .add_addr(&by_hand())
        .await
        .expect("a hand-made endpoint");
    let state = tempfile::tempdir().unwrap();
    let settings = addr_adv(state.path().join("endpoints"), EndpointFlags::SUBFLOW);
    let mut daemon = Daemon::start(&settings, NotifyFlags::empty()).await;
    let _a = Address::add(&ns, "pl0", "10.3.0.1/24").unwrap();
    let _b = Address::add(&ns, "pl1", "10.3.1.1/24").unwrap();
    daemon
        .until("two endpoints of ours", |e| {
            has(e, "10.3.0.1") && has(e, "10.3.1.1")
        })
        .await;
    assert_eq!(daemon.host.shutdown().await, 2);
    assert_eq!(client.dump_addrs().await.unwrap(), [by_hand()]);
}

#[tokio::test]
async fn a_restarted_host_adopts_its_endpoints_without_duplicates_or_stale_ones() {
    if !skip::require_root("a_restarted_host_adopts_its_endpoints_without_duplicates_or_stale_ones")
    {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pl-", "restart")).unwrap();
    let _veth = VethPair::new("pl0", &ns, "pl1", &ns).unwrap();
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.unwrap();
    client
        .add_addr(&by_hand())
        .await
        .expect("a hand-made endpoint");
    let state = tempfile::tempdir().unwrap();
    let settings = addr_adv(state.path().join("endpoints"), EndpointFlags::SUBFLOW);
    let mut first = Daemon::start(
        &settings,
        NotifyFlags::EXISTING | NotifyFlags::SKIP_LOOPBACK,
    )
    .await;
    let _a = Address::add(&ns, "pl0", "10.4.0.1/24").unwrap();
    let b = Address::add(&ns, "pl1", "10.4.1.1/24").unwrap();
    let before = first
        .until("two endpoints", |e| {
            has(e, "10.4.0.1") && has(e, "10.4.1.1")
        })
        .await;
    // Killed: no shutdown, the endpoints stay. 10.4.1.1 goes while no daemon runs.
    drop(first);
    drop(b);

    let second = Daemon::start(
        &settings,
        NotifyFlags::EXISTING | NotifyFlags::SKIP_LOOPBACK,
    )
    .await;
    let after = second.endpoints().await;
    let kept: Vec<&Endpoint> = before.iter().filter(|e| e.addr == ip("10.4.0.1")).collect();
    assert_eq!(
        after.len(),
        2,
        "ours adopted once, the stale one removed: {after:?}"
    );
    assert!(after.contains(kept[0]), "same id, not re-added: {after:?}");
    assert!(!has(&after, "10.4.1.1"), "{after:?}");
    assert!(has(&after, "192.0.2.1"));
    assert_eq!(second.host.shutdown().await, 1);
    assert_eq!(client.dump_addrs().await.unwrap(), [by_hand()]);
}
