//! One run of the failover benchmark: fresh namespaces, both paths shaped, the subject set up
//! (the kernel's endpoints by hand, our daemon with `health`, or path A alone), a bulk transfer
//! and a request/response connection from the cgroup, the scenario's fault applied on time,
//! and the records (reads, link counters, the daemon's decisions) collected.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::Receiver,
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    ebpf::cgroup::TestCgroup,
    interrupt,
    lab::{ChildGuard, PinsGuard},
    net::two_hosts::{IpVersion, SERVER, TwoHosts},
    sockets::mptcp,
};

use super::{
    Scenario, Subject,
    peer::{self, Received, Sample},
};

/// Each path's rate (tbf) and queue (tail drop; this kernel has no AQM qdisc). 50 ms: a
/// shorter queue drops so much of a starting flow (BBR's start-up, cubic's slow start) that
/// `health` judges the path lossy; a longer one inflates the RTT past its threshold.
const SHAPE: [&str; 6] = ["rate", "20mbit", "burst", "32kb", "latency", "50ms"];
/// Path B's queue in the RTT scenario: tbf's child replaced by a FIFO of about a second at
/// the path's rate (1700 full-size packets at 20 Mbit/s).
const DEEP: [&str; 3] = ["pfifo", "limit", "1700"];
const BULK_PORT: u16 = 5401;
const ECHO_PORT: u16 = 5402;
/// How often the links' counters are read.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The nftables table the faults go into (`TwoHosts::server_input_rule`'s).
const NFT_TABLE: &str = "lossy";

/// How one run is timed (from the moment both connections are ready).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Blackhole: before the fault; others: before measuring.
    pub(crate) before: Duration,
    /// Blackhole: how long path B is blackholed.
    pub(crate) outage: Duration,
    /// After the outage (blackhole) or the measured time (others).
    pub(crate) after: Duration,
}

impl Timing {
    pub(crate) fn total(self, scenario: Scenario) -> Duration {
        match scenario {
            Scenario::Blackhole => self.before + self.outage + self.after,
            Scenario::Loss | Scenario::Rtt | Scenario::Healthy => self.before + self.after,
        }
    }
}

/// The daemon's settings for the `health` subject (one server: one peer must do).
pub(crate) struct HealthSettings {
    pub(crate) hold_secs: u64,
    /// Other `health-*` keys for the daemon, `KEY=VALUE` (`rtt-percent=0`).
    pub(crate) extra: Vec<String>,
}

/// What one run recorded; times are since the run's start.
#[derive(Debug)]
pub(crate) struct Records {
    /// When both connections were ready (the timeline's zero).
    pub(crate) ready: Duration,
    /// When the fault was applied and (blackhole) lifted.
    pub(crate) fault: Option<Duration>,
    pub(crate) restored: Option<Duration>,
    /// When the run's timeline ended.
    pub(crate) end: Duration,
    pub(crate) received: Received,
    pub(crate) samples: Vec<Sample>,
    pub(crate) p99_us: f64,
    /// The daemon's path decisions (its `path ADDR STATE (was ...)` lines) and `health`'s
    /// actions, when seen.
    pub(crate) decisions: Vec<(Duration, String)>,
}

