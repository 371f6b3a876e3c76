//! Per-subflow telemetry in the daemon: on only when a cgroup to observe is configured
//! (attached at the root it would add a callback to every TCP connection of the host). Its
//! records of the daemon's own namespace fill the connection view's figures
//! (`crate::connections`); the ring buffer's events of that namespace are logged and become
//! the plugins' telemetry events (`Event::Telemetry`), for the plugin that handles the
//! connection.

use std::sync::Arc;

use mptcp_pm::canonical;
use mptcpd_bpf::{EbpfError, PinDir, SubflowRecord, Telemetry, TelemetryEvents};
use mptcpd_common::Chain;
use mptcpd_common::telemetry::{
    EVENT_RESET, EVENT_RETRANS_BURST, EVENT_RTO, RESET_REASON_UNKNOWN, RESET_RECEIVED, RESET_SENT,
    TelemetryEvent, event_name, reset_direction_name,
};
use mptcpd_plugin::{TelemetryEvent as PluginEvent, TelemetryKind};

use crate::connections::{Connections, ProbedRetransmits, RecordSource, path_figures};

/// The attached program and the task that drains its events; dropping it stops both and
/// takes the records away from the connection view.
pub(super) struct Subflows {
    events: tokio::task::JoinHandle<()>,
    connections: Connections,
    #[cfg_attr(
        not(feature = "metrics"),
        expect(dead_code, reason = "read for the metrics only")
    )]
    telemetry: Arc<Telemetry>,
}

/// The records of the daemon's namespace, for the connection view.
struct OwnRecords {
    telemetry: Arc<Telemetry>,
    netns: u64,
}

impl RecordSource for OwnRecords {
    fn records(&self) -> Result<Vec<SubflowRecord>, EbpfError> {
        self.telemetry.subflows(self.netns)
    }

    fn mptcp_retransmits(&self) -> Result<Option<ProbedRetransmits>, EbpfError> {
        // Keyed by token only: another namespace's token never matches one of ours in the join
        // (the view holds only its own namespace's connections).
        self.telemetry.mptcp_retransmits()
    }
}

