//! The two-path lab behind `cargo xtask lab`: a client and a server namespace joined by two
//! veth pairs, mptcpd running in the client namespace, and an MPTCP transfer whose subflows
//! and bytes per subflow are printed. Everything it makes is removed on success, on failure
//! and on Ctrl-C.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

mod external;
mod telemetry;

use crate::{
    bins,
    daemon::process::Daemon,
    ebpf::cgroup::TestCgroup,
    interrupt,
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
};

/// Path A carries the initial subflow, path B the one the client's endpoint adds.
const PATH_A: (&str, &str) = ("192.0.2.1", "192.0.2.2");
const PATH_B: (&str, &str) = ("198.51.100.1", "198.51.100.2");
const PORT: u16 = 5201;

/// What the lab does.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Bytes the client sends.
    pub bytes: u64,
    /// Egress rate of each client link (tbf), so that one path alone cannot carry it all.
    pub rate: String,
    /// The userspace path manager, the join made by the external path manager example over
    /// D-Bus (a private bus) rather than by mptcpd's endpoint.
    pub external_pm: bool,
}

/// Runs the lab; everything it creates is gone when this returns, whatever the outcome.
pub fn run(config: &LabConfig) -> anyhow::Result<()> {
    interrupt::install()?;
    let pin_dir = PathBuf::from(format!("/sys/fs/bpf/mptcpd-lab-{}", std::process::id()));
    let (result, made) = {
        let mut made = Vec::new();
        let result = lab(config, &pin_dir, &mut made);
        // Every guard inside `lab` has dropped by now.
        (result, made)
    };
    let mut leftovers = Vec::new();
    for item in &made {
        if item.still_there()? {
            leftovers.push(item.to_string());
        }
    }
    if leftovers.is_empty() {
        println!("lab: removed everything it made ({})", list(&made));
    } else {
        println!("lab: LEFT BEHIND: {}", leftovers.join(", "));
    }
    result?;
    if !leftovers.is_empty() {
        bail!("the lab left {} behind", leftovers.join(", "));
    }
    Ok(())
}

/// Something the lab made, checked after cleanup.
#[derive(Debug)]
enum Made {
    Netns(String),
    Cgroup(PathBuf),
    Pins(PathBuf),
}

impl Made {
    fn still_there(&self) -> anyhow::Result<bool> {
        match self {
            Self::Netns(name) => crate::net::netns::exists(name),
            Self::Cgroup(path) | Self::Pins(path) => Ok(path.exists()),
        }
    }
}

impl std::fmt::Display for Made {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Netns(name) => write!(f, "netns {name}"),
            Self::Cgroup(path) => write!(f, "cgroup {}", path.display()),
            Self::Pins(path) => write!(f, "pins {}", path.display()),
        }
    }
}

