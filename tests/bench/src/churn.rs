//! Address churn: how long the in-kernel endpoint table takes to follow 8 addresses coming and
//! going, under our daemon, under the C mptcpd (Debian's 0.12) and with no daemon at all (the
//! floor: the same endpoint changes made by `ip mptcp endpoint` in the process that changes the
//! addresses), side by side in one run, with each daemon's memory at the start and the end.
//!
//! Each subject has its own namespace with a veth link; the cycles are interleaved across the
//! subjects so that the machine's noise falls on all three alike. A cycle adds 8 addresses in
//! one `ip -batch` run and measures from just before that run until a dump of the endpoint
//! table lists all 8, then deletes them the same way and measures until the table is empty.
//!
//! Besides the times: each daemon's memory (`VmRSS`, `VmHWM`, `RssAnon`) and installed size
//! (our stripped binary; the C daemon's binary, libraries and plugins), with the targets of
//! issue 16 judged met or missed. Several builds of ours (feature sets) can be measured side by
//! side; the first is the one judged.

use std::{
    fmt::Write as _,
    io::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mptcp_pm::PmClient;
use serde::Serialize;
use tokio::runtime::Runtime;

use mptcpd_tests::{
    daemon::{
        c_peer::CPeer,
        process::{LIVENESS, Memory},
        subject::{Running, Settings, Subject},
    },
    net::{netns::NetNs, veth::VethPair},
};

use crate::report;

/// Addresses added and deleted per cycle (the in-kernel PM's endpoint limit).
const ADDRESSES: u8 = 8;
/// The link the addresses go on.
const LINK: &str = "ch0";
/// Pause between two dumps while waiting: fine beside the milliseconds measured, and it leaves
/// the daemon the CPU (2 cores).
const POLL: Duration = Duration::from_micros(200);
/// Memory is sampled every this many cycles (for flatness), besides the start and the end.
const MEMORY_EVERY: usize = 50;
/// Issue 16's targets: memory at most this many times the C daemon's ...
const MEMORY_RATIO: f64 = 1.5;
/// ... and the stripped daemon at most this many bytes (2.5 MB).
const SIZE_BYTES: u64 = 2_500_000;
/// Resident memory that grows by more than this share of its start over the run is not flat.
const FLAT_SHARE: f64 = 0.05;
/// Where our daemon's state directory goes: a tmpfs, as `/run/mptcpd` is under systemd (on a
/// disk file system each state-file write is a journalled rename: it made adds twice as slow).
const STATE_TMPFS: &str = "/dev/shm";

/// What the daemons are given: what the lab and a typical installation use.
const SETTINGS: Settings<'static> = Settings {
    addr_flags: Some("subflow"),
    notify_flags: Some("skip_link_local,skip_loopback"),
};

/// One build of our daemon (a feature set).
#[derive(Debug, Clone)]
pub(crate) struct Build {
    /// The feature set, as the table names it.
    pub(crate) name: String,
    pub(crate) binary: PathBuf,
}

impl std::str::FromStr for Build {
    type Err = String;

    /// `NAME=PATH`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, binary) = s
            .split_once('=')
            .filter(|(name, binary)| !name.is_empty() && !binary.is_empty())
            .ok_or_else(|| format!("{s:?}: expected NAME=PATH (a feature set and its daemon)"))?;
        Ok(Self {
            name: name.to_owned(),
            binary: binary.into(),
        })
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Add-then-delete cycles per subject (after one warm-up cycle).
    pub(crate) cycles: usize,
    /// Our builds, the judged one first; none: the `mptcpd` beside this program.
    pub(crate) builds: Vec<Build>,
}

/// The results.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The table, for people.
    pub(crate) table: String,
    /// Everything, as JSON.
    pub(crate) json: String,
}

/// One subject's namespace, daemon and measurements.
struct Lab {
    name: String,
    /// Installed bytes: our stripped binary; the C daemon with its libraries and plugins.
    size_bytes: Option<u64>,
    pm: PmClient,
    daemon: Option<Running>,
    /// Our daemon's state directory (on [`STATE_TMPFS`]).
    _state: Option<tempfile::TempDir>,
    _link: VethPair,
    ns: NetNs,
    _peer: NetNs,
    add_ms: Vec<f64>,
    del_ms: Vec<f64>,
    memory: Vec<(usize, Memory)>,
}

