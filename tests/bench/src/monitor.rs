//! `ip mptcp monitor` as a peer: how many events iproute2 prints for the same storm.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    process::{Child, Stdio},
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use mptcpd_tests::{net::netns::NetNs, sockets::mptcp};

/// Lines printed so far, by event name, with the times of the first and the last.
#[derive(Debug, Clone, Default)]
pub(crate) struct Printed {
    /// Lines per event name (`CREATED`, `SF_ESTABLISHED`, `UNKNOWN 15`, ...).
    pub(crate) by_kind: BTreeMap<String, u64>,
    /// All lines.
    pub(crate) total: u64,
    /// When the first line was read.
    pub(crate) first: Option<Instant>,
    /// When the last line was read.
    pub(crate) last: Option<Instant>,
}

impl Printed {
    /// CLOSED lines: one per connection.
    #[must_use]
    pub(crate) fn closed(&self) -> u64 {
        self.by_kind.get("CLOSED").copied().unwrap_or(0)
    }
}

/// A running `ip mptcp monitor` in a namespace; killed on drop.
#[derive(Debug)]
pub(crate) struct Monitor {
    child: Child,
    printed: Arc<Mutex<Printed>>,
    reader: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts the monitor in `netns` and returns once it prints events: it opens and closes
    /// an MPTCP listener on `marker` until the monitor shows it, then clears the count.
    pub(crate) fn start(netns: &NetNs, marker: SocketAddr) -> anyhow::Result<Self> {
        let mut child = netns
            .command("ip")?
            .args(["mptcp", "monitor"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ip mptcp monitor")?;
        let stdout = child.stdout.take().context("monitor stdout")?;
        let printed = Arc::new(Mutex::new(Printed::default()));
        let reader = {
            let printed = Arc::clone(&printed);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let now = Instant::now();
                    let mut p = printed.lock().unwrap_or_else(PoisonError::into_inner);
                    *p.by_kind.entry(kind(&line)).or_default() += 1;
                    p.total += 1;
                    p.first.get_or_insert(now);
                    p.last = Some(now);
                }
            })
        };
        let monitor = Self {
            child,
            printed,
            reader: Some(reader),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while monitor.printed().total == 0 {
            if Instant::now() > deadline {
                bail!("ip mptcp monitor printed nothing");
            }
            netns.run(|| mptcp::listen(marker).map(drop))??;
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let the marker's events arrive before clearing.
        std::thread::sleep(Duration::from_millis(100));
        monitor.clear();
        Ok(monitor)
    }

    /// What was printed since the last [`Self::clear`].
    #[must_use]
    pub(crate) fn printed(&self) -> Printed {
        self.printed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Starts counting from zero.
    pub(crate) fn clear(&self) {
        *self.printed.lock().unwrap_or_else(PoisonError::into_inner) = Printed::default();
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _waited = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _joined = reader.join();
        }
    }
}

/// The event name of a monitor line: `[       CREATED] token=...` gives `CREATED`.
fn kind(line: &str) -> String {
    line.trim_start()
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map_or(line, |(name, _)| name)
        .trim()
        .to_owned()
}
