//! The `mptcp_pm` layer's throughput: events decoded by [`EventStream`] under a connection
//! storm between two namespaces (beside `ip mptcp monitor` on the same storm), and endpoint
//! dump round trips of [`PmClient::dump_addrs`] (beside `ip mptcp endpoint show`).

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mptcp_pm::{Endpoint, EndpointFlags, Event, EventItem, EventStream, Limits, PmClient};
use mptcpd_tests::net::{
    netns::NetNs,
    two_hosts::{CLIENT, IpVersion, SERVER, TwoHosts},
};
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::{
    monitor::{Monitor, Printed},
    report::{self, Row, table},
    storm::StormServer,
};

/// Dump round trips per round.
const DUMPS: u32 = 2000;
/// `ip mptcp endpoint show` runs per round.
const IP_SHOWS: u32 = 100;
/// The in-kernel PM's endpoint limit: the dumps list this many.
const ENDPOINTS: u8 = 8;
/// Quiet time after which a storm's events are taken as complete (some were lost).
const IDLE: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Connections per storm.
    pub(crate) connections: usize,
    /// Repetitions of each measurement; the median is reported.
    pub(crate) rounds: usize,
}

/// The results.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The table, for people.
    pub(crate) table: String,
    /// Everything, as JSON.
    pub(crate) json: String,
}