/// Runs `scenario` once with `subject`.
pub(crate) fn once(
    scenario: Scenario,
    subject: Subject,
    timing: Timing,
    health: &HealthSettings,
    tag: &str,
) -> anyhow::Result<Records> {
    let hosts = TwoHosts::new(&format!("mptcpd-b-fo{tag}"))?;
    for dev in ["c1", "c2"] {
        tc(&hosts, "add", dev, "root handle 1: tbf", &SHAPE)?;
    }
    let cgroup = TestCgroup::new(&format!("mptcpd-b-fo{tag}"))?;
    let pins = PathBuf::from(format!(
        "/sys/fs/bpf/mptcpd-bench-{}-fo{tag}",
        std::process::id()
    ));
    let _pins = PinsGuard(&pins);
    let config = tempfile::NamedTempFile::new()?;
    std::fs::write(config.path(), "[core]\n")?;
    let mut daemon = match subject {
        Subject::Kernel => {
            hosts.join_path_2()?;
            None
        }
        Subject::PathA => {
            TwoHosts::set_limits(&hosts.client)?;
            TwoHosts::set_limits(&hosts.server)?;
            None
        }
        Subject::Health => {
            TwoHosts::set_limits(&hosts.server)?;
            let mut daemon = start_daemon(&hosts, &cgroup, &pins, config.path(), health)?;
            wait_for_endpoint(&hosts, &mut daemon)?;
            Some(daemon)
        }
    };
    let extra = u8::from(subject != Subject::PathA);
    let listen = |port| {
        hosts
            .server
            .run(|| mptcp::listen(SocketAddr::new(IpVersion::V4.addr(1, SERVER), port)))
    };
    let (bulk, echo) = (listen(BULK_PORT)??, listen(ECHO_PORT)??);
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let records = std::thread::scope(|scope| -> anyhow::Result<Records> {
        // Whatever happens below, the server threads stop before the scope waits for them.
        let _stop = StopOnDrop(&stop);
        let receiving = scope.spawn(|| peer::receive(&bulk, start, &stop));
        let echoing = scope.spawn(|| peer::echo_server(&echo, &stop));
        let sampling = scope.spawn(|| {
            hosts
                .server
                .run(|| peer::sample_links(["s1", "s2"], start, SAMPLE_EVERY, &stop))
        });
        let secs = (timing.total(scenario) + Duration::from_millis(500)).as_secs_f64();
        let clients = start_clients(&hosts, &cgroup, secs, extra)?;
        let timeline = timeline(&hosts, scenario, timing, start, &mut daemon)?;
        let p99_us = finish_clients(clients)?;
        stop.store(true, Ordering::Relaxed);
        let received = join(receiving)?;
        join(echoing)?;
        let samples = join(sampling)??;
        let Timeline {
            ready,
            fault,
            restored,
            end,
            mut decisions,
        } = timeline;
        watch_decisions(&mut daemon, start, &mut decisions);
        Ok(Records {
            ready,
            fault,
            restored,
            end,
            received,
            samples,
            p99_us,
            decisions,
        })
    })?;
    if let Some(daemon) = daemon {
        let (status, log) = daemon.stop()?;
        if !status.success() {
            bail!("mptcpd exited {status}:\n{log}");
        }
    }
    Ok(records)
}

/// The bulk sender and the echo client in the cgroup, once both said `ready`.
fn start_clients(
    hosts: &TwoHosts,
    cgroup: &TestCgroup,
    secs: f64,
    extra: u8,
) -> anyhow::Result<Vec<(ChildGuard, Receiver<String>)>> {
    let mut clients = Vec::new();
    for (mode, port) in [("failover-send", BULK_PORT), ("failover-echo", ECHO_PORT)] {
        let mut cmd = hosts.client.command(std::env::current_exe()?)?;
        cmd.args([mode, "--connect", &format!("10.0.1.2:{port}")])
            .args(["--secs", &secs.to_string(), "--extra", &extra.to_string()]);
        cgroup.join_on_spawn(&mut cmd)?;
        let mut child = ChildGuard::spawn(cmd)?;
        let lines = child.lines()?;
        clients.push((child, lines));
    }
    for (_, lines) in &clients {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .context("a client did not get ready")?;
        if line != "ready" {
            bail!("a client said {line:?}");
        }
    }
    Ok(clients)
}

/// Waits for the clients' exit; the echo client's p99 (microseconds).
fn finish_clients(clients: Vec<(ChildGuard, Receiver<String>)>) -> anyhow::Result<f64> {
    let mut p99_us = f64::NAN;
    for (mut child, lines) in clients {
        let status = child.wait()?;
        let said: Vec<String> = lines.try_iter().collect();
        if !status.success() {
            bail!("a client failed ({status}): {}", said.join(" | "));
        }
        if let Some(p99) = said.iter().find_map(|l| l.split(" p99_us ").nth(1)) {
            p99_us = p99.trim().parse()?;
        }
    }
    Ok(p99_us)
}

/// When things happened (since the run's start), and the daemon's decisions meanwhile.
struct Timeline {
    ready: Duration,
    fault: Option<Duration>,
    restored: Option<Duration>,
    end: Duration,
    decisions: Vec<(Duration, String)>,
}

/// From the clients' readiness on: applies the scenario's fault (and lifts the blackhole) on
/// time, and waits until the timeline ends.
fn timeline(
    hosts: &TwoHosts,
    scenario: Scenario,
    timing: Timing,
    start: Instant,
    daemon: &mut Option<Daemon>,
) -> anyhow::Result<Timeline> {
    let ready = start.elapsed();
    let zero = start + ready;
    let mut decisions = Vec::new();
    let mut fault = None;
    let mut restored = None;
    match scenario {
        Scenario::Blackhole => {
            pace(zero + timing.before, daemon, start, &mut decisions)?;
            fault = Some(start.elapsed());
            hosts.server_input_rule("iifname \"s2\" drop")?;
            pace(
                zero + timing.before + timing.outage,
                daemon,
                start,
                &mut decisions,
            )?;
            restored = Some(start.elapsed());
            nft_delete_table(hosts)?;
        }
        Scenario::Loss => {
            fault = Some(start.elapsed());
            hosts.server_input_rule("iifname \"s2\" numgen random mod 100 < 20 drop")?;
        }
        Scenario::Rtt => {
            fault = Some(start.elapsed());
            tc(hosts, "replace", "c2", "parent 1:1", &DEEP)?;
        }
        Scenario::Healthy => {}
    }
    let end = zero + timing.total(scenario);
    pace(end, daemon, start, &mut decisions)?;
    Ok(Timeline {
        ready,
        fault,
        restored,
        end: end.saturating_duration_since(start),
        decisions,
    })
}

