//! Address churn: how long the in-kernel endpoint table takes to follow 8 addresses coming and
//! going, under our daemon, under the C mptcpd (Debian's 0.12) and with no daemon at all (the
//! floor: the same endpoint changes made by `ip mptcp endpoint` in the process that changes the
//! addresses), side by side in one run, with each daemon's memory at the start and the end.
//!
//! Each subject has its own namespace with a veth link; the cycles are interleaved across the
//! subjects so that the machine's noise falls on all three alike. A cycle adds 8 addresses in
//! one `ip -batch` run and measures from just before that run until a dump of the endpoint
//! table lists all 8, then deletes them the same way and measures until the table is empty.

use std::{
    fmt::Write as _,
    io::Write as _,
    net::IpAddr,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mptcp_pm::PmClient;
use serde::Serialize;
use tokio::runtime::Runtime;

use mptcpd_tests::{
    bins,
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

/// What the daemons are given: what the lab and a typical installation use.
const SETTINGS: Settings<'static> = Settings {
    addr_flags: Some("subflow"),
    notify_flags: Some("skip_link_local,skip_loopback"),
};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Add-then-delete cycles per subject (after one warm-up cycle).
    pub(crate) cycles: usize,
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
    pm: PmClient,
    daemon: Option<Running>,
    _link: VethPair,
    ns: NetNs,
    _peer: NetNs,
    add_ms: Vec<f64>,
    del_ms: Vec<f64>,
    memory: Vec<(usize, Memory)>,
}

