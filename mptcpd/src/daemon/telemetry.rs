//! Optional eBPF telemetry: started when the kernel and privileges allow it; otherwise one line
//! says why and the daemon goes on without it.

use std::path::PathBuf;

use mptcpd_bpf::{EbpfError, PinDir, SockObserver, cgroup};
use mptcpd_common::Chain;

use crate::{config::Config, connections::Connections};

/// The running observer and the pins that expose it.
pub(super) struct Telemetry {
    // Field order is drop order: unpin, then detach.
    _pins: Option<PinDir>,
    #[cfg_attr(
        not(feature = "metrics"),
        expect(
            dead_code,
            reason = "held for its drop (detaches the program); read by the metrics"
        )
    )]
    subflows: Option<super::subflows::Subflows>,
    observer: SockObserver,
}

impl Telemetry {
    /// Starts the observer and, with a cgroup configured, the subflow telemetry, whose
    /// records and events go to `connections`.
    pub(super) fn start(config: &Config, connections: &Connections) -> Option<Self> {
        let cgroup = match config
            .observe_cgroup
            .clone()
            .map_or_else(cgroup::cgroup2_root, Ok)
        {
            Ok(dir) => dir,
            Err(e) => {
                tracing::warn!("socket observer off: cgroup v2: {}", Chain(&e));
                return None;
            }
        };
        let observer = match SockObserver::attach(&cgroup) {
            Ok(observer) => observer,
            Err(e) if e.is_permission_denied() => {
                tracing::warn!(
                    "socket observer off: BPF not permitted ({}); needs CAP_BPF and CAP_NET_ADMIN",
                    Chain(&e)
                );
                return None;
            }
            Err(e) => {
                tracing::error!("socket observer off: {}", Chain(&e));
                return None;
            }
        };
        tracing::info!("socket observer attached to cgroup {}", cgroup.display());
        let mut pins = match pin(&observer, &config.bpf_pin_dir) {
            Ok((pins, path)) => {
                tracing::info!("socket counts pinned at {}", path.display());
                Some(pins)
            }
            Err(e) => {
                tracing::warn!("socket counts not pinned: {}", Chain(&e));
                None
            }
        };
        // Only for a cgroup named in the configuration: off by default.
        let subflows = config
            .observe_cgroup
            .is_some()
            .then(|| super::subflows::Subflows::start(&cgroup, pins.as_mut(), connections))
            .flatten();
        Some(Self {
            _pins: pins,
            subflows,
            observer,
        })
    }

    /// The subflow telemetry's counters, for the metrics; `None` when it is off (one line
    /// says why if it cannot be read).
    #[cfg(feature = "metrics")]
    pub(super) fn stats_reader(&self) -> Option<mptcpd_bpf::TelemetryStatsReader> {
        self.subflows
            .as_ref()?
            .stats_reader()
            .inspect_err(|e| tracing::warn!("telemetry counters not exported: {}", Chain(e)))
            .ok()
    }

    pub(super) fn log_summary(&self) {
        match self.observer.counts() {
            Ok(counts) => {
                let (tcp, mptcp) = counts
                    .values()
                    .fold((0_u64, 0_u64), |(t, m), c| (t + c.tcp, m + c.mptcp));
                tracing::info!(
                    "socket observer: {} cgroups, {tcp} TCP and {mptcp} MPTCP stream sockets",
                    counts.len()
                );
            }
            Err(e) => tracing::warn!("socket observer: {}", Chain(&e)),
        }
    }
}

fn pin(observer: &SockObserver, dir: &std::path::Path) -> Result<(PinDir, PathBuf), EbpfError> {
    let mut pins = PinDir::open(dir)?;
    let path = observer.pin_counts(&mut pins)?;
    Ok((pins, path))
}