impl Lab {
    fn new(
        rt: &Runtime,
        subject: Option<(&Subject, String)>,
        size_bytes: Option<u64>,
    ) -> anyhow::Result<Self> {
        let ns = NetNs::new("mptcpd-bench-churn")?;
        let peer = NetNs::new("mptcpd-bench-churn")?;
        let link = VethPair::new(LINK, &ns, "ch1", &peer)?;
        let state = match subject {
            Some((Subject::Ours(_), _)) => Some(
                tempfile::Builder::new()
                    .prefix("mptcpd-bench-state-")
                    .tempdir_in(STATE_TMPFS)
                    .with_context(|| format!("a state directory in {STATE_TMPFS} (a tmpfs)"))?,
            ),
            _ => None,
        };
        let daemon = subject
            .as_ref()
            .map(|(s, _)| match &state {
                Some(dir) => s.start_with_state_dir(&ns, SETTINGS, dir.path()),
                None => s.start(&ns, SETTINGS),
            })
            .transpose()?;
        // The client's socket belongs to the namespace it was made in.
        let pm = {
            let _in = ns.enter()?;
            rt.block_on(PmClient::connect())?
        };
        let name = subject.map_or_else(|| "floor (ip mptcp endpoint)".to_owned(), |(_, n)| n);
        Ok(Self {
            name,
            size_bytes,
            pm,
            daemon,
            _state: state,
            _link: link,
            ns,
            _peer: peer,
            add_ms: Vec::new(),
            del_ms: Vec::new(),
            memory: Vec::new(),
        })
    }

    fn sample_memory(&mut self, cycle: usize) -> anyhow::Result<()> {
        if let Some(daemon) = &self.daemon {
            self.memory.push((cycle, daemon.memory()?));
        }
        Ok(())
    }

    /// One add-then-delete cycle; the times are kept when `keep`.
    fn cycle(&mut self, rt: &Runtime, keep: bool) -> anyhow::Result<()> {
        let floor = self.daemon.is_none();
        let mut add = String::new();
        let mut del = String::new();
        for n in 1..=ADDRESSES {
            let addr = address(n);
            let _infallible = writeln!(add, "address add {addr}/24 dev {LINK}");
            if floor {
                let _infallible =
                    writeln!(add, "mptcp endpoint add {addr} id {n} subflow dev {LINK}");
                let _infallible = writeln!(del, "mptcp endpoint delete id {n}");
            }
            let _infallible = writeln!(del, "address del {addr}/24 dev {LINK}");
        }
        let started = Instant::now();
        self.batch(&add)?;
        self.until(rt, "all 8 endpoints", |listed| {
            listed == usize::from(ADDRESSES)
        })?;
        let added = started.elapsed();
        let started = Instant::now();
        self.batch(&del)?;
        self.until(rt, "no endpoint", |listed| listed == 0)?;
        let deleted = started.elapsed();
        if keep {
            self.add_ms.push(added.as_secs_f64() * 1e3);
            self.del_ms.push(deleted.as_secs_f64() * 1e3);
        }
        Ok(())
    }

