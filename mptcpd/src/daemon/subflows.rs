//! Per-subflow telemetry in the daemon: on only when a cgroup to observe is configured
//! (attached at the root it would add a callback to every TCP connection of the host). For now
//! it pins its records beside the socket counts and logs the ring buffer's events of the
//! daemon's own namespace; joining them with the connection table comes next.

use mptcpd_bpf::{EbpfError, PinDir, Telemetry, TelemetryEvents, TelemetryStatsReader};
use mptcpd_common::Chain;
use mptcpd_common::telemetry::event_name;

/// The attached program and the task that drains its events; dropping it stops both.
pub(super) struct Subflows {
    events: tokio::task::JoinHandle<()>,
    telemetry: Telemetry,
}

impl Subflows {
    /// Attaches to `cgroup`, pins into `pins` if given; one line and `None` if it cannot.
    pub(super) fn start(cgroup: &std::path::Path, pins: Option<&mut PinDir>) -> Option<Self> {
        let Some(netns) = mptcpd_bpf::netns_cookie().ok().flatten() else {
            tracing::warn!("subflow telemetry off: no SO_NETNS_COOKIE (Linux 5.14+)");
            return None;
        };
        match Self::try_start(cgroup, pins, netns) {
            Ok(subflows) => {
                tracing::info!("subflow telemetry attached to cgroup {}", cgroup.display());
                Some(subflows)
            }
            Err(e) => {
                tracing::warn!("subflow telemetry off: {}", Chain(&e));
                None
            }
        }
    }

    fn try_start(
        cgroup: &std::path::Path,
        pins: Option<&mut PinDir>,
        netns: u64,
    ) -> Result<Self, EbpfError> {
        let mut telemetry = Telemetry::attach(cgroup)?;
        if let Some(pins) = pins {
            telemetry.pin_maps(pins)?;
        }
        let events = tokio::spawn(log_events(telemetry.events(netns)?));
        Ok(Self { events, telemetry })
    }

    /// The program's counters, for the metrics.
    pub(super) fn stats_reader(&self) -> Result<TelemetryStatsReader, EbpfError> {
        self.telemetry.stats_reader()
    }
}

impl Drop for Subflows {
    fn drop(&mut self) {
        self.events.abort();
    }
}

async fn log_events(mut events: TelemetryEvents) {
    loop {
        match events.next().await {
            Ok(event) => {
                let record = &event.record;
                tracing::debug!(
                    "subflow {} -> {} token {:#010x}: {} ({}), srtt {} us, cwnd {}, \
                     bytes acked {}, retransmissions {}, RTOs {}",
                    record.local(),
                    record.remote(),
                    record.token,
                    event_name(event.kind),
                    event.detail,
                    record.srtt_us,
                    record.snd_cwnd,
                    record.bytes_acked,
                    record.total_retrans,
                    record.rto_count,
                );
            }
            Err(e) => {
                tracing::warn!("subflow telemetry events stop: {}", Chain(&e));
                return;
            }
        }
    }
}
