//! The daemon's event signals under load: a connection storm between two namespaces with the
//! daemon in the client's, on a private system-like bus (`SystemLikeBus`: Debian's system-bus
//! policy, and `dbus-daemon`'s built-in limits, which Debian's `system.conf` keeps), with 0, 1
//! and 10 subscribers to the manager's signals. Each subscriber's MPTCP event signals are
//! counted against an independent `mptcp_pm` listener in the same namespace; the daemon's CPU
//! time (`/proc/PID/stat`) over the storm, on the bus beside the same daemon without a bus.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use mptcp_pm::{Event, EventItem, PmClient};
use mptcpd_common::dbus::{BUS_NAME, MANAGER_INTERFACE, MANAGER_PATH, signal};
use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    dbus::SystemLikeBus,
    net::two_hosts::{IpVersion, SERVER, TwoHosts},
};
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::{
    netlink::{count, median, rate, storm_hosts},
    report::{self, Row, table},
    storm::StormServer,
};

/// Quiet time after which a storm's events are taken as complete (some were lost).
const IDLE: Duration = Duration::from_secs(3);
/// Quiet time (no CPU used) after which the daemon has handled a storm.
const SETTLED: Duration = Duration::from_millis(300);
/// The subscriber counts measured on the bus.
const SUBSCRIBERS: [usize; 3] = [0, 1, 10];
/// The signals that stand for MPTCP events.
const MPTCP_SIGNALS: [&str; 10] = [
    signal::CONNECTION_CREATED,
    signal::CONNECTION_ESTABLISHED,
    signal::CONNECTION_CLOSED,
    signal::ADDRESS_ANNOUNCED,
    signal::ADDRESS_REMOVED,
    signal::SUBFLOW_ESTABLISHED,
    signal::SUBFLOW_CLOSED,
    signal::SUBFLOW_PRIORITY,
    signal::LISTENER_CREATED,
    signal::LISTENER_CLOSED,
];

/// What to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Connections per storm.
    pub(crate) connections: usize,
    /// Storms per subscriber count; the median is reported.
    pub(crate) rounds: usize,
}

/// The results.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) table: String,
    pub(crate) json: String,
}

/// One storm.
#[derive(Debug, Clone, Serialize)]
struct Storm {
    /// The daemon was on the bus (without: the baseline).
    on_bus: bool,
    subscribers: usize,
    /// Events the independent `mptcp_pm` listener read.
    kernel_events: u64,
    /// MPTCP event signals, the fewest any subscriber got (0 without subscribers).
    signals_min: u64,
    /// The most any subscriber got.
    signals_max: u64,
    /// Signals per second at the slowest subscriber, first to last.
    signals_per_s: f64,
    /// The daemon's CPU time over the storm, ms.
    daemon_cpu_ms: f64,
}

pub(crate) fn run(config: Config) -> anyhow::Result<Outcome> {
    if config.connections == 0 || config.rounds == 0 {
        bail!("--connections and --rounds must be at least 1");
    }
    let Some(bus) = SystemLikeBus::start()? else {
        bail!("no dbus-daemon here (cargo xtask setup installs it)");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let hosts = storm_hosts(&rt, "mptcpd-bench-dbus")?;
    let server = StormServer::new(&hosts, SocketAddr::new(IpVersion::V4.addr(1, SERVER), 5202))?;
    let mut storms = Vec::new();
    let mut dropped = 0;
    // The daemon without a bus first: the baseline.
    for (on_bus, counts) in [(false, &[0][..]), (true, &SUBSCRIBERS[..])] {
        let daemon = start_daemon(&hosts, on_bus.then_some(&bus))?;
        // Not counted: caches and neighbours warm up.
        server.storm(&hosts, config.connections.min(50))?;
        settle(daemon.pid())?;
        let bench = Bench {
            rt: &rt,
            hosts: &hosts,
            server: &server,
            bus: &bus,
            daemon: &daemon,
            connections: config.connections,
        };
        for &subscribers in counts {
            for round in 1..=config.rounds {
                let storm = bench.storm(on_bus, subscribers)?;
                eprintln!(
                    "bench: {}, {subscribers} subscribers, storm {round}/{}: {} kernel events, \
                     signals {}..{} per subscriber, {:.0}/s, daemon CPU {:.0} ms",
                    if on_bus { "on the bus" } else { "no bus" },
                    config.rounds,
                    storm.kernel_events,
                    storm.signals_min,
                    storm.signals_max,
                    storm.signals_per_s,
                    storm.daemon_cpu_ms
                );
                storms.push(storm);
            }
        }
        let log = daemon.stop()?.1;
        dropped += log
            .lines()
            .filter(|l| l.contains("event signals dropped"))
            .count();
    }
    outcome(config, &storms, dropped)
}

/// Our daemon in the client's namespace, on `bus` or with no bus; once it said so.
fn start_daemon(hosts: &TwoHosts, bus: Option<&SystemLikeBus>) -> anyhow::Result<Daemon> {
    let pins = format!("/sys/fs/bpf/mptcpd-bench-dbus-{}", std::process::id());
    let mut cmd = hosts.client.command(bins::path("mptcpd")?)?;
    cmd.args(["--log", "stderr", "--notify-flags", "skip_loopback"])
        .args(["--bpf-pin-dir", &pins])
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            bus.map_or(
                "unix:path=/nonexistent/mptcpd-bench",
                SystemLikeBus::address,
            ),
        );
    let mut daemon = Daemon::start(cmd)?;
    daemon.wait_for_log(if bus.is_some() {
        "D-Bus: serving"
    } else {
        "running without the D-Bus interface"
    })?;
    Ok(daemon)
}