    /// `ip -batch -` in the namespace with `script` on stdin.
    fn batch(&self, script: &str) -> anyhow::Result<()> {
        let mut child = self
            .ns
            .command("ip")?
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running ip -batch")?;
        child
            .stdin
            .take()
            .context("ip's stdin")?
            .write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "ip -batch in {}: {}",
                self.ns.name(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Dumps until the number of churned addresses with an endpoint satisfies `done`.
    fn until(&self, rt: &Runtime, what: &str, done: impl Fn(usize) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + LIVENESS;
        loop {
            let endpoints = rt.block_on(self.pm.dump_addrs())?;
            let listed = endpoints
                .iter()
                .filter(|e| (1..=ADDRESSES).any(|n| e.addr == address(n)))
                .count();
            if done(listed) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = self.daemon.as_ref().map(|d| d.log()).unwrap_or_default();
                bail!("{}: {what} not reached ({listed} listed)\n{log}", self.name);
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The `n`th churned address, each in a /24 of its own (so that each is a primary).
fn address(n: u8) -> IpAddr {
    IpAddr::from([10, 77, n, 1])
}

/// The size `binary` has stripped (`strip --strip-all` of a copy; the release profile
/// strips already, a build from elsewhere may not be).
fn stripped_size(binary: &Path) -> anyhow::Result<u64> {
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join("stripped");
    let status = Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .status()
        .context("running strip (binutils: apt-get install binutils)")?;
    if !status.success() {
        bail!("strip {} failed ({status})", binary.display());
    }
    Ok(std::fs::metadata(&copy)?.len())
}

/// The C daemon's installed bytes: binary, libraries, plugins.
fn c_size(peer: &CPeer) -> anyhow::Result<u64> {
    peer.installed_files()?
        .iter()
        .map(|file| Ok(std::fs::metadata(file)?.len()))
        .sum()
}

/// Runs the benchmark (root).
pub(crate) fn run(config: Config) -> anyhow::Result<Outcome> {
    if config.cycles == 0 {
        bail!("--cycles must be at least 1");
    }
    let builds = if config.builds.is_empty() {
        vec![Build {
            name: "default".to_owned(),
            binary: mptcpd_tests::bins::path("mptcpd")?,
        }]
    } else {
        config.builds
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let peer = CPeer::get()?;
    let version = peer.version().to_owned();
    let c_bytes = c_size(&peer)?;
    let c = Subject::C(peer);
    let mut labs = Vec::new();
    for build in &builds {
        let ours = Subject::Ours(build.binary.clone());
        let name = format!("{ours} [{}]", build.name);
        let size = stripped_size(&build.binary)?;
        labs.push(Lab::new(&rt, Some((&ours, name)), Some(size))?);
    }
    labs.push(Lab::new(&rt, Some((&c, c.to_string())), Some(c_bytes))?);
    labs.push(Lab::new(&rt, None, None)?);
    for lab in &mut labs {
        lab.sample_memory(0)?;
        lab.cycle(&rt, false)?;
    }
    let started = Instant::now();
    for cycle in 1..=config.cycles {
        for lab in &mut labs {
            lab.cycle(&rt, true)?;
            if cycle % MEMORY_EVERY == 0 || cycle == config.cycles {
                lab.sample_memory(cycle)?;
            }
        }
        if cycle % MEMORY_EVERY == 0 {
            eprintln!(
                "bench: churn: {cycle}/{} cycles ({:.0?})",
                config.cycles,
                started.elapsed()
            );
        }
    }
    for lab in &labs {
        if let Some(daemon) = &lab.daemon {
            daemon_alive(daemon, &lab.name)?;
        }
    }
    let (ours, rest) = labs.split_at(builds.len());
    let [c, floor] = rest else {
        unreachable!("the C daemon and the floor follow our builds");
    };
    let judged = Judged::of(&ours[0], c)?;
    let features: Vec<FeatureSet<'_>> = builds
        .iter()
        .zip(ours)
        .map(|(build, lab)| FeatureSet::of(&build.name, lab))
        .collect::<anyhow::Result<_>>()?;
    Ok(Outcome {
        table: table(
            &ours[0],
            c,
            floor,
            config.cycles,
            &judged.targets,
            &features,
        ),
        json: report::json(&Report {
            benchmark: "churn",
            cycles: config.cycles,
            addresses: ADDRESSES,
            c_mptcpd: &version,
            state_dir_in: STATE_TMPFS,
            targets: &judged.targets,
            feature_sets: &features,
            subjects: labs.iter().map(SubjectReport::from).collect(),
        })?,
    })
}

fn daemon_alive(daemon: &Running, name: &str) -> anyhow::Result<()> {
    // Exited daemons have no /proc entry: reading its memory is the check.
    daemon
        .memory()
        .map(drop)
        .with_context(|| format!("{name} is no longer running:\n{}", daemon.log()))
}

/// The `q` quantile of `samples` (nearest rank).
fn quantile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a rank within a vector of at most millions of samples"
    )]
    let index = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    sorted[index]
}

/// Median and 99th percentile (nearest rank).
pub(crate) fn stats(samples: &[f64]) -> (f64, f64) {
    (quantile(samples, 0.5), quantile(samples, 0.99))
}

fn first_last(lab: &Lab) -> anyhow::Result<(Memory, Memory)> {
    Ok((
        lab.memory.first().context("no memory sample")?.1,
        lab.memory.last().context("no memory sample")?.1,
    ))
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "-".to_owned()
    } else {
        format!("{:.2}", a / b)
    }
}

/// One of issue 16's targets, judged.
#[derive(Debug, Serialize)]
struct Target {
    measure: &'static str,
    ours: f64,
    c: f64,
    #[serde(rename = "target")]
    goal: String,
    met: bool,
}

impl Target {
    fn verdict(&self) -> String {
        format!(
            "{}: {}",
            self.goal,
            if self.met { "met" } else { "**missed**" }
        )
    }
}

/// The judged build's targets.
struct Judged {
    targets: Vec<Target>,
}

impl Judged {
    #[expect(
        clippy::cast_precision_loss,
        reason = "KiB and byte counts far below 2^52"
    )]
    fn of(ours: &Lab, c: &Lab) -> anyhow::Result<Self> {
        let (o0, o1) = first_last(ours)?;
        let (_, c1) = first_last(c)?;
        let c_upper = quantile(&c.del_ms, 0.75);
        let ours_size = ours.size_bytes.unwrap_or_default();
        let memory = |measure, o: u64, cv: u64| Target {
            measure,
            ours: o as f64,
            c: cv as f64,
            goal: format!("<= {MEMORY_RATIO}x C"),
            met: o as f64 <= MEMORY_RATIO * cv as f64,
        };
        let targets = vec![
            Target {
                measure: "adds, median (ms)",
                ours: quantile(&ours.add_ms, 0.5),
                c: quantile(&c.add_ms, 0.5),
                goal: "<= C".to_owned(),
                met: quantile(&ours.add_ms, 0.5) <= quantile(&c.add_ms, 0.5),
            },
            Target {
                measure: "deletes, median (ms)",
                ours: quantile(&ours.del_ms, 0.5),
                c: quantile(&c.del_ms, 0.5),
                goal: format!("<= {c_upper:.1}, C's spread (its upper quartile)"),
                met: quantile(&ours.del_ms, 0.5) <= c_upper,
            },
            memory("VmRSS at end (KiB)", o1.rss_kib, c1.rss_kib),
            memory("RssAnon at end (KiB)", o1.anon_kib, c1.anon_kib),
            Target {
                measure: "VmRSS growth over the run (KiB)",
                ours: o1.rss_kib as f64 - o0.rss_kib as f64,
                c: 0.0,
                goal: format!("flat: <= {:.0}% of the start", FLAT_SHARE * 100.0),
                met: o1.rss_kib as f64 <= o0.rss_kib as f64 * (1.0 + FLAT_SHARE),
            },
            Target {
                measure: "installed size (bytes)",
                ours: ours_size as f64,
                c: c.size_bytes.unwrap_or_default() as f64,
                goal: format!("stripped <= {SIZE_BYTES} bytes (2.5 MB)"),
                met: ours_size <= SIZE_BYTES,
            },
        ];
        Ok(Self { targets })
    }
}