impl Subflows {
    /// Attaches to `cgroup`, pins into `pins` if given, feeds `connections`; one line and
    /// `None` if it cannot.
    pub(super) fn start(
        cgroup: &std::path::Path,
        pins: Option<&mut PinDir>,
        connections: &Connections,
    ) -> Option<Self> {
        let Some(netns) = mptcpd_bpf::netns_cookie().ok().flatten() else {
            tracing::warn!("subflow telemetry off: no SO_NETNS_COOKIE (Linux 5.14+)");
            return None;
        };
        match Self::try_start(cgroup, pins, netns, connections) {
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
        connections: &Connections,
    ) -> Result<Self, EbpfError> {
        let mut telemetry = Telemetry::attach(cgroup)?;
        for missing in telemetry.missing_sources() {
            tracing::warn!("subflow telemetry: {missing}");
        }
        if let Some(pins) = pins {
            telemetry.pin_maps(pins)?;
        }
        let ring = telemetry.events(netns)?;
        let telemetry = Arc::new(telemetry);
        connections.set_record_source(Some(Arc::new(OwnRecords {
            telemetry: Arc::clone(&telemetry),
            netns,
        })));
        let events = tokio::spawn(forward_events(ring, connections.clone()));
        Ok(Self {
            events,
            connections: connections.clone(),
            telemetry,
        })
    }

    /// The program's counters, for the metrics.
    #[cfg(feature = "metrics")]
    pub(super) fn stats_reader(&self) -> Result<mptcpd_bpf::TelemetryStatsReader, EbpfError> {
        self.telemetry.stats_reader()
    }
}

impl Drop for Subflows {
    fn drop(&mut self) {
        self.events.abort();
        self.connections.set_record_source(None);
    }
}

async fn forward_events(mut events: TelemetryEvents, connections: Connections) {
    loop {
        match events.next().await {
            Ok(event) => {
                log(&event);
                if let Some(event) = plugin_event(&event, &connections) {
                    connections.report(event);
                }
            }
            Err(e) => {
                tracing::warn!("subflow telemetry events stop: {}", Chain(&e));
                return;
            }
        }
    }
}

fn log(event: &TelemetryEvent) {
    let record = &event.record;
    tracing::debug!(
        "subflow {} -> {} token {:#010x}: {} ({}), srtt {} us, cwnd {}, \
         bytes acked {}, retransmissions {}, RTOs {}, reset {} (reason {}), \
         scheduler evaluations {}",
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
        reset_direction_name(record.reset_direction),
        record.reset_reason.cast_signed(),
        record.sched_evaluated,
    );
}

/// The plugins' event for a ring-buffer event, with its connection's token (from the record,
/// else from the view by the subflow's addresses). `None` for an orderly close (the path
/// manager's `SUB_CLOSED` tells plugins) and for a subflow of no known connection.
fn plugin_event(event: &TelemetryEvent, connections: &Connections) -> Option<PluginEvent> {
    let kind = match event.kind {
        EVENT_RTO => TelemetryKind::Rto {
            consecutive: event.detail,
        },
        EVENT_RETRANS_BURST => TelemetryKind::RetransmissionBurst {
            count: event.detail,
        },
        // Who reset and why, where the reset tracepoints saw it (SUB_CLOSED carries MPTCP's
        // own MP_TCPRST reason).
        EVENT_RESET => TelemetryKind::Reset {
            sent: match event.record.reset_direction {
                RESET_SENT => Some(true),
                RESET_RECEIVED => Some(false),
                _ => None,
            },
            reason: (event.record.reset_reason != RESET_REASON_UNKNOWN)
                .then_some(event.record.reset_reason),
        },
        _ => return None,
    };
    let record = &event.record;
    let (local, remote) = (canonical(record.local()), canonical(record.remote()));
    let token = match record.token {
        0 => connections.token_of(local, remote)?,
        token => token,
    };
    Some(PluginEvent::new(
        token,
        local,
        remote,
        kind,
        path_figures(record),
    ))
}

#[cfg(test)]
mod tests {
    use mptcp_pm::{Connection, Event, EventFlags};
    use mptcpd_common::{
        AF_INET,
        telemetry::{EVENT_CLOSED, EVENT_RTO, SubflowRecord, TelemetryEvent},
    };
    use mptcpd_plugin::TelemetryKind;

    use super::plugin_event;
    use crate::connections::Connections;

    fn rto(token: u32, local_port: u16, kind: u32) -> TelemetryEvent {
        TelemetryEvent {
            kind,
            detail: 3,
            time_ns: 1,
            record: SubflowRecord {
                family: AF_INET,
                local_addr: [u32::from_ne_bytes([192, 0, 2, 1]), 0, 0, 0],
                remote_addr: [u32::from_ne_bytes([198, 51, 100, 2]), 0, 0, 0],
                local_port: local_port.into(),
                remote_port: 80,
                token,
                srtt_us: 1234,
                ..SubflowRecord::default()
            },
        }
    }

    #[test]
    fn ring_events_become_plugin_events_of_their_connection() {
        let connections = Connections::new();
        connections.on_pm_event(&Event::Created(Connection {
            token: 7,
            local: "[::ffff:192.0.2.1]:4000".parse().unwrap(),
            remote: "198.51.100.2:80".parse().unwrap(),
            local_id: Some(0),
            remote_id: Some(0),
            flags: EventFlags::empty(),
        }));
        // No token in the record: found by the subflow's addresses.
        let event = plugin_event(&rto(0, 4000, EVENT_RTO), &connections).unwrap();
        assert_eq!(event.token, 7);
        assert_eq!(event.kind, TelemetryKind::Rto { consecutive: 3 });
        assert_eq!(event.local.to_string(), "192.0.2.1:4000");
        assert_eq!(event.figures.srtt_us, 1234);
        // The record's token wins; unknown addresses without one give nothing.
        assert_eq!(
            plugin_event(&rto(9, 4001, EVENT_RTO), &connections).map(|e| e.token),
            Some(9)
        );
        assert_eq!(plugin_event(&rto(0, 4001, EVENT_RTO), &connections), None);
        assert_eq!(
            plugin_event(&rto(7, 4000, EVENT_CLOSED), &connections),
            None
        );
    }
}