/// Runs every measurement (root).
pub(crate) fn run(config: Config) -> anyhow::Result<Outcome> {
    if config.connections == 0 || config.rounds == 0 {
        bail!("--connections and --rounds must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let storms = storm_rounds(&rt, config)?;
    let dumps = dump_rounds(&rt, config.rounds)?;

    let live = |f: fn(&StormRound) -> f64| median(storms.iter().map(f).collect());
    let total = |f: fn(&StormRound) -> u64| count(storms.iter().map(f).sum());
    let rows = vec![
        Row {
            name: "events decoded, all storms".to_owned(),
            unit: "events",
            ours: total(|s| s.live.events),
            peer: Some((
                "lines printed by ip mptcp monitor (same storms)".to_owned(),
                total(|s| s.monitor.total),
            )),
        },
        Row {
            name: "overruns, all storms".to_owned(),
            unit: "overruns",
            ours: total(|s| s.live.overruns + s.backlog.overruns),
            peer: None,
        },
        Row {
            name: "events/s during the storm, first to last".to_owned(),
            unit: "1/s",
            ours: live(|s| s.live.rate()),
            peer: Some((
                "ip mptcp monitor lines/s (same storm)".to_owned(),
                live(|s| rate(s.monitor.total, s.monitor.first, s.monitor.last)),
            )),
        },
        Row {
            name: "events/s draining a storm's backlog".to_owned(),
            unit: "1/s",
            ours: live(|s| s.backlog.rate()),
            peer: None,
        },
        Row {
            name: "endpoint dump round trips/s, 8 endpoints".to_owned(),
            unit: "1/s",
            ours: median(dumps.iter().map(|d| d.ours).collect()),
            peer: Some((
                "ip mptcp endpoint show runs/s (process spawn included)".to_owned(),
                median(dumps.iter().map(|d| d.ip).collect()),
            )),
        },
    ];
    let json = json(config, &rows, &storms)?;
    Ok(Outcome {
        table: table(&rows),
        json,
    })
}

/// What one storm gave.
#[derive(Debug)]
struct StormRound {
    /// Read while the storm ran.
    live: Tally,
    /// Read after the storm, from a stream that was not read during it.
    backlog: Tally,
    /// The peer, on the live storm.
    monitor: Printed,
}

/// Events read from a stream.
#[derive(Debug, Default)]
struct Tally {
    events: u64,
    by_kind: BTreeMap<&'static str, u64>,
    overruns: u64,
    malformed: u64,
    /// When counting started (for the backlog: when draining started).
    start: Option<Instant>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Tally {
    fn add(&mut self, item: &EventItem) {
        let now = Instant::now();
        match item {
            EventItem::Event(event) => {
                self.events += 1;
                *self.by_kind.entry(kind(event)).or_default() += 1;
                self.first.get_or_insert(now);
                self.last = Some(now);
            }
            EventItem::Overrun => self.overruns += 1,
            EventItem::Malformed(_) => self.malformed += 1,
        }
    }

    fn closed(&self) -> u64 {
        self.by_kind.get("CLOSED").copied().unwrap_or(0)
    }

    /// Events per second from the start (or the first event) to the last.
    fn rate(&self) -> f64 {
        rate(self.events, self.start.or(self.first), self.last)
    }
}

/// The storm's two hosts: limits for one extra subflow per connection, and the client's
/// `subflow` endpoint on path 2 (more events, as a path manager sees them).
pub(crate) fn storm_hosts(rt: &Runtime, prefix: &str) -> anyhow::Result<TwoHosts> {
    let hosts = TwoHosts::new(prefix)?;
    let extra = Endpoint::new(IpVersion::V4.addr(2, CLIENT), EndpointFlags::SUBFLOW).with_id(1);
    let limits = Limits {
        add_addr_accepted: 0,
        subflows: 1,
    };
    for (ns, endpoint) in [(&hosts.client, Some(extra)), (&hosts.server, None)] {
        let _in = ns.enter()?;
        rt.block_on(async {
            let pm = PmClient::connect().await?;
            pm.set_limits(limits).await?;
            if let Some(endpoint) = endpoint {
                pm.add_addr(&endpoint).await?;
            }
            anyhow::Ok(())
        })?;
    }
    Ok(hosts)
}

fn storm_rounds(rt: &Runtime, config: Config) -> anyhow::Result<Vec<StormRound>> {
    let hosts = storm_hosts(rt, "mptcpd-bench-storm")?;
    let server = StormServer::new(&hosts, SocketAddr::new(IpVersion::V4.addr(1, SERVER), 5201))?;
    let monitor = Monitor::start(&hosts.client, SocketAddr::from(([127, 0, 0, 1], 5999)))?;
    // A first storm that is not counted: caches and neighbours warm up.
    server.storm(&hosts, config.connections.min(50))?;
    std::thread::sleep(Duration::from_millis(200));

    let storms = Storms {
        rt,
        hosts: &hosts,
        server: &server,
        monitor: &monitor,
        connections: config.connections,
    };
    let mut rounds = Vec::new();
    for round in 1..=config.rounds {
        monitor.clear();
        let live = storms.live()?;
        let monitor_printed = monitor.printed();
        let backlog = storms.backlog()?;
        eprintln!(
            "bench: storm {round}/{}: {} events live ({} overruns), monitor {} lines, \
             {} events from the backlog ({} overruns)",
            config.rounds,
            live.events,
            live.overruns,
            monitor_printed.total,
            backlog.events,
            backlog.overruns
        );
        rounds.push(StormRound {
            live,
            backlog,
            monitor: monitor_printed,
        });
    }
    Ok(rounds)
}

/// What a storm runs on, and its size.
struct Storms<'a> {
    rt: &'a Runtime,
    hosts: &'a TwoHosts,
    server: &'a StormServer,
    monitor: &'a Monitor,
    connections: usize,
}

impl Storms<'_> {
    /// Reads events while the storm runs, until every connection's CLOSED came to both the
    /// stream and the monitor, or nothing came for [`IDLE`].
    fn live(&self) -> anyhow::Result<Tally> {
        let (mut events, want) = self.subscribe()?;
        let done = AtomicBool::new(false);
        let mut tally = Tally::default();
        std::thread::scope(|scope| {
            let storm = scope.spawn(|| {
                let result = self.server.storm(self.hosts, self.connections);
                done.store(true, Ordering::Relaxed);
                result
            });
            self.rt.block_on(async {
                let mut progress = Instant::now();
                loop {
                    match tokio::time::timeout(Duration::from_millis(50), events.recv()).await {
                        Ok(item) => {
                            tally.add(&item?);
                            progress = Instant::now();
                        }
                        Err(_elapsed) => {}
                    }
                    let printed = self.monitor.printed();
                    if tally.closed() >= want && printed.closed() >= want {
                        break;
                    }
                    let quiet = progress.max(printed.last.unwrap_or(progress));
                    if done.load(Ordering::Relaxed) && quiet.elapsed() > IDLE {
                        break;
                    }
                }
                anyhow::Ok(())
            })?;
            storm.join().expect("storm thread")
        })?;
        Ok(tally)
    }

    /// Runs a storm without reading, waits until the monitor printed its last CLOSED (so the
    /// kernel has queued every event), then times the drain.
    fn backlog(&self) -> anyhow::Result<Tally> {
        let (mut events, want) = self.subscribe()?;
        self.monitor.clear();
        self.server.storm(self.hosts, self.connections)?;
        let deadline = Instant::now() + IDLE;
        while self.monitor.printed().closed() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut tally = Tally {
            start: Some(Instant::now()),
            ..Tally::default()
        };
        self.rt.block_on(async {
            while tally.closed() < want {
                match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
                    Ok(item) => tally.add(&item?),
                    Err(_elapsed) => break,
                }
            }
            anyhow::Ok(())
        })?;
        Ok(tally)
    }

    /// An event stream in the client's namespace, and how many connections it must see close.
    fn subscribe(&self) -> anyhow::Result<(EventStream, u64)> {
        let _in = self.hosts.client.enter()?;
        let events = self
            .rt
            .block_on(async { anyhow::Ok(PmClient::connect().await?.subscribe()?) })?;
        Ok((events, u64::try_from(self.connections)?))
    }
}

/// Dump round trips per second, ours and `ip`'s.
#[derive(Debug)]
struct DumpRound {
    ours: f64,
    ip: f64,
}