/// One build's size and memory, for the per-feature-set table.
#[derive(Debug, Serialize)]
struct FeatureSet<'a> {
    name: &'a str,
    size_bytes: u64,
    vm_rss_kib: u64,
    rss_anon_kib: u64,
    add_median_ms: f64,
}

impl<'a> FeatureSet<'a> {
    fn of(name: &'a str, lab: &Lab) -> anyhow::Result<Self> {
        let (_, end) = first_last(lab)?;
        Ok(Self {
            name,
            size_bytes: lab.size_bytes.unwrap_or_default(),
            vm_rss_kib: end.rss_kib,
            rss_anon_kib: end.anon_kib,
            add_median_ms: quantile(&lab.add_ms, 0.5),
        })
    }
}

fn table(
    ours: &Lab,
    c: &Lab,
    floor: &Lab,
    cycles: usize,
    targets: &[Target],
    features: &[FeatureSet<'_>],
) -> String {
    let verdict = |measure: &str| {
        targets
            .iter()
            .find(|t| t.measure == measure)
            .map(Target::verdict)
            .unwrap_or_default()
    };
    let mut out = format!(
        "churn: {cycles} cycles of adding then deleting {ADDRESSES} addresses; time until the \
         endpoint table matches ({})\n{:<32} {:>10} {:>10} {:>10} {:>8} {:>8}  target\n",
        ours.name, "measure", "mptcpd", "C mptcpd", "floor", "ours/C", "ours/fl"
    );
    let mut time_row = |label: &str, pick: fn((f64, f64)) -> f64, samples: fn(&Lab) -> &[f64]| {
        let [o, cv, f] = [ours, c, floor].map(|lab| pick(stats(samples(lab))));
        let _infallible = writeln!(
            out,
            "{label:<32} {o:>10.2} {cv:>10.2} {f:>10.2} {:>8} {:>8}  {}",
            ratio(o, cv),
            ratio(o, f),
            verdict(label)
        );
    };
    time_row("adds, median (ms)", |s| s.0, |l| &l.add_ms);
    time_row("adds, p99 (ms)", |s| s.1, |l| &l.add_ms);
    time_row("deletes, median (ms)", |s| s.0, |l| &l.del_ms);
    time_row("deletes, p99 (ms)", |s| s.1, |l| &l.del_ms);
    if let (Ok((o0, o1)), Ok((c0, c1))) = (first_last(ours), first_last(c)) {
        #[expect(clippy::cast_precision_loss, reason = "KiB counts far below 2^52")]
        let mut mem_row = |label: &str, o: u64, cv: u64, target: String| {
            let _infallible = writeln!(
                out,
                "{label:<32} {o:>10} {cv:>10} {:>10} {:>8} {:>8}  {target}",
                "-",
                ratio(o as f64, cv as f64),
                "-"
            );
        };
        mem_row(
            "VmRSS at start (KiB)",
            o0.rss_kib,
            c0.rss_kib,
            String::new(),
        );
        let flat = verdict("VmRSS growth over the run (KiB)");
        mem_row(
            "VmRSS at end (KiB)",
            o1.rss_kib,
            c1.rss_kib,
            format!("{}; {flat}", verdict("VmRSS at end (KiB)")),
        );
        mem_row(
            "RssAnon at end (KiB)",
            o1.anon_kib,
            c1.anon_kib,
            verdict("RssAnon at end (KiB)"),
        );
        mem_row("VmHWM at end (KiB)", o1.hwm_kib, c1.hwm_kib, String::new());
    }
    if let (Some(o), Some(cv)) = (ours.size_bytes, c.size_bytes) {
        #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
        let _infallible = writeln!(
            out,
            "{:<32} {:>10} {:>10} {:>10} {:>8} {:>8}  {}",
            "installed size (KiB)",
            o / 1024,
            cv / 1024,
            "-",
            ratio(o as f64, cv as f64),
            "-",
            verdict("installed size (bytes)")
        );
    }
    let _infallible = writeln!(
        out,
        "(installed size: our stripped daemon; the C daemon's binary, libmptcpd, libell and plugins; \
         our state directory in {STATE_TMPFS}, a tmpfs as /run is in production)"
    );
    if features.len() > 1 {
        let _infallible = writeln!(
            out,
            "\nfeature sets of ours\n{:<32} {:>10} {:>10} {:>12} {:>10}",
            "build", "size (KiB)", "VmRSS", "RssAnon", "adds (ms)"
        );
        for set in features {
            let _infallible = writeln!(
                out,
                "{:<32} {:>10} {:>10} {:>12} {:>10.2}",
                set.name,
                set.size_bytes / 1024,
                set.vm_rss_kib,
                set.rss_anon_kib,
                set.add_median_ms
            );
        }
    }
    out
}

/// `churn.json`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    benchmark: &'static str,
    cycles: usize,
    addresses: u8,
    /// The C daemon's version.
    c_mptcpd: &'a str,
    /// Where our daemon's state directory was (a tmpfs).
    state_dir_in: &'static str,
    /// Issue 16's targets for the first (default) build.
    targets: &'a [Target],
    /// Each build of ours: size and memory at the end.
    feature_sets: &'a [FeatureSet<'a>],
    subjects: Vec<SubjectReport<'a>>,
}

