//! The userspace path manager at scale: between the two namespaces of [`TwoHosts`], N MPTCP
//! connections opened as fast as a client can, each held until its second subflow is
//! established, then closed. Three subjects, each in namespaces of its own, their runs
//! interleaved so that the machine's noise falls on all alike:
//!
//! - the in-kernel path manager (a `subflow,fullmesh` endpoint on the client's path 2): the
//!   reference, with no daemon competing for the CPU;
//! - our daemon with `mesh` under the userspace path manager (`net.mptcp.pm_type=1`);
//! - the C mptcpd with `sspi` under the userspace path manager: it opens no subflow (its
//!   issue #235), so its connections are held until ESTABLISHED; what it announces is counted
//!   by a listener on the server.
//!
//! Timestamps come from one `mptcp_pm` event listener in each client namespace
//! ([`listener`]): ESTABLISHED to the first `SUB_ESTABLISHED` of the same token.

mod listener;
mod report;
mod traffic;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tempfile::NamedTempFile;

use mptcpd_tests::{
    bins,
    daemon::{
        c_peer::{CPeer, SSPI_READY_LINE},
        process::{Daemon, LIVENESS, Memory},
    },
    interrupt,
    net::{
        sysctl,
        two_hosts::{CLIENT, IpVersion, SERVER, TwoHosts},
    },
};

use crate::dbus::cpu_ms;
use listener::{Heard, Listener, Until};
use traffic::ClientRun;

/// The server's port.
const PORT: u16 = 5201;
/// Connections of the warm-up run (not counted): caches, neighbours, the daemon's first
/// allocations.
const WARM_UP: usize = 200;
/// How often the daemon's memory is sampled during a run.
const MEMORY_EVERY: Duration = Duration::from_millis(100);
/// The notify flags both daemons get: the addresses present at start count.
const NOTIFY_FLAGS: &str = "existing,skip_loopback,skip_link_local";

/// The command line.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Connections per run.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) connections: u64,
    /// Runs per subject (interleaved); RSS flatness needs two.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub(crate) runs: u64,
    /// Where to write the JSON results.
    #[arg(long)]
    pub(crate) json: Option<std::path::PathBuf>,
}

/// What to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Connections per run.
    pub(crate) connections: usize,
    /// Runs per subject.
    pub(crate) runs: usize,
}

/// The results.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The table, for people.
    pub(crate) table: String,
    /// Everything, as JSON.
    pub(crate) json: String,
}

/// Who manages the paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kernel,
    Ours,
    C,
}

impl Kind {
    const fn name(self) -> &'static str {
        match self {
            Self::Kernel => "in-kernel PM (fullmesh endpoint)",
            Self::Ours => "mptcpd (ours), mesh",
            Self::C => "C mptcpd, sspi",
        }
    }

    const fn until(self) -> Until {
        match self {
            Self::Kernel | Self::Ours => Until::Joined,
            Self::C => Until::Established,
        }
    }
}

/// One run's figures.
#[derive(Debug)]
struct Run {
    client: ClientRun,
    /// The listener's view of the run.
    heard: Heard,
    /// `ANNOUNCED` events on the server (what the client's path manager announced).
    announced: u64,
    /// Connections the server served to the end.
    served: usize,
    server_cpu: Duration,
    /// The daemon's CPU time during the run, ms.
    daemon_cpu_ms: Option<f64>,
    /// The daemon's memory, sampled through the run.
    memory: Vec<Memory>,
    /// Lines the daemon logged during the run, and of those, overrun reports.
    log_lines: Option<usize>,
    overruns: Option<usize>,
}

/// One subject: its namespaces, daemon and runs.
struct Lab {
    kind: Kind,
    runs: Vec<Run>,
    warm_up: Option<Run>,
    // Dropped in this order: listeners and the daemon before the namespaces.
    events: Arc<Listener>,
    server_events: Listener,
    server: std::net::TcpListener,
    daemon: Option<Daemon>,
    _config: Option<NamedTempFile>,
    hosts: TwoHosts,
}

impl Lab {
    fn new(kind: Kind, c_peer: &CPeer) -> anyhow::Result<Self> {
        let suffix = match kind {
            Kind::Kernel => "k",
            Kind::Ours => "o",
            Kind::C => "c",
        };
        let hosts = TwoHosts::new(&format!("mptcpd-bench-pms-{suffix}"))?;
        for ns in [&hosts.client, &hosts.server] {
            TwoHosts::set_limits(ns)?;
        }
        let client_v4 = IpVersion::V4.addr(2, CLIENT).to_string();
        let (daemon, config) = match kind {
            Kind::Kernel => {
                hosts.client.ip(&[
                    "mptcp", "endpoint", "add", &client_v4, "dev", "c2", "subflow", "fullmesh",
                ])?;
                (None, None)
            }
            Kind::Ours => {
                sysctl::set_in(&hosts.client, "net.mptcp.pm_type", "1")?;
                // An empty configuration file of its own: /etc/mptcpd/mptcpd.conf must not count.
                let config = tempfile::Builder::new()
                    .prefix("mptcpd-bench-")
                    .suffix(".conf")
                    .tempfile()?;
                let mut cmd = hosts.client.command(bins::path("mptcpd")?)?;
                cmd.args(["--log", "stderr", "--config"])
                    .arg(config.path())
                    .args(["--path-manager", "mesh", "--load-plugins", "mesh"])
                    .args(["--notify-flags", NOTIFY_FLAGS])
                    .arg(format!("--bpf-pin-dir=/sys/fs/bpf/{}", hosts.client.name()));
                (Some(Daemon::start(cmd)?), Some(config))
            }
            Kind::C => {
                sysctl::set_in(&hosts.client, "net.mptcp.pm_type", "1")?;
                let cmd = c_peer.command_for(&hosts.client, "sspi", None, Some(NOTIFY_FLAGS))?;
                (Some(Daemon::start_logged(cmd, SSPI_READY_LINE)?), None)
            }
        };
        let server = traffic::listen(
            &hosts.server,
            SocketAddr::new(IpVersion::V4.addr(1, SERVER), PORT),
        )?;
        Ok(Self {
            kind,
            runs: Vec::new(),
            warm_up: None,
            events: Arc::new(Listener::start(&hosts.client)?),
            server_events: Listener::start(&hosts.server)?,
            server,
            daemon,
            _config: config,
            hosts,
        })
    }