fn dump_rounds(rt: &Runtime, rounds: usize) -> anyhow::Result<Vec<DumpRound>> {
    let ns = NetNs::new("mptcpd-bench-dump")?;
    let _in = ns.enter()?;
    let pm = rt.block_on(async {
        let pm = PmClient::connect().await?;
        for id in 1..=ENDPOINTS {
            let addr = IpAddr::from([192, 0, 2, id]);
            pm.add_addr(&Endpoint::new(addr, EndpointFlags::SIGNAL).with_id(id))
                .await?;
        }
        anyhow::Ok(pm)
    })?;
    let mut results = Vec::new();
    for round in 1..=rounds {
        let started = Instant::now();
        rt.block_on(async {
            for _ in 0..DUMPS {
                let listed = pm.dump_addrs().await?.len();
                if listed != usize::from(ENDPOINTS) {
                    bail!("the dump listed {listed} endpoints");
                }
            }
            anyhow::Ok(())
        })?;
        let ours = f64::from(DUMPS) / started.elapsed().as_secs_f64();
        let started = Instant::now();
        for _ in 0..IP_SHOWS {
            let out = ns
                .command("ip")?
                .args(["mptcp", "endpoint", "show"])
                .output()
                .context("ip mptcp endpoint show")?;
            let listed = String::from_utf8_lossy(&out.stdout).lines().count();
            if !out.status.success() || listed != usize::from(ENDPOINTS) {
                bail!("ip mptcp endpoint show: {}, {listed} lines", out.status);
            }
        }
        let ip = f64::from(IP_SHOWS) / started.elapsed().as_secs_f64();
        eprintln!("bench: dumps {round}/{rounds}: {ours:.0}/s, ip {ip:.0}/s");
        results.push(DumpRound { ours, ip });
    }
    Ok(results)
}

/// The name `ip mptcp monitor` prints for the event.
const fn kind(event: &Event) -> &'static str {
    match event {
        Event::Created(_) => "CREATED",
        Event::Established(_) => "ESTABLISHED",
        Event::Closed { .. } => "CLOSED",
        Event::Announced(_) => "ANNOUNCED",
        Event::Removed { .. } => "REMOVED",
        Event::SubflowEstablished(_) => "SF_ESTABLISHED",
        Event::SubflowClosed(_) => "SF_CLOSED",
        Event::SubflowPriority(_) => "SF_PRIO",
        Event::ListenerCreated(_) => "LISTENER_CREATED",
        Event::ListenerClosed(_) => "LISTENER_CLOSED",
        Event::Other(_) => "OTHER",
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "event counts stay far below 2^52"
)]
pub(crate) fn count(n: u64) -> f64 {
    n as f64
}

pub(crate) fn rate(n: u64, first: Option<Instant>, last: Option<Instant>) -> f64 {
    match (first, last) {
        (Some(first), Some(last)) if last > first => count(n) / (last - first).as_secs_f64(),
        _ => f64::NAN,
    }
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

/// `netlink.json`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    benchmark: &'static str,
    kernel: &'a str,
    connections: usize,
    rounds: usize,
    dumps_per_round: u32,
    ip_shows_per_round: u32,
    rows: &'a [Row],
    storms: Vec<StormReport<'a>>,
}

/// One storm: ours live, the peer on the same storm, ours draining a backlog.
#[derive(Debug, Serialize)]
struct StormReport<'a> {
    live: StreamReport<'a>,
    monitor: MonitorReport<'a>,
    backlog: BacklogReport,
}

#[derive(Debug, Serialize)]
struct StreamReport<'a> {
    events: u64,
    overruns: u64,
    malformed: u64,
    events_per_s: f64,
    by_kind: &'a BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize)]
struct MonitorReport<'a> {
    lines: u64,
    lines_per_s: f64,
    by_kind: &'a BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
struct BacklogReport {
    events: u64,
    overruns: u64,
    events_per_s: f64,
}

impl StormRound {
    fn report(&self) -> StormReport<'_> {
        let Self {
            live,
            backlog,
            monitor,
        } = self;
        StormReport {
            live: StreamReport {
                events: live.events,
                overruns: live.overruns,
                malformed: live.malformed,
                events_per_s: live.rate(),
                by_kind: &live.by_kind,
            },
            monitor: MonitorReport {
                lines: monitor.total,
                lines_per_s: rate(monitor.total, monitor.first, monitor.last),
                by_kind: &monitor.by_kind,
            },
            backlog: BacklogReport {
                events: backlog.events,
                overruns: backlog.overruns,
                events_per_s: backlog.rate(),
            },
        }
    }
}

fn json(config: Config, rows: &[Row], storms: &[StormRound]) -> anyhow::Result<String> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    report::json(&Report {
        benchmark: "netlink",
        kernel: kernel.trim(),
        connections: config.connections,
        rounds: config.rounds,
        dumps_per_round: DUMPS,
        ip_shows_per_round: IP_SHOWS,
        rows,
        storms: storms.iter().map(StormRound::report).collect(),
    })
}