/// One subject's figures.
#[derive(Debug, Serialize)]
struct SubjectReport<'a> {
    name: &'a str,
    size_bytes: Option<u64>,
    add_ms: Stats,
    delete_ms: Stats,
    memory: Vec<MemorySample>,
}

#[derive(Debug, Serialize)]
struct Stats {
    median: f64,
    p99: f64,
}

impl Stats {
    fn of(samples: &[f64]) -> Self {
        let (median, p99) = stats(samples);
        Self { median, p99 }
    }
}

#[derive(Debug, Serialize)]
struct MemorySample {
    cycle: usize,
    vm_rss_kib: u64,
    vm_hwm_kib: u64,
    rss_anon_kib: u64,
}

impl<'a> From<&'a Lab> for SubjectReport<'a> {
    fn from(lab: &'a Lab) -> Self {
        Self {
            name: &lab.name,
            size_bytes: lab.size_bytes,
            add_ms: Stats::of(&lab.add_ms),
            delete_ms: Stats::of(&lab.del_ms),
            memory: lab
                .memory
                .iter()
                .map(
                    |&(
                        cycle,
                        Memory {
                            rss_kib,
                            hwm_kib,
                            anon_kib,
                        },
                    )| MemorySample {
                        cycle,
                        vm_rss_kib: rss_kib,
                        vm_hwm_kib: hwm_kib,
                        rss_anon_kib: anon_kib,
                    },
                )
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{
        Build, FeatureSet, MemorySample, Report, Stats, SubjectReport, Target, quantile, stats,
    };

    #[test]
    fn median_and_p99_by_nearest_rank() {
        let samples: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(stats(&samples), (100.0, 198.0));
        assert_eq!(quantile(&samples, 0.75), 150.0);
        assert_eq!(stats(&[3.0]), (3.0, 3.0));
    }

    #[test]
    fn a_build_is_a_feature_set_and_its_daemon() {
        let build: Build = "no-dbus=/tmp/mptcpd".parse().unwrap();
        assert_eq!(
            (build.name.as_str(), build.binary.to_str()),
            ("no-dbus", Some("/tmp/mptcpd"))
        );
        for bad in ["/tmp/mptcpd", "=/tmp/mptcpd", "default="] {
            assert!(
                bad.parse::<Build>().unwrap_err().contains("NAME=PATH"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_report_is_json_with_every_subject() {
        let report = Report {
            benchmark: "churn",
            cycles: 2,
            addresses: 8,
            c_mptcpd: "0.12",
            state_dir_in: "/dev/shm",
            targets: &[Target {
                measure: "adds, median (ms)",
                ours: 1.0,
                c: 2.0,
                goal: "<= C".to_owned(),
                met: true,
            }],
            feature_sets: &[FeatureSet {
                name: "default",
                size_bytes: 2_000_000,
                vm_rss_kib: 3000,
                rss_anon_kib: 300,
                add_median_ms: 1.5,
            }],
            subjects: vec![SubjectReport {
                name: "floor (ip \"mptcp\")",
                size_bytes: None,
                add_ms: Stats::of(&[1.0 / 3.0, 2.0]),
                delete_ms: Stats::of(&[f64::NAN]),
                memory: vec![MemorySample {
                    cycle: 0,
                    vm_rss_kib: 6244,
                    vm_hwm_kib: 6250,
                    rss_anon_kib: 400,
                }],
            }],
        };
        let value: Value = serde_json::from_str(&crate::report::json(&report).unwrap()).unwrap();
        assert_eq!(
            value,
            json!({
                "benchmark": "churn", "cycles": 2, "addresses": 8, "c_mptcpd": "0.12",
                "state_dir_in": "/dev/shm",
                "targets": [{
                    "measure": "adds, median (ms)", "ours": 1.0, "c": 2.0, "target": "<= C",
                    "met": true,
                }],
                "feature_sets": [{
                    "name": "default", "size_bytes": 2_000_000, "vm_rss_kib": 3000,
                    "rss_anon_kib": 300, "add_median_ms": 1.5,
                }],
                "subjects": [{
                    "name": "floor (ip \"mptcp\")",
                    "size_bytes": null,
                    "add_ms": {"median": 1.0 / 3.0, "p99": 2.0},
                    "delete_ms": {"median": null, "p99": null},
                    "memory": [{
                        "cycle": 0, "vm_rss_kib": 6244, "vm_hwm_kib": 6250, "rss_anon_kib": 400,
                    }],
                }],
            })
        );
    }
}