impl Lab {
    fn new(rt: &Runtime, subject: Option<&Subject>) -> anyhow::Result<Self> {
        let ns = NetNs::new("mptcpd-bench-churn")?;
        let peer = NetNs::new("mptcpd-bench-churn")?;
        let link = VethPair::new(LINK, &ns, "ch1", &peer)?;
        let daemon = subject.map(|s| s.start(&ns, SETTINGS)).transpose()?;
        // The client's socket belongs to the namespace it was made in.
        let pm = {
            let _in = ns.enter()?;
            rt.block_on(PmClient::connect())?
        };
        let name = subject.map_or_else(
            || "floor (ip mptcp endpoint)".to_owned(),
            ToString::to_string,
        );
        Ok(Self {
            name,
            pm,
            daemon,
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

/// Runs the benchmark (root).
pub(crate) fn run(config: Config) -> anyhow::Result<Outcome> {
    if config.cycles == 0 {
        bail!("--cycles must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let peer = CPeer::get()?;
    let version = peer.version().to_owned();
    let ours = Subject::Ours(bins::path("mptcpd")?);
    let c = Subject::C(peer);
    let mut labs = [
        Lab::new(&rt, Some(&ours))?,
        Lab::new(&rt, Some(&c))?,
        Lab::new(&rt, None)?,
    ];
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
    let [ours, c, floor] = &labs;
    Ok(Outcome {
        table: table(ours, c, floor, config.cycles),
        json: report::json(&Report {
            benchmark: "churn",
            cycles: config.cycles,
            addresses: ADDRESSES,
            c_mptcpd: &version,
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

/// Median and 99th percentile (nearest rank).
pub(crate) fn stats(samples: &[f64]) -> (f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        let n = sorted.len();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank within a vector of at most millions of samples"
        )]
        let index = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        sorted[index]
    };
    (rank(0.5), rank(0.99))
}

fn first_last(lab: &Lab) -> Option<(Memory, Memory)> {
    Some((lab.memory.first()?.1, lab.memory.last()?.1))
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "-".to_owned()
    } else {
        format!("{:.2}", a / b)
    }
}

fn table(ours: &Lab, c: &Lab, floor: &Lab, cycles: usize) -> String {
    let mut out = format!(
        "churn: {cycles} cycles of adding then deleting {ADDRESSES} addresses; time until the \
         endpoint table matches\n{:<30} {:>10} {:>10} {:>10} {:>8} {:>8}  target\n",
        "measure", "mptcpd", "C mptcpd", "floor", "ours/C", "ours/fl"
    );
    let mut time_row = |label: &str, pick: fn((f64, f64)) -> f64, samples: fn(&Lab) -> &[f64]| {
        let [o, cv, f] = [ours, c, floor].map(|lab| pick(stats(samples(lab))));
        let _infallible = writeln!(
            out,
            "{label:<30} {o:>10.2} {cv:>10.2} {f:>10.2} {:>8} {:>8}  {}",
            ratio(o, cv),
            ratio(o, f),
            if label.contains("median") {
                "<= 1.15x floor, <= C"
            } else {
                ""
            }
        );
    };
    time_row("adds, median (ms)", |s| s.0, |l| &l.add_ms);
    time_row("adds, p99 (ms)", |s| s.1, |l| &l.add_ms);
    time_row("deletes, median (ms)", |s| s.0, |l| &l.del_ms);
    time_row("deletes, p99 (ms)", |s| s.1, |l| &l.del_ms);
    if let (Some((o0, o1)), Some((c0, c1))) = (first_last(ours), first_last(c)) {
        #[expect(clippy::cast_precision_loss, reason = "KiB counts far below 2^52")]
        let mut mem_row = |label: &str, o: u64, cv: u64, target: &str| {
            let _infallible = writeln!(
                out,
                "{label:<30} {o:>10} {cv:>10} {:>10} {:>8} {:>8}  {target}",
                "-",
                ratio(o as f64, cv as f64),
                "-"
            );
        };
        mem_row("VmRSS at start (KiB)", o0.rss_kib, c0.rss_kib, "<= 2x C");
        mem_row(
            "VmRSS at end (KiB)",
            o1.rss_kib,
            c1.rss_kib,
            "<= 2x C, flat",
        );
        mem_row("VmHWM at start (KiB)", o0.hwm_kib, c0.hwm_kib, "");
        mem_row("VmHWM at end (KiB)", o1.hwm_kib, c1.hwm_kib, "");
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
    subjects: Vec<SubjectReport<'a>>,
}

/// One subject's figures.
#[derive(Debug, Serialize)]
struct SubjectReport<'a> {
    name: &'a str,
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
}

impl<'a> From<&'a Lab> for SubjectReport<'a> {
    fn from(lab: &'a Lab) -> Self {
        Self {
            name: &lab.name,
            add_ms: Stats::of(&lab.add_ms),
            delete_ms: Stats::of(&lab.del_ms),
            memory: lab
                .memory
                .iter()
                .map(|&(cycle, Memory { rss_kib, hwm_kib })| MemorySample {
                    cycle,
                    vm_rss_kib: rss_kib,
                    vm_hwm_kib: hwm_kib,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{MemorySample, Report, Stats, SubjectReport, stats};

    #[test]
    fn median_and_p99_by_nearest_rank() {
        let samples: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(stats(&samples), (100.0, 198.0));
        assert_eq!(stats(&[3.0]), (3.0, 3.0));
    }

    #[test]
    fn the_report_is_json_with_every_subject() {
        let report = Report {
            benchmark: "churn",
            cycles: 2,
            addresses: 8,
            c_mptcpd: "0.12",
            subjects: vec![SubjectReport {
                name: "floor (ip \"mptcp\")",
                add_ms: Stats::of(&[1.0 / 3.0, 2.0]),
                delete_ms: Stats::of(&[f64::NAN]),
                memory: vec![MemorySample {
                    cycle: 0,
                    vm_rss_kib: 6244,
                    vm_hwm_kib: 6250,
                }],
            }],
        };
        let value: Value = serde_json::from_str(&crate::report::json(&report).unwrap()).unwrap();
        assert_eq!(
            value,
            json!({
                "benchmark": "churn", "cycles": 2, "addresses": 8, "c_mptcpd": "0.12",
                "subjects": [{
                    "name": "floor (ip \"mptcp\")",
                    "add_ms": {"median": 1.0 / 3.0, "p99": 2.0},
                    "delete_ms": {"median": null, "p99": null},
                    "memory": [{"cycle": 0, "vm_rss_kib": 6244, "vm_hwm_kib": 6250}],
                }],
            })
        );
    }
}
