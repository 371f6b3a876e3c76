//! The lab's view of mptcpd's subflow telemetry while the transfer runs: the records the
//! daemon pinned, read on a thread and printed per path, as an operator would watch them.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use mptcpd_bpf::SubflowRecord;

/// How often the pinned records are read: often enough to see a short transfer's subflows.
const POLL: Duration = Duration::from_millis(20);
/// How often a path's figures are printed while it lives.
const PRINT_EVERY: Duration = Duration::from_secs(1);

/// The thread printing per-path telemetry; [`Self::finish`] stops it.
struct TelemetryWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<BTreeMap<&'static str, SubflowRecord>>,
}

impl TelemetryWatch {
    /// Watches the records pinned at `pin` for subflows from the lab's client addresses
    /// (`paths`: a name and a local address each).
    fn start(pin: PathBuf, paths: Vec<(&'static str, IpAddr)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut last: BTreeMap<&'static str, SubflowRecord> = BTreeMap::new();
            let mut printed: BTreeMap<&'static str, Instant> = BTreeMap::new();
            let mut failed = false;
            while !stopping.load(Ordering::Relaxed) {
                match mptcpd_bpf::read_pinned_subflows(&pin) {
                    Ok(records) => {
                        for record in records {
                            let Some(&(name, _)) =
                                paths.iter().find(|(_, ip)| *ip == record.local().ip())
                            else {
                                continue;
                            };
                            last.insert(name, record);
                            let due = printed
                                .get(name)
                                .is_none_or(|at| at.elapsed() >= PRINT_EVERY);
                            if due {
                                println!("lab: telemetry, path {name}: {}", figures(&record));
                                printed.insert(name, Instant::now());
                            }
                        }
                    }
                    // Not pinned yet, or the daemon is gone: say it once.
                    Err(e) if !failed => {
                        println!("lab: telemetry: {:#}", anyhow::Error::from(e));
                        failed = true;
                    }
                    Err(_) => {}
                }
                std::thread::sleep(POLL);
            }
            last
        });
        Self { stop, thread }
    }

    /// Stops watching; the last record seen of each path.
    fn finish(self) -> BTreeMap<&'static str, SubflowRecord> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// Runs `f` while printing the telemetry of the subflows from the lab's client addresses
/// (`paths`: a name and a local address each), then each path's last figures; fails if a
/// path never showed.
pub(super) fn watch_during<T>(
    pin: PathBuf,
    paths: [(&'static str, &str); 2],
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut ips = Vec::new();
    for (name, ip) in paths {
        ips.push((name, ip.parse::<IpAddr>()?));
    }
    let watch = TelemetryWatch::start(pin, ips);
    let result = f();
    let seen = watch.finish();
    let value = result?;
    for (name, _) in paths {
        let record = seen
            .get(name)
            .with_context(|| format!("mptcpd's telemetry never showed path {name}"))?;
        println!(
            "lab: telemetry, path {name}, last seen: {}",
            figures(record)
        );
    }
    Ok(value)
}

/// One record's figures on one line.
fn figures(record: &SubflowRecord) -> String {
    format!(
        "{} -> {} srtt {:.2} ms rttvar {:.2} ms cwnd {} acked {} B received {} B \
         retransmissions {} RTOs {}",
        record.local(),
        record.remote(),
        f64::from(record.srtt_us) / 1000.0,
        f64::from(record.rttvar_us) / 1000.0,
        record.snd_cwnd,
        record.bytes_acked,
        record.bytes_received,
        record.total_retrans,
        record.rto_count,
    )
}