/// `tc qdisc VERB dev DEV WHERE ARGS` in the client's namespace (empty arguments left out).
fn tc(hosts: &TwoHosts, verb: &str, dev: &str, at: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = hosts
        .client
        .command("tc")?
        .args(["qdisc", verb, "dev", dev])
        .args(at.split_whitespace())
        .args(args.iter().filter(|a| !a.is_empty()))
        .output()?;
    if !out.status.success() {
        bail!(
            "tc qdisc {verb} dev {dev}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn nft_delete_table(hosts: &TwoHosts) -> anyhow::Result<()> {
    let status = hosts
        .server
        .command("nft")?
        .args(["delete", "table", "inet", NFT_TABLE])
        .status()?;
    if !status.success() {
        bail!("nft could not delete table inet {NFT_TABLE}");
    }
    Ok(())
}

/// Our daemon in the client's namespace: `addr_adv` adds the endpoints, `health` observes the
/// cgroup's connections.
fn start_daemon(
    hosts: &TwoHosts,
    cgroup: &TestCgroup,
    pins: &std::path::Path,
    config: &std::path::Path,
    health: &HealthSettings,
) -> anyhow::Result<Daemon> {
    let mut cmd: Command = hosts.client.command(bins::path("mptcpd")?)?;
    cmd.args(["--log", "stderr", "--config"])
        .arg(config)
        .arg("--bpf-pin-dir")
        .arg(pins)
        .arg("--observe-cgroup")
        .arg(cgroup.path())
        .args(["--notify-flags", "existing,skip_loopback,skip_link_local"])
        .args([
            "--addr-flags",
            "subflow",
            "--load-plugins",
            "addr_adv,health",
        ])
        .args(["--health-hold", &health.hold_secs.to_string()])
        // One server: every connection has the same peer.
        .args(["--health-min-peers", "1"])
        .args(health.extra.iter().map(|kv| format!("--health-{kv}")));
    let mut daemon = Daemon::start(cmd)?;
    daemon.wait_for_log("subflow telemetry attached to cgroup")?;
    Ok(daemon)
}

/// Waits until the daemon's `addr_adv` has added path B's endpoint.
fn wait_for_endpoint(hosts: &TwoHosts, daemon: &mut Daemon) -> anyhow::Result<()> {
    let b = IpVersion::V4.addr(2, 1).to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = hosts.client.ip(&["mptcp", "endpoint", "show"])?;
        if shown.lines().any(|l| l.starts_with(&format!("{b} "))) {
            return Ok(());
        }
        daemon.check_running()?;
        interrupt::check()?;
        if Instant::now() > deadline {
            bail!("mptcpd added no endpoint for {b}:\n{}", daemon.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sleeps until `until`, looking at the daemon's log and for Ctrl-C every 50 ms.
fn pace(
    until: Instant,
    daemon: &mut Option<Daemon>,
    start: Instant,
    decisions: &mut Vec<(Duration, String)>,
) -> anyhow::Result<()> {
    loop {
        watch_decisions(daemon, start, decisions);
        interrupt::check()?;
        if let Some(daemon) = daemon {
            daemon.check_running()?;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Notes the daemon's new `path ADDR STATE (was STATE)` lines, and `health`'s `path ADDR:
/// ACTION` lines (what it did: set backup, closed, re-probed), with the time they were seen.
fn watch_decisions(
    daemon: &mut Option<Daemon>,
    start: Instant,
    decisions: &mut Vec<(Duration, String)>,
) {
    let Some(daemon) = daemon else { return };
    let log = daemon.log();
    let seen = decisions.len();
    let all: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("path ") && (l.contains(" (was ") || l.contains("mptcpd_plugin_health"))
        })
        .collect();
    for line in all.into_iter().skip(seen) {
        decisions.push((start.elapsed(), line.to_owned()));
    }
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Joins a scoped thread, passing its panic on.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, anyhow::Result<T>>) -> anyhow::Result<T> {
    match handle.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
