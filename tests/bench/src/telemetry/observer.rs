//! The observing side: the telemetry program attached to the benchmark's cgroup, its ring
//! buffer drained on a thread of its own as the daemon would (each event stamped on arrival),
//! and this process's resident memory.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{Receiver, channel},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use mptcpd_bpf::{Telemetry, TelemetryEvent};
use mptcpd_tests::{ebpf::cgroup::TestCgroup, net::netns::NetNs};

/// The program on the cgroup, and the thread reading its events of one namespace.
pub(crate) struct Observer {
    pub(crate) telemetry: Telemetry,
    pub(crate) netns_cookie: u64,
    /// Events as they arrived, with the time they did.
    pub(crate) events: Receiver<(Instant, TelemetryEvent)>,
    /// Events read so far.
    pub(crate) drained: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    drain: Option<JoinHandle<()>>,
}

impl Observer {
    /// Attaches the program to `cgroup` and starts reading the events of `netns`; they are
    /// kept for [`Self::events`] if `keep` (else only counted, as a long run needs).
    pub(crate) fn attach(cgroup: &TestCgroup, netns: &NetNs, keep: bool) -> anyhow::Result<Self> {
        let mut telemetry = Telemetry::attach(cgroup.path()).context("attaching telemetry")?;
        let netns_cookie = netns
            .run(mptcpd_bpf::netns_cookie)??
            .context("a kernel without SO_NETNS_COOKIE")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut ring = rt.block_on(async { telemetry.events(netns_cookie) })?;
        let (tx, events) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let drained = Arc::new(AtomicU64::new(0));
        let (thread_stop, thread_drained) = (Arc::clone(&stop), Arc::clone(&drained));
        let drain = std::thread::spawn(move || {
            rt.block_on(async {
                while !thread_stop.load(Ordering::Relaxed) {
                    // Wakes now and then to notice the stop.
                    let Ok(next) =
                        tokio::time::timeout(Duration::from_millis(100), ring.next()).await
                    else {
                        continue;
                    };
                    let Ok(event) = next else { return };
                    thread_drained.fetch_add(1, Ordering::Relaxed);
                    if keep {
                        // Nobody listening any more is fine: the count is what remains.
                        let _sent = tx.send((Instant::now(), event));
                    }
                }
            });
        });
        Ok(Self {
            telemetry,
            netns_cookie,
            events,
            drained,
            stop,
            drain: Some(drain),
        })
    }

    /// Records of the namespace now.
    pub(crate) fn entries(&self) -> anyhow::Result<usize> {
        Ok(self.telemetry.subflows(self.netns_cookie)?.len())
    }

    /// Forgets the events that came so far.
    pub(crate) fn discard_events(&self) {
        while self.events.try_recv().is_ok() {}
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(drain) = self.drain.take() {
            let _joined = drain.join();
        }
    }
}

/// This process's resident memory (`VmRSS`), KiB.
pub(crate) fn rss_kib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/self/status")
}