fn list(made: &[Made]) -> String {
    made.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn lab(config: &LabConfig, pin_dir: &PathBuf, made: &mut Vec<Made>) -> anyhow::Result<()> {
    let xfer = bins::path("mptcp-xfer")?;

    let topology = Topology::new(&config.rate, made)?;
    let Topology { client, server, .. } = &topology;
    let cgroup = TestCgroup::new("mptcpd-lab")?;
    made.push(Made::Cgroup(cgroup.path().to_owned()));
    made.push(Made::Pins(pin_dir.clone()));
    let _pins = PinsGuard(pin_dir);

    let bus = if config.external_pm {
        Some(external::prepare(client)?)
    } else {
        None
    };
    let (mut daemon, _config_dir) = start_daemon(client, bus.as_ref(), pin_dir, &cgroup)?;
    println!("lab: mptcpd ready (pid {})", daemon.pid());

    // The server runs no daemon: its limits are the kernel's defaults, set explicitly here.
    server.ip(&[
        "mptcp",
        "limits",
        "set",
        "subflows",
        "2",
        "add_addr_accepted",
        "0",
    ])?;
    let example = join_maker(client, bus.as_ref(), &mut daemon)?;
    println!(
        "lab: limits set by mptcpd: {}",
        client.ip(&["mptcp", "limits", "show"])?.trim()
    );
    daemon.check_running()?;

    // The path manager's events of the transfer, as an operator would watch them.
    let mut monitor_cmd = client.command(bins::path("mptcpctl")?)?;
    monitor_cmd.args(["monitor", "--json"]);
    let mut monitor = ChildGuard::spawn(monitor_cmd)?;
    let events = monitor.lines()?;
    let first = events
        .recv_timeout(crate::daemon::process::LIVENESS)
        .context("mptcpctl monitor did not start")?;
    println!("lab: {first}");

    // The daemon's subflow telemetry, per path, while the transfer runs.
    let subflows = telemetry::watch_during(
        pin_dir.join(mptcpd_bpf::TELEMETRY_SUBFLOWS_PIN),
        [("A", PATH_A.0), ("B", PATH_B.0)],
        || transfer(&topology, &xfer, &cgroup, config.bytes),
    )?;

    // The client has closed: its CLOSED event ends the story.
    let deadline = Instant::now() + crate::daemon::process::LIVENESS;
    while let Ok(event) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        println!("lab: mptcpctl monitor --json: {event}");
        if event.contains(r#""event":"CLOSED""#) {
            break;
        }
    }
    drop(monitor);
    if let Some((example, lines)) = example {
        drop(example);
        for line in lines.try_iter() {
            println!("lab: external_pm.py: {line}");
        }
    }

    let counts = mptcpd_bpf::read_pinned_counts(&pin_dir.join(mptcpd_bpf::SOCK_COUNTS_PIN))
        .context("reading the observer's pinned counts")?;
    let ours = counts.get(&cgroup.id()?).copied().unwrap_or_default();
    println!(
        "lab: mptcpd's socket observer, lab cgroup: {} TCP and {} MPTCP stream sockets created",
        ours.tcp, ours.mptcp
    );
    let (status, log) = daemon.stop()?;
    println!("lab: mptcpd stopped ({status}); its log:");
    for line in log.lines() {
        println!("lab:   {line}");
    }

    for (name, (local, _)) in [("A", PATH_A), ("B", PATH_B)] {
        let carried: u64 = subflows
            .iter()
            .filter(|sf| sf.local.starts_with(&format!("{local}:")))
            .map(|sf| sf.bytes_acked)
            .sum();
        if carried == 0 {
            bail!("no bytes went over path {name} ({local})");
        }
        println!("lab: path {name} ({local}) carried {carried} bytes");
    }
    Ok(())
}

/// mptcpd in the client's namespace: `addr_adv` with `subflow` endpoints, or `mesh` on `bus`
/// (the external path manager's mode), with the lab's own (empty) configuration file: the
/// host's /etc/mptcpd/mptcpd.conf stays out (its directory returned, to keep while it runs).
fn start_daemon(
    client: &NetNs,
    bus: Option<&crate::dbus::SystemLikeBus>,
    pin_dir: &PathBuf,
    cgroup: &TestCgroup,
) -> anyhow::Result<(Daemon, tempfile::TempDir)> {
    let config_dir = tempfile::Builder::new().prefix("mptcpd-lab-").tempdir()?;
    let config_file = config_dir.path().join("mptcpd.conf");
    std::fs::write(&config_file, "[core]\n")?;
    let plugin: &[&str] = if bus.is_some() {
        &["--path-manager", "mesh", "--load-plugins", "mesh"]
    } else {
        &["--path-manager", "addr_adv", "--addr-flags", "subflow"]
    };
    println!(
        "lab: starting mptcpd in {} ({})",
        client.name(),
        plugin.join(" ")
    );
    let mut cmd = client.command(bins::path("mptcpd")?)?;
    if let Some(bus) = bus {
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
    }
    cmd.args(["--log", "stderr", "--debug", "--config"])
        .arg(&config_file)
        .args(plugin)
        .args(["--notify-flags", "existing,skip_link_local,skip_loopback"])
        .arg("--bpf-pin-dir")
        .arg(pin_dir)
        .arg("--observe-cgroup")
        .arg(cgroup.path());
    Ok((Daemon::start(cmd)?, config_dir))
}