    /// One run of `connections` connections.
    fn run(&self, connections: usize) -> anyhow::Result<Run> {
        let to = SocketAddr::new(IpVersion::V4.addr(1, SERVER), PORT);
        let daemon = self.daemon.as_ref();
        let pid = daemon.map(Daemon::pid);
        let cpu_before = pid.map(cpu_ms).transpose()?;
        let log_before = daemon.map(|d| d.log().lines().count());
        let clients_done = AtomicBool::new(false);
        let sampling = AtomicBool::new(true);
        let (client, (served, server_cpu), memory) = std::thread::scope(|scope| {
            let sampler = scope.spawn(|| sample_memory(daemon, &sampling));
            let server = scope.spawn(|| traffic::serve(&self.server, connections, &clients_done));
            let client = scope
                .spawn(|| -> anyhow::Result<ClientRun> {
                    let _in = self.hosts.client.enter()?;
                    traffic::clients(to, connections, &self.events, self.kind.until())
                })
                .join();
            clients_done.store(true, Ordering::Relaxed);
            let server = server.join();
            sampling.store(false, Ordering::Relaxed);
            let memory = sampler.join();
            let joined = |what: &str| anyhow::anyhow!("the {what} thread panicked");
            anyhow::Ok((
                client.map_err(|_| joined("client"))??,
                server.map_err(|_| joined("server"))??,
                memory.map_err(|_| joined("memory"))??,
            ))
        })?;
        self.until_closed()?;
        let daemon_cpu_ms = match (pid, cpu_before) {
            (Some(pid), Some(before)) => Some(cpu_ms(pid)? - before),
            _ => None,
        };
        let (log_lines, overruns) = match (daemon, log_before) {
            (Some(d), Some(before)) => {
                let log = d.log();
                let new: Vec<&str> = log.lines().skip(before).collect();
                // Ours logs each overrun; the C daemon does not notice them.
                let overruns = (self.kind == Kind::Ours)
                    .then(|| new.iter().filter(|l| l.contains("overrun")).count());
                // What the daemon said about the connections it left without their subflow.
                if self.kind.until() == Until::Joined && client.missed > 0 {
                    for line in new.iter().filter(|l| !l.contains(" INFO ")).take(10) {
                        eprintln!("bench: storm: {}: {line}", self.kind.name());
                    }
                }
                (Some(new.len()), overruns)
            }
            _ => (None, None),
        };
        Ok(Run {
            client,
            heard: self.events.take(),
            announced: self.server_events.take().count("ANNOUNCED"),
            served,
            server_cpu,
            daemon_cpu_ms,
            memory,
            log_lines,
            overruns,
        })
    }

    /// Waits until the listener heard every connection of the run close, so that the
    /// daemon's CPU time includes their closing.
    fn until_closed(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + LIVENESS;
        loop {
            let (closed, all) = self.events.closed();
            if closed == all {
                return Ok(());
            }
            interrupt::check()?;
            if Instant::now() > deadline {
                bail!("{}: {closed} of {all} connections closed", self.kind.name());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        let name = self.kind.name();
        match &mut self.daemon {
            Some(daemon) => daemon
                .check_running()
                .with_context(|| format!("{name} is no longer running")),
            None => Ok(()),
        }
    }
}

/// Samples the daemon's memory every [`MEMORY_EVERY`] while `sampling`, and once more at the
/// end.
fn sample_memory(daemon: Option<&Daemon>, sampling: &AtomicBool) -> anyhow::Result<Vec<Memory>> {
    let Some(daemon) = daemon else {
        return Ok(Vec::new());
    };
    let mut samples = Vec::new();
    while sampling.load(Ordering::Relaxed) {
        samples.push(daemon.memory()?);
        std::thread::sleep(MEMORY_EVERY);
    }
    samples.push(daemon.memory()?);
    Ok(samples)
}

/// Runs the benchmark (root).
pub(crate) fn run(config: Config) -> anyhow::Result<Outcome> {
    if config.connections == 0 || config.runs == 0 {
        bail!("--connections and --runs must be at least 1");
    }
    interrupt::install()?;
    let c_peer = CPeer::get()?;
    let mut labs = Vec::new();
    for kind in [Kind::Kernel, Kind::Ours, Kind::C] {
        labs.push(Lab::new(kind, &c_peer)?);
    }
    for lab in &mut labs {
        lab.warm_up = Some(lab.run(WARM_UP.min(config.connections))?);
    }
    let started = Instant::now();
    for run in 1..=config.runs {
        for lab in &mut labs {
            let figures = lab.run(config.connections)?;
            eprintln!(
                "bench: storm: run {run}/{}: {}: {} connections in {:.2?}, {} joins, {} missed",
                config.runs,
                lab.kind.name(),
                config.connections,
                figures.client.wall,
                figures.heard.count("SUB_ESTABLISHED"),
                figures.client.missed,
            );
            lab.runs.push(figures);
            lab.check_alive()?;
        }
    }
    eprintln!("bench: storm: {:.0?}", started.elapsed());
    report::outcome(&labs, config, c_peer.version())
}
