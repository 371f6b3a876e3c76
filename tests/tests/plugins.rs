//! The plugin host with the built-in plugins against the real kernel: a network monitor, a
//! path-manager client and a `PluginHost` inside network namespaces of their own, on the test
//! thread (`NetNs::enter`).
//!
//! Needs root (else each test prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use mptcp_pm::{Event, EventItem, EventStream, NewSubflow, PmClient};
use mptcpd::plugins::{
    NetlinkPm, PluginHost, PluginSettings, Registry,
    api::{Commands, Endpoint, EndpointFlags, Limits},
};
use mptcpd_netmon::{NetworkMonitor, NotifyFlags};
use mptcpd_plugin::{EndpointPolicy, HealthConfig};
use mptcpd_tests::{
    net::{
        netns::NetNs,
        sysctl,
        veth::{Address, VethPair},
    },
    skip,
    sockets::mptcp,
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
        max_subflows: None,
        health: HealthConfig::DEFAULT,
        policy: EndpointPolicy::default(),
        state_file: Some(state_file),
    }
}

/// Namespace `mptcpd-t-pl-SUFFIX` with a veth pair pl0/pl1 in it; `None` (test skipped) without
/// root.
fn pl_netns(test: &str, suffix: &str) -> Option<(NetNs, VethPair)> {
    if !skip::require_root(test) {
        return None;
    }
    let ns = NetNs::new(&format!("mptcpd-t-pl-{suffix}")).unwrap();
    let veth = VethPair::new("pl0", &ns, "pl1", &ns).unwrap();
    Some((ns, veth))
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
        let host = PluginHost::start(&Registry::default(), settings, NetlinkPm(pm))
            .await
            .expect("host");
        let mut daemon = Self { netmon, host };
        daemon.host.start_up(&mut daemon.netmon).await;
        daemon
    }

    /// [`Self::start`] with `addr_adv` adding endpoints with `flags`, its state file in
    /// `state`.
    async fn addr_adv(state: &Path, flags: EndpointFlags) -> Self {
        let settings = addr_adv(state.join("endpoints"), flags);
        Self::start(&settings, NotifyFlags::empty()).await
    }

    /// Passes a network event to the host and waits until the plugins have handled it.
    async fn handle(&mut self, event: &mptcpd_netmon::NetEvent) {
        self.host.on_net_event(event).await;
        self.host.drain().await;
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
                Ok(Some(event)) => self.handle(&event).await,
                Ok(None) => panic!("the monitor stopped"),
                Err(elapsed) => panic!("{elapsed} waiting for {what}; endpoints: {endpoints:?}"),
            }
        }
    }

    /// [`Self::until`] for what the kernel changes without a network event (its implicit
    /// endpoints): the endpoints are also re-read every 20 ms.
    async fn until_polled(
        &mut self,
        what: &str,
        done: impl Fn(&[Endpoint]) -> bool,
    ) -> Vec<Endpoint> {
        let deadline = Instant::now() + WAIT;
        loop {
            let endpoints = self.endpoints().await;
            if done(&endpoints) {
                return endpoints;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; endpoints: {endpoints:?}"
            );
            let tick = Instant::now() + Duration::from_millis(20);
            match timeout_at(tick, self.netmon.next_event()).await {
                Ok(Some(event)) => self.handle(&event).await,
                Ok(None) => panic!("the monitor stopped"),
                Err(_) => {}
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
    let Some((ns, _veth)) = pl_netns("addr_adv_follows_addresses_and_links", "follow") else {
        return;
    };
    let _in = ns.enter().unwrap();
    let state = tempfile::tempdir().unwrap();
    let flags = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    let mut daemon = Daemon::addr_adv(state.path(), flags).await;
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
    daemon.until("removal", <[Endpoint]>::is_empty).await;

    let _address = Address::add(&ns, "pl0", "10.1.0.1/24").unwrap();
    daemon
        .until("an endpoint again", |e| has(e, "10.1.0.1"))
        .await;
    ns.ip(&["link", "set", "pl0", "down"]).unwrap();
    daemon
        .until("removal on link down", <[Endpoint]>::is_empty)
        .await;
    ns.ip(&["link", "set", "pl0", "up"]).unwrap();
    daemon
        .until("the endpoint on link up", |e| has(e, "10.1.0.1"))
        .await;
    assert_eq!(daemon.host.shutdown().await, 1);
}

#[tokio::test]
async fn addr_adv_respects_the_eight_endpoint_limit() {
    let Some((ns, _veth)) = pl_netns("addr_adv_respects_the_eight_endpoint_limit", "eight") else {
        return;
    };
    let _in = ns.enter().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::addr_adv(state.path(), EndpointFlags::SIGNAL).await;
    let mut addresses: Vec<Address> = (1..=10)
        .map(|n| Address::add(&ns, "pl0", &format!("10.2.0.{n}/32")).unwrap())
        .collect();
    // (/32: each its own primary, so deleting one leaves the others.)
    // All ten are reported; eight get an endpoint, the rest wait without harm.
    daemon.until("eight endpoints", |e| e.len() == 8).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Some(event) = daemon.netmon.try_next_event() {
        daemon.handle(&event).await;
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

fn by_hand() -> Endpoint {
    Endpoint::new(ip("192.0.2.1"), EndpointFlags::SIGNAL).with_id(50)
}

#[tokio::test]
async fn shutdown_removes_only_the_daemons_endpoints() {
    let Some((ns, _veth)) = pl_netns("shutdown_removes_only_the_daemons_endpoints", "shutdown")
    else {
        return;
    };
    let _in = ns.enter().unwrap();
    let client = PmClient::connect().await.unwrap();
    client
        .add_addr(&by_hand())
        .await
        .expect("a hand-made endpoint");
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::addr_adv(state.path(), EndpointFlags::SUBFLOW).await;
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
    let Some((ns, _veth)) = pl_netns(
        "a_restarted_host_adopts_its_endpoints_without_duplicates_or_stale_ones",
        "restart",
    ) else {
        return;
    };
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

/// Both ends of the `sspi` test: what each side's events said so far.
#[derive(Default)]
struct Seen {
    client: Vec<Event>,
    server: Vec<Event>,
}

impl Seen {
    /// Subflows established and not closed (the initial one is not reported) from `local`.
    fn live_from(&self, local: IpAddr) -> usize {
        let mut live = Vec::new();
        for event in &self.client {
            match event {
                Event::SubflowEstablished(s) if s.local.ip() == local => live.push(s.local),
                Event::SubflowClosed(s) => live.retain(|l| *l != s.local),
                _ => {}
            }
        }
        live.len()
    }
}

/// Runs the host on the client's events and collects both sides' events until `done`.
async fn pump(
    daemon: &mut Daemon,
    host_events: &mut EventStream,
    observer: &mut EventStream,
    server_events: &mut EventStream,
    seen: &mut Seen,
    what: &str,
    done: impl Fn(&Seen) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    while !done(seen) {
        let step = async {
            tokio::select! {
                item = host_events.recv() => match item.expect("events") {
                    EventItem::Event(e) => daemon.host.on_pm_event(&e).await,
                    EventItem::Overrun => daemon.host.resync(mptcpd::diag::connections().await).await,
                    EventItem::Malformed(e) => panic!("{e}"),
                },
                event = daemon.netmon.next_event() => {
                    daemon.host.on_net_event(&event.expect("monitor")).await;
                }
                item = observer.recv() => if let EventItem::Event(e) = item.expect("events") {
                    seen.client.push(e);
                },
                item = server_events.recv() => if let EventItem::Event(e) = item.expect("events") {
                    seen.server.push(e);
                },
            }
        };
        let stepped = timeout_at(deadline, step).await;
        assert!(
            stepped.is_ok(),
            "timed out waiting for {what}; client: {:#?}; server: {:#?}",
            seen.client,
            seen.server
        );
    }
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario across two namespaces, step by step"
)]
async fn sspi_announces_and_keeps_one_subflow_per_interface() {
    if !skip::require_root("sspi_announces_and_keeps_one_subflow_per_interface") {
        return;
    }
    let cli = NetNs::new(concat!("mptcpd-t-pl-", "sspi-c")).unwrap();
    let srv = NetNs::new(concat!("mptcpd-t-pl-", "sspi-s")).unwrap();
    let _va = VethPair::new("c-a", &cli, "s-a", &srv).unwrap();
    let _vb = VethPair::new("c-b", &cli, "s-b", &srv).unwrap();
    let _addrs = [
        Address::add(&cli, "c-a", "10.0.1.1/24").unwrap(),
        Address::add(&cli, "c-b", "10.0.2.1/24").unwrap(),
        Address::add(&srv, "s-a", "10.0.1.2/24").unwrap(),
        Address::add(&srv, "s-b", "10.0.2.2/24").unwrap(),
    ];
    // The userspace path manager in the client's namespace only.
    sysctl::set_in(&cli, "net.mptcp.pm_type", "1").unwrap();

    // The server: the in-kernel path manager, which joins addresses announced to it.
    let (mut server_events, listener) = {
        let _in = srv.enter().unwrap();
        let server = PmClient::connect().await.expect("mptcp_pm");
        let limits = Limits {
            add_addr_accepted: 2,
            subflows: 2,
        };
        server.set_limits(limits).await.expect("limits");
        let events = server.subscribe().expect("subscribe");
        (events, mptcp_listener(sock("0.0.0.0:5201")))
    };

    let _in = cli.enter().unwrap();
    let state = tempfile::tempdir().unwrap();
    let settings = PluginSettings {
        path_manager: Some("sspi".to_owned()),
        load_plugins: Some(vec!["sspi".to_owned()]),
        addr_flags: EndpointFlags::empty(),
        max_subflows: None,
        health: HealthConfig::DEFAULT,
        policy: EndpointPolicy::default(),
        state_file: Some(state.path().join("endpoints")),
    };
    let mut daemon = Daemon::start(
        &settings,
        NotifyFlags::EXISTING | NotifyFlags::SKIP_LOOPBACK,
    )
    .await;
    assert_eq!(daemon.host.default_plugin(), "sspi");
    let client = PmClient::connect().await.expect("mptcp_pm");
    let mut host_events = client.subscribe().expect("subscribe");
    let mut observer = client.subscribe().expect("subscribe");

    let stream = mptcp_connect(sock("10.0.1.2:5201"));
    let (_accepted, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("accept")
        .expect("accept");
    send(&stream, b"hello").await;

    let mut seen = Seen::default();
    let announced = |seen: &Seen| {
        seen.server.iter().find_map(|e| match e {
            Event::Announced(a) if a.addr == ip("10.0.2.1") => Some(*a),
            _ => None,
        })
    };
    pump(
        &mut daemon,
        &mut host_events,
        &mut observer,
        &mut server_events,
        &mut seen,
        "ANNOUNCED at the server",
        |s| announced(s).is_some(),
    )
    .await;
    let announcement = announced(&seen).unwrap();
    assert_ne!(announcement.id, 0, "a real address id");
    let port = announcement.port.expect("the listener's port");
    assert_ne!(port, 0);
    assert!(
        !seen
            .server
            .iter()
            .any(|e| matches!(e, Event::Announced(a) if a.addr == ip("10.0.1.1"))),
        "the initial subflow's interface is not announced"
    );

    // The server joins the announced address (the listener accepts it): one subflow on c-b.
    let joined = ip("10.0.2.1");
    pump(
        &mut daemon,
        &mut host_events,
        &mut observer,
        &mut server_events,
        &mut seen,
        "the server's join to the announced address",
        |s| s.live_from(joined) == 1,
    )
    .await;
    let token = seen
        .client
        .iter()
        .find_map(|e| match e {
            Event::Created(c) => Some(c.token),
            _ => None,
        })
        .expect("CREATED");

    // A second subflow on c-b, forced: sspi closes it. (Its own id: the kernel matches the
    // announced entry by address and port, and this one has no port.)
    let local = Endpoint::new(joined, EndpointFlags::empty()).with_id(200);
    client
        .subflow_create(&NewSubflow {
            token,
            local,
            remote: sock("10.0.2.2:5201"),
        })
        .await
        .expect("subflow_create");
    pump(
        &mut daemon,
        &mut host_events,
        &mut observer,
        &mut server_events,
        &mut seen,
        "the extra subflow to be closed",
        |s| {
            s.client.iter().any(|e| {
                matches!(e, Event::SubflowClosed(c) if c.local.ip() == joined
                    && c.remote == sock("10.0.2.2:5201"))
            })
        },
    )
    .await;
    assert_eq!(
        seen.live_from(joined),
        1,
        "one subflow on c-b: {:#?}",
        seen.client
    );
    assert_eq!(
        seen.live_from(ip("10.0.1.1")),
        0,
        "only the initial subflow on c-a"
    );
    let info = mptcp::mptcp_info(&stream).expect("MPTCP_INFO");
    assert_eq!(info.extra_subflows, 1, "{info:?}");

    drop(stream);
    daemon.host.shutdown().await;
}

/// An MPTCP listener (in the current namespace).
fn mptcp_listener(addr: SocketAddr) -> tokio::net::TcpListener {
    let listener = mptcp::listen(addr).expect("an MPTCP listener");
    listener.set_nonblocking(true).expect("non-blocking");
    tokio::net::TcpListener::from_std(listener).expect("a tokio listener")
}

/// An MPTCP connection (in the current namespace).
fn mptcp_connect(addr: SocketAddr) -> tokio::net::TcpStream {
    let stream = mptcp::connect(addr).expect("an MPTCP connection");
    stream.set_nonblocking(true).expect("non-blocking");
    tokio::net::TcpStream::from_std(stream).expect("a tokio stream")
}

/// Writes all of `data` (MPTCP becomes fully established once data flows).
async fn send(stream: &tokio::net::TcpStream, mut data: &[u8]) {
    while !data.is_empty() {
        stream.writable().await.expect("writable");
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => panic!("write: {err}"),
        }
    }
}

/// One `ADD_ADDR` of the script below: the id the endpoint got, or the errno.
async fn add_answer(kernel: &dyn Commands, id: u8, addr: &str) -> Result<u8, i32> {
    let endpoint = Endpoint {
        id,
        addr: ip(addr),
        port: None,
        flags: EndpointFlags::SIGNAL,
        if_idx: None,
    };
    kernel
        .add_endpoint(endpoint)
        .await
        .map_err(|e| e.errno().unwrap_or(-1))
}

/// Adds and removes the way the id tests need, on any kernel; returns every answer.
async fn add_script(kernel: &dyn Commands) -> Vec<Result<u8, i32>> {
    let mut answers = vec![
        add_answer(kernel, 1, "192.0.2.1").await,
        // No id: the kernel chooses.
        add_answer(kernel, 0, "192.0.2.2").await,
        // A taken id; a duplicate address; both.
        add_answer(kernel, 2, "192.0.2.3").await,
        add_answer(kernel, 9, "192.0.2.1").await,
        add_answer(kernel, 2, "192.0.2.1").await,
        add_answer(kernel, 0, "192.0.2.1").await,
    ];
    kernel.remove_endpoint(1).await.expect("remove 1");
    // The kernel's choice goes upwards, not to the lowest free id.
    answers.push(add_answer(kernel, 0, "192.0.2.5").await);
    for n in 6..=11 {
        answers.push(add_answer(kernel, n, &format!("192.0.2.{n}")).await);
    }
    // Full: no room comes before a taken id.
    answers.push(add_answer(kernel, 2, "192.0.2.99").await);
    answers.push(add_answer(kernel, 99, "192.0.2.99").await);
    answers
}

#[tokio::test]
async fn the_fake_kernel_answers_adds_like_the_real_one() {
    if !skip::require_root("the_fake_kernel_answers_adds_like_the_real_one") {
        return;
    }
    let ns = NetNs::new(concat!("mptcpd-t-pl-", "fake")).unwrap();
    let _in = ns.enter().unwrap();
    let real = NetlinkPm(PmClient::connect().await.expect("mptcp_pm"));
    let real_answers = add_script(&real).await;
    let (ebusy, eexist, erange) = (libc::EBUSY, libc::EEXIST, libc::ERANGE);
    assert_eq!(
        real_answers,
        [
            Ok(1),
            Ok(2),
            Err(ebusy),
            Err(eexist),
            Err(ebusy),
            Err(eexist),
            Ok(3),
            Ok(6),
            Ok(7),
            Ok(8),
            Ok(9),
            Ok(10),
            Ok(11),
            Err(erange),
            Err(erange),
        ],
        "the kernel's answers"
    );
    let fake = mptcpd_plugin::testing::RecordingPm::new();
    assert_eq!(add_script(&fake).await, real_answers);
}

/// The user's scenario of issue 9: with the daemon running, an administrator adds an
/// endpoint without an id, and the kernel gives it the id the daemon would give next.
#[tokio::test]
async fn an_administrators_endpoint_without_an_id_costs_no_address_its_endpoint() {
    let Some((ns, _veth)) = pl_netns(
        "an_administrators_endpoint_without_an_id_costs_no_address_its_endpoint",
        "admin",
    ) else {
        return;
    };
    let _in = ns.enter().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::addr_adv(state.path(), EndpointFlags::SUBFLOW).await;
    let _a = Address::add(&ns, "pl0", "192.0.2.1/32").unwrap();
    daemon
        .until("the first endpoint", |e| has(e, "192.0.2.1"))
        .await;
    ns.ip(&["mptcp", "endpoint", "add", "198.51.100.9", "signal"])
        .expect("ip mptcp endpoint add");
    let admin = daemon
        .endpoints()
        .await
        .into_iter()
        .find(|e| e.addr == ip("198.51.100.9"))
        .expect("the administrator's endpoint");
    let more: Vec<Address> = ["192.0.2.2/32", "192.0.2.3/32", "203.0.113.4/32"]
        .iter()
        .map(|a| Address::add(&ns, "pl1", a).unwrap())
        .collect();
    let endpoints = daemon
        .until("an endpoint for every new address", |e| {
            has(e, "192.0.2.2") && has(e, "192.0.2.3") && has(e, "203.0.113.4")
        })
        .await;
    assert!(endpoints.contains(&admin), "untouched: {endpoints:?}");
    assert_eq!(endpoints.len(), 5, "{endpoints:?}");
    assert_eq!(daemon.host.shutdown().await, 4);
    let left = NetlinkPm(PmClient::connect().await.unwrap())
        .dump_endpoints()
        .await
        .unwrap();
    assert_eq!(left, [admin]);
    drop(more);
}

/// The kernel's in-kernel PM makes an implicit endpoint, with an id of its own, for a local
/// address a subflow uses without one: later adds neither collide with its id nor fail for
/// its address.
#[tokio::test]
async fn kernel_implicit_endpoints_do_not_break_later_adds() {
    if !skip::require_root("kernel_implicit_endpoints_do_not_break_later_adds") {
        return;
    }
    let cli = NetNs::new(concat!("mptcpd-t-pl-", "impl-c")).unwrap();
    let srv = NetNs::new(concat!("mptcpd-t-pl-", "impl-s")).unwrap();
    let _va = VethPair::new("c-a", &cli, "s-a", &srv).unwrap();
    let _vb = VethPair::new("c-b", &cli, "s-b", &srv).unwrap();
    let _srv_addrs = [
        Address::add(&srv, "s-a", "192.0.2.2/24").unwrap(),
        Address::add(&srv, "s-b", "198.51.100.2/24").unwrap(),
    ];
    let _initial = Address::add(&cli, "c-a", "192.0.2.1/24").unwrap();
    let second = Address::add(&cli, "c-b", "198.51.100.1/24").unwrap();
    // The server announces its second address; the client's kernel joins it from
    // 198.51.100.1, which has no endpoint (the daemon starts without `existing`).
    for command in [
        "mptcp endpoint add 198.51.100.2 signal",
        "mptcp limits set subflows 2 add_addr_accepted 2",
    ] {
        let args: Vec<&str> = command.split_whitespace().collect();
        srv.ip(&args).unwrap();
    }
    let listener = {
        let _in = srv.enter().unwrap();
        mptcp_listener(sock("0.0.0.0:5202"))
    };

    let _in = cli.enter().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::addr_adv(state.path(), EndpointFlags::SUBFLOW).await;
    let stream = mptcp_connect(sock("192.0.2.2:5202"));
    let (_accepted, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("accept")
        .expect("accept");
    send(&stream, b"hello").await;
    let implicit_of = |e: &[Endpoint]| {
        e.iter()
            .find(|x| x.flags.contains(EndpointFlags::IMPLICIT))
            .copied()
    };
    let endpoints = daemon
        .until_polled("the kernel's implicit endpoint", |e| {
            implicit_of(e).is_some()
        })
        .await;
    let implicit = implicit_of(&endpoints).unwrap();
    assert_eq!(implicit.addr, ip("198.51.100.1"), "{endpoints:?}");

    // A new address: the id the daemon would give is the implicit endpoint's.
    let _third = Address::add(&cli, "c-a", "203.0.113.1/24").unwrap();
    let endpoints = daemon
        .until("the new address's endpoint", |e| has(e, "203.0.113.1"))
        .await;
    assert!(endpoints.contains(&implicit), "{endpoints:?}");

    // The implicit endpoint's own address comes back: its endpoint becomes ours, same id.
    drop(second);
    let _second = Address::add(&cli, "c-b", "198.51.100.1/24").unwrap();
    let endpoints = daemon
        .until("the implicit endpoint taken over", |e| {
            e.iter()
                .any(|x| x.addr == ip("198.51.100.1") && x.flags == EndpointFlags::SUBFLOW)
        })
        .await;
    let taken = endpoints
        .iter()
        .find(|x| x.addr == ip("198.51.100.1"))
        .unwrap();
    assert_eq!(taken.id, implicit.id, "{endpoints:?}");
    assert_eq!(endpoints.len(), 2, "{endpoints:?}");
    drop(stream);
    assert_eq!(daemon.host.shutdown().await, 2);
}

/// The same address on two interfaces (as a VLAN and its parent share EUI-64 link-local
/// addresses): one endpoint, kept until the last interface loses the address.
#[tokio::test]
async fn addr_adv_keeps_an_address_on_two_interfaces_until_the_last_goes() {
    let Some((ns, _veth)) = pl_netns(
        "addr_adv_keeps_an_address_on_two_interfaces_until_the_last_goes",
        "twice",
    ) else {
        return;
    };
    let _in = ns.enter().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::addr_adv(state.path(), EndpointFlags::SUBFLOW).await;
    let shared = "192.0.2.7";
    let on_pl0 = Address::add(&ns, "pl0", "192.0.2.7/32").unwrap();
    let endpoints = daemon.until("the endpoint", |e| has(e, shared)).await;
    let first = endpoints[0];
    assert_eq!(first.if_idx, Some(ifindex(&ns, "pl0")));
    // Events are handled in order: once a later address has its endpoint, the earlier
    // events were handled too.
    let on_pl1 = Address::add(&ns, "pl1", "192.0.2.7/32").unwrap();
    let _marker = Address::add(&ns, "pl1", "198.51.100.1/32").unwrap();
    let endpoints = daemon.until("a marker", |e| has(e, "198.51.100.1")).await;
    assert!(endpoints.contains(&first), "no flap: {endpoints:?}");

    drop(on_pl0);
    let _marker = Address::add(&ns, "pl0", "198.51.100.2/32").unwrap();
    let endpoints = daemon.until("a marker", |e| has(e, "198.51.100.2")).await;
    let kept: Vec<&Endpoint> = endpoints.iter().filter(|e| e.addr == ip(shared)).collect();
    assert_eq!(kept.len(), 1, "the endpoint stays: {endpoints:?}");
    assert_eq!(
        kept[0].if_idx,
        Some(ifindex(&ns, "pl1")),
        "bound to the interface that still has the address"
    );

    drop(on_pl1);
    daemon
        .until("the endpoint gone with the last instance", |e| {
            !has(e, shared)
        })
        .await;
    assert_eq!(daemon.host.shutdown().await, 2);
}