/// What makes the join over path B: mptcpd's `addr_adv` adds one endpoint per usable address,
/// path B's makes it; or the external path manager (returned with its output, to stop after
/// the transfer) opens it.
fn join_maker(
    client: &NetNs,
    bus: Option<&crate::dbus::SystemLikeBus>,
    daemon: &mut Daemon,
) -> anyhow::Result<Option<(ChildGuard, std::sync::mpsc::Receiver<String>)>> {
    if let Some(bus) = bus {
        daemon.wait_for_log("D-Bus: serving")?;
        return external::start(client, bus).map(Some);
    }
    for line in wait_for_endpoint(client, PATH_B.0, daemon)?.lines() {
        println!("lab: endpoint added by mptcpd: {}", line.trim());
    }
    Ok(None)
}

/// Waits until the daemon has added an endpoint for `addr`; returns the endpoint table.
fn wait_for_endpoint(client: &NetNs, addr: &str, daemon: &mut Daemon) -> anyhow::Result<String> {
    let deadline = Instant::now() + crate::daemon::process::LIVENESS;
    loop {
        let shown = client.ip(&["mptcp", "endpoint", "show"])?;
        if shown.contains(addr) {
            return Ok(shown);
        }
        daemon.check_running()?;
        interrupt::check()?;
        if Instant::now() > deadline {
            bail!("mptcpd added no endpoint for {addr}:\n{}", daemon.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two namespaces joined by two rate-limited paths. Fields drop in order: addresses, links,
/// then the namespaces.
struct Topology {
    _addrs: [Address; 4],
    _path_b: VethPair,
    _path_a: VethPair,
    client: NetNs,
    server: NetNs,
}

impl Topology {
    fn new(rate: &str, made: &mut Vec<Made>) -> anyhow::Result<Self> {
        let client = NetNs::new("mptcpd-lab-cli")?;
        made.push(Made::Netns(client.name().to_owned()));
        let server = NetNs::new("mptcpd-lab-srv")?;
        made.push(Made::Netns(server.name().to_owned()));
        let path_a = VethPair::new("c-a", &client, "s-a", &server)?;
        let path_b = VethPair::new("c-b", &client, "s-b", &server)?;
        let addrs = [
            Address::add(&client, "c-a", &format!("{}/24", PATH_A.0))?,
            Address::add(&server, "s-a", &format!("{}/24", PATH_A.1))?,
            Address::add(&client, "c-b", &format!("{}/24", PATH_B.0))?,
            Address::add(&server, "s-b", &format!("{}/24", PATH_B.1))?,
        ];
        for dev in ["c-a", "c-b"] {
            crate::net::ip::run(
                "tc",
                &[
                    "-n",
                    client.name(),
                    "qdisc",
                    "add",
                    "dev",
                    dev,
                    "root",
                    "tbf",
                    "rate",
                    rate,
                    "burst",
                    "64kb",
                    "latency",
                    "20ms",
                ],
            )?;
        }
        // The join from path B's address must leave through path B.
        client.ip(&["rule", "add", "from", PATH_B.0, "table", "101"])?;
        client.ip(&[
            "route", "add", "default", "via", PATH_B.1, "dev", "c-b", "table", "101",
        ])?;
        println!(
            "lab: namespaces {} (client) and {} (server); path A {} <-> {} (c-a/s-a), \
             path B {} <-> {} (c-b/s-b), each client link limited to {rate}",
            client.name(),
            server.name(),
            PATH_A.0,
            PATH_A.1,
            PATH_B.0,
            PATH_B.1,
        );
        Ok(Self {
            _addrs: addrs,
            _path_b: path_b,
            _path_a: path_a,
            client,
            server,
        })
    }
}

/// Runs the server and the client in the lab cgroup; returns the client's subflows.
fn transfer(
    topology: &Topology,
    xfer: &std::path::Path,
    cgroup: &TestCgroup,
    bytes: u64,
) -> anyhow::Result<Vec<Subflow>> {
    let listen = SocketAddr::from(([0, 0, 0, 0], PORT));
    let mut server_cmd = topology.server.command(xfer)?;
    server_cmd.args(["server", "--listen", &listen.to_string()]);
    cgroup.join_on_spawn(&mut server_cmd)?;
    let mut server_proc = ChildGuard::spawn(server_cmd)?;
    let server_lines = server_proc.lines()?;
    let first = server_lines
        .recv_timeout(crate::daemon::process::LIVENESS)
        .context("server did not start")?;
    println!("lab: server: {first}");

    let mut client_cmd = topology.client.command(xfer)?;
    client_cmd.args(["client", "--connect", &format!("{}:{PORT}", PATH_A.1)]);
    client_cmd.args(["--bytes", &bytes.to_string(), "--wait-extra-subflows", "1"]);
    cgroup.join_on_spawn(&mut client_cmd)?;
    println!("lab: client sends {bytes} bytes");
    let mut client_proc = ChildGuard::spawn(client_cmd)?;
    let client_lines = client_proc.lines()?;
    let mut subflows = Vec::new();
    loop {
        interrupt::check()?;
        match client_lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                println!("lab: client: {line}");
                subflows.extend(Subflow::parse(&line));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    let client_status = client_proc.wait()?;
    for line in &server_lines {
        println!("lab: server: {line}");
    }
    server_proc.wait()?;
    if !client_status.success() {
        bail!("client failed ({client_status})");
    }
    Ok(subflows)
}

/// One `subflow ...` line of `mptcp-xfer client`.
#[derive(Debug, PartialEq, Eq)]
pub struct Subflow {
    /// Local address and port.
    pub local: String,
    /// Bytes the peer acknowledged on this subflow.
    pub bytes_acked: u64,
}

impl Subflow {
    /// Parses `subflow 1: LOCAL -> REMOTE bytes_sent=N bytes_acked=N bytes_received=N`.
    #[must_use]
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("subflow ")?;
        let (_, rest) = rest.split_once(": ")?;
        let mut words = rest.split_whitespace();
        let local = words.next()?.to_owned();
        let bytes_acked = words
            .find_map(|w| w.strip_prefix("bytes_acked="))?
            .parse()
            .ok()?;
        Some(Self { local, bytes_acked })
    }
}

/// The daemon removes its pins when it stops; this removes them if it could not (killed).
#[derive(Debug)]
pub struct PinsGuard<'a>(pub &'a PathBuf);

impl Drop for PinsGuard<'_> {
    fn drop(&mut self) {
        // bpffs has no recursive removal: unlink each pin, then the directory.
        if let Ok(entries) = std::fs::read_dir(self.0) {
            for entry in entries.flatten() {
                let _removed = std::fs::remove_file(entry.path());
            }
        }
        let _removed = std::fs::remove_dir(self.0);
    }
}

/// A child process, killed and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard(Child);

impl ChildGuard {
    /// Spawns `cmd` with stdin closed and stdout and stderr piped (see [`Self::lines`]).
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Ok(Self(cmd.spawn()?))
    }

    /// Lines of stdout and stderr, as they come.
    pub fn lines(&mut self) -> anyhow::Result<std::sync::mpsc::Receiver<String>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let out = self.0.stdout.take().context("no stdout")?;
        let err = self.0.stderr.take().context("no stderr")?;
        let tx_err = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _sent = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _sent = tx_err.send(line);
            }
        });
        Ok(rx)
    }

    /// Waits for the exit (at most [`crate::daemon::process::LIVENESS`]; Ctrl-C ends the wait).
    pub fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + crate::daemon::process::LIVENESS;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(status);
            }
            interrupt::check()?;
            if Instant::now() > deadline {
                bail!("process {} did not exit", self.0.id());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _killed = self.0.kill();
            let _reaped = self.0.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Subflow;

    #[test]
    fn parses_subflow_lines() {
        assert_eq!(
            Subflow::parse(
                "subflow 2: 198.51.100.1:40001 -> 192.0.2.2:5201 bytes_sent=10 bytes_acked=9 \
                 bytes_received=1"
            ),
            Some(Subflow {
                local: "198.51.100.1:40001".to_owned(),
                bytes_acked: 9
            })
        );
        assert_eq!(Subflow::parse("connection token 0x1: 2 subflows"), None);
        assert_eq!(Subflow::parse("subflow 1: a -> b bytes_acked=x"), None);
    }
}