/// Waits until the daemon used no CPU for [`SETTLED`] (it handled everything queued): at most
/// [`IDLE`] more.
fn settle(pid: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + IDLE;
    let mut last = cpu_ticks(pid)?;
    while Instant::now() < deadline {
        std::thread::sleep(SETTLED);
        let now = cpu_ticks(pid)?;
        if now == last {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}

/// The rows: per subscriber count, signals against kernel events, signals/s, added CPU.
fn outcome(config: Config, storms: &[Storm], dropped: usize) -> anyhow::Result<Outcome> {
    let median_of = |n: usize, f: fn(&Storm) -> f64| {
        median(
            storms
                .iter()
                .filter(|s| s.on_bus && s.subscribers == n)
                .map(f)
                .collect(),
        )
    };
    let baseline = median(
        storms
            .iter()
            .filter(|s| !s.on_bus)
            .map(|s| s.daemon_cpu_ms)
            .collect(),
    );
    let mut rows = vec![
        Row {
            name: "daemon CPU per storm, no bus".to_owned(),
            unit: "ms",
            ours: baseline,
            peer: None,
        },
        Row {
            name: "daemon CPU per storm, on the bus, no subscriber".to_owned(),
            unit: "ms",
            ours: median_of(0, |s| s.daemon_cpu_ms),
            peer: Some(("no bus".to_owned(), baseline)),
        },
    ];
    for n in SUBSCRIBERS.into_iter().filter(|n| *n > 0) {
        rows.push(Row {
            name: format!("MPTCP event signals at the slowest of {n} subscribers, all storms"),
            unit: "signals",
            ours: storms
                .iter()
                .filter(|s| s.on_bus && s.subscribers == n)
                .map(|s| count(s.signals_min))
                .sum(),
            peer: Some((
                "events read by an independent mptcp_pm listener (same storms)".to_owned(),
                storms
                    .iter()
                    .filter(|s| s.on_bus && s.subscribers == n)
                    .map(|s| count(s.kernel_events))
                    .sum(),
            )),
        });
        rows.push(Row {
            name: format!("signals/s at the slowest of {n} subscribers"),
            unit: "1/s",
            ours: median_of(n, |s| s.signals_per_s),
            peer: None,
        });
        rows.push(Row {
            name: format!("daemon CPU per storm, {n} subscribers"),
            unit: "ms",
            ours: median_of(n, |s| s.daemon_cpu_ms),
            peer: Some(("no bus".to_owned(), baseline)),
        });
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let json = report::json(&Report {
        benchmark: "dbus",
        kernel: kernel.trim(),
        connections: config.connections,
        rounds: config.rounds,
        drop_warnings: dropped,
        rows: &rows,
        storms,
    })?;
    Ok(Outcome {
        table: table(&rows),
        json,
    })
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    benchmark: &'static str,
    kernel: &'a str,
    connections: usize,
    rounds: usize,
    /// Lines `D-Bus: N event signals dropped` in the daemon's log.
    drop_warnings: usize,
    rows: &'a [Row],
    storms: &'a [Storm],
}

struct Bench<'a> {
    rt: &'a Runtime,
    hosts: &'a TwoHosts,
    server: &'a StormServer,
    bus: &'a SystemLikeBus,
    daemon: &'a Daemon,
    connections: usize,
}

/// One subscriber's count.
#[derive(Debug, Default)]
struct Heard {
    signals: u64,
    closed: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Bench<'_> {
    fn storm(&self, on_bus: bool, subscribers: usize) -> anyhow::Result<Storm> {
        let want = u64::try_from(self.connections)?;
        let mut events = {
            let _in = self.hosts.client.enter()?;
            self.rt
                .block_on(async { anyhow::Ok(PmClient::connect().await?.subscribe()?) })?
        };
        let heard: Vec<Arc<Mutex<Heard>>> = (0..subscribers)
            .map(|_| Arc::new(Mutex::new(Heard::default())))
            .collect();
        let listeners = self.rt.block_on(async {
            let mut listeners = Vec::new();
            for heard in &heard {
                listeners.push(subscribe(self.bus.address(), Arc::clone(heard)).await?);
            }
            anyhow::Ok(listeners)
        })?;
        let cpu_before = cpu_ms(self.daemon.pid())?;
        let done = AtomicBool::new(false);
        let kernel_events = AtomicU64::new(0);
        std::thread::scope(|scope| {
            let storm = scope.spawn(|| {
                let result = self.server.storm(self.hosts, self.connections);
                done.store(true, Ordering::Relaxed);
                result
            });
            self.rt.block_on(async {
                let mut closed = 0;
                let mut progress = Instant::now();
                loop {
                    if let Ok(item) =
                        tokio::time::timeout(Duration::from_millis(50), events.recv()).await
                    {
                        if let EventItem::Event(event) = item? {
                            if !matches!(event, Event::Other(_)) {
                                kernel_events.fetch_add(1, Ordering::Relaxed);
                            }
                            if matches!(event, Event::Closed { .. }) {
                                closed += 1;
                            }
                        }
                        progress = Instant::now();
                    }
                    let all_heard = heard.iter().all(|h| lock(h).closed >= want);
                    if closed >= want && all_heard {
                        break;
                    }
                    let last = heard.iter().filter_map(|h| lock(h).last).max();
                    let quiet = progress.max(last.unwrap_or(progress));
                    if done.load(Ordering::Relaxed) && quiet.elapsed() > IDLE {
                        break;
                    }
                }
                anyhow::Ok(())
            })?;
            storm.join().expect("storm thread")
        })?;
        settle(self.daemon.pid())?;
        let daemon_cpu_ms = cpu_ms(self.daemon.pid())? - cpu_before;
        for listener in listeners {
            listener.abort();
        }
        let counts: Vec<u64> = heard.iter().map(|h| lock(h).signals).collect();
        let slowest = heard.iter().min_by_key(|h| lock(h).signals);
        let signals_per_s = slowest.map_or(f64::NAN, |h| {
            let h = lock(h);
            rate(h.signals, h.first, h.last)
        });
        Ok(Storm {
            on_bus,
            subscribers,
            kernel_events: kernel_events.load(Ordering::Relaxed),
            signals_min: counts.iter().copied().min().unwrap_or(0),
            signals_max: counts.iter().copied().max().unwrap_or(0),
            signals_per_s,
            daemon_cpu_ms,
        })
    }
}

fn lock(heard: &Mutex<Heard>) -> std::sync::MutexGuard<'_, Heard> {
    heard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A client subscribed to the manager's signals, counting the MPTCP ones into `heard`.
async fn subscribe(
    address: &str,
    heard: Arc<Mutex<Heard>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let conn = zbus::connection::Builder::address(address)?.build().await?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(BUS_NAME)?
        .path(MANAGER_PATH)?
        .interface(MANAGER_INTERFACE)?
        .build();
    let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None).await?;
    Ok(tokio::spawn(async move {
        let _conn = conn;
        while let Some(Ok(message)) = stream.next().await {
            let header = message.header();
            let Some(member) = header.member() else {
                continue;
            };
            if !MPTCP_SIGNALS.contains(&member.as_str()) {
                continue;
            }
            let now = Instant::now();
            let mut h = lock(&heard);
            h.signals += 1;
            if member.as_str() == signal::CONNECTION_CLOSED {
                h.closed += 1;
            }
            h.first.get_or_insert(now);
            h.last = Some(now);
        }
    }))
}

/// The process's user and system CPU time so far, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').context("/proc/PID/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Ok(fields.get(11).context("utime")?.parse::<u64>()?
        + fields.get(12).context("stime")?.parse::<u64>()?)
}

/// The process's user and system CPU time so far, ms.
pub(crate) fn cpu_ms(pid: u32) -> anyhow::Result<f64> {
    // SAFETY: sysconf only reads a configuration value.
    let per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_s = u32::try_from(per_s).context("_SC_CLK_TCK")?;
    Ok(count(cpu_ticks(pid)?) * 1000.0 / f64::from(per_s))
}
