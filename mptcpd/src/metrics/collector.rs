//! What a scrape reads: the daemon's counters, the connection table's subflows summed per
//! path, and the subflow telemetry's counters, encoded as `OpenMetrics` text.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
};

use mptcpd_bpf::TelemetryStatsReader;
use mptcpd_common::Chain;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, text},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge, histogram::Histogram},
    registry::{Registry, Unit},
};

use super::{
    interfaces::Interfaces,
    paths::{LiveSubflow, PathLabels, PathRow, Paths, SubflowKey, Totals},
};
use crate::{connections::Connections, plugins::Decisions, stats::Stats};

/// Where the figures come from.
pub(crate) struct Sources {
    /// The connection table (subflows and their telemetry figures).
    pub(crate) connections: Connections,
    /// The daemon's counters.
    pub(crate) stats: Arc<Stats>,
    /// How many endpoints the daemon owns now.
    pub(crate) endpoints_owned: Box<dyn Fn() -> usize + Send + Sync>,
    /// The subflow telemetry's counters, when it runs.
    pub(crate) telemetry: Option<TelemetryStatsReader>,
    /// The plugins' path-health decisions.
    pub(crate) decisions: Decisions,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("connections", &self.connections)
            .field("stats", &self.stats)
            .field("telemetry", &self.telemetry)
            .field("decisions", &self.decisions)
            .finish_non_exhaustive()
    }
}

/// The registry the server encodes: one collector, read at each scrape.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub(crate) fn new(sources: Sources) -> Self {
        let mut registry = Registry::with_prefix("mptcpd");
        registry.register_collector(Box::new(DaemonCollector {
            sources,
            paths: Mutex::default(),
        }));
        Self { registry }
    }

    /// The `OpenMetrics` text of a scrape (ends with `# EOF`).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = text::encode(&mut out, &self.registry) {
            // Writing to a String fails only if an encoder refuses a value: say so, serve
            // what there is.
            tracing::warn!("metrics: encoding failed: {e}");
        }
        out
    }
}

#[derive(Debug)]
struct DaemonCollector {
    sources: Sources,
    paths: Mutex<Paths>,
}

impl Collector for DaemonCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Sources {
            connections,
            stats,
            endpoints_owned,
            telemetry,
            decisions,
        } = &self.sources;
        let stats = stats.snapshot();
        one(
            &mut encoder,
            "pm_events",
            "mptcp_pm events handled",
            &ConstCounter::new(stats.pm_events),
        )?;
        one(
            &mut encoder,
            "pm_overruns",
            "overruns of the mptcp_pm event socket (events the kernel dropped; each leads to a resync)",
            &ConstCounter::new(stats.overruns),
        )?;
        one(
            &mut encoder,
            "plugin_errors",
            "events a plugin failed to handle (it panicked)",
            &ConstCounter::new(stats.plugin_errors),
        )?;
        one(
            &mut encoder,
            "endpoints_owned",
            "path-manager endpoints this daemon added and owns",
            &ConstGauge::new(endpoints_owned() as u64),
        )?;
        let connections = connections.all();
        one(
            &mut encoder,
            "connections",
            "MPTCP connections open in the daemon's network namespace",
            &ConstGauge::new(connections.len() as u64),
        )?;
        if let Some(telemetry) = telemetry {
            encode_telemetry(&mut encoder, telemetry)?;
        }
        super::health::encode(&mut encoder, decisions)?;
        self.encode_paths(&mut encoder, &connections)
    }
}

impl DaemonCollector {
    fn encode_paths(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        connections: &[mptcpd_plugin::ConnectionView],
    ) -> std::fmt::Result {
        let mut names = Interfaces::default();
        let live: Vec<LiveSubflow> = connections
            .iter()
            .flat_map(|c| c.subflows.iter().map(move |s| (c.token, s)))
            .map(|(token, s)| LiveSubflow {
                key: SubflowKey {
                    token,
                    local: s.local,
                    remote: s.remote,
                },
                path: PathLabels {
                    address: s.local.ip().to_string(),
                    interface: names.name(s.if_index, s.local.ip()),
                },
                figures: s.figures,
            })
            .collect();
        let mut paths = self.paths.lock().unwrap_or_else(PoisonError::into_inner);
        let rows = paths.scrape(&live);
        let mut subflows =
            encoder.encode_descriptor("path_subflows", "subflows open", None, MetricType::Gauge)?;
        for (labels, row) in &rows {
            ConstGauge::new(row.subflows).encode(subflows.encode_family(labels)?)?;
        }
        per_path(
            encoder,
            (
                "path_acked",
                "bytes the peers acknowledged",
                Some(Unit::Bytes),
            ),
            MetricType::Counter,
            &rows,
            |(totals, _)| ConstCounter::new(totals.bytes_acked),
        )?;
        per_path(
            encoder,
            ("path_received", "bytes received", Some(Unit::Bytes)),
            MetricType::Counter,
            &rows,
            |(totals, _)| ConstCounter::new(totals.bytes_received),
        )?;
        per_path(
            encoder,
            ("path_retransmissions", "segments retransmitted", None),
            MetricType::Counter,
            &rows,
            |(totals, _)| ConstCounter::new(totals.retransmissions),
        )?;
        per_path(
            encoder,
            ("path_rtos", "retransmission timeouts that fired", None),
            MetricType::Counter,
            &rows,
            |(totals, _)| ConstCounter::new(totals.rtos),
        )?;
        per_path(
            encoder,
            (
                "path_rtt",
                "smoothed RTT of each open subflow, observed at each scrape",
                Some(Unit::Seconds),
            ),
            MetricType::Histogram,
            &rows,
            |(_, rtt)| HistogramRef(rtt),
        )
    }
}

/// The subflow telemetry's own counters.
fn encode_telemetry(
    encoder: &mut DescriptorEncoder<'_>,
    telemetry: &TelemetryStatsReader,
) -> std::fmt::Result {
    let t = match telemetry.read() {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!("metrics: telemetry counters: {}", Chain(&e));
            return Ok(());
        }
    };
    one(
        encoder,
        "telemetry_evictions",
        "subflow records the telemetry map evicted while their subflow lived",
        &ConstCounter::new(t.evicted),
    )?;
    one(
        encoder,
        "telemetry_events_lost",
        "telemetry events lost on a full ring buffer",
        &ConstCounter::new(t.events_lost),
    )
}

/// A metric without labels.
fn one(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> std::fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A family with one metric per measured path.
fn per_path<'r, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help, unit): (&str, &str, Option<Unit>),
    metric_type: MetricType,
    rows: &BTreeMap<PathLabels, PathRow<'r>>,
    metric: impl Fn((Totals, &'r Histogram)) -> M,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), metric_type)?;
    for (labels, row) in rows {
        if let Some(measured) = row.measured {
            metric(measured).encode(family.encode_family(labels)?)?;
        }
    }
    Ok(())
}

/// A borrowed histogram, encoded as the histogram.
struct HistogramRef<'a>(&'a Histogram);

impl EncodeMetric for HistogramRef<'_> {
    fn encode(&self, encoder: prometheus_client::encoding::MetricEncoder<'_>) -> std::fmt::Result {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mptcp_pm::{Connection, Event, EventFlags, Subflow};

    use super::{Metrics, Sources};
    use crate::{connections::Connections, plugins::Decisions, stats::Stats};

    #[test]
    fn a_scrape_has_every_family_per_path_and_ends_with_eof() {
        let connections = Connections::new();
        let stats = Arc::new(Stats::default());
        let metrics = Metrics::new(Sources {
            connections: connections.clone(),
            stats: Arc::clone(&stats),
            endpoints_owned: Box::new(|| 2),
            telemetry: None,
            decisions: Decisions::default(),
        });
        let initial = Connection {
            token: 7,
            local: "[::ffff:127.0.0.1]:4000".parse().unwrap(),
            remote: "198.51.100.2:80".parse().unwrap(),
            local_id: Some(0),
            remote_id: Some(0),
            flags: EventFlags::empty(),
        };
        let joined = Subflow {
            token: 7,
            local: "127.0.0.1:4001".parse().unwrap(),
            remote: "198.51.100.2:80".parse().unwrap(),
            local_id: 1,
            remote_id: 0,
            backup: false,
            if_idx: Some(1),
            error: None,
            reset_reason: None,
            reset_flags: None,
        };
        for event in [Event::Created(initial), Event::SubflowEstablished(joined)] {
            stats.pm_event();
            connections.on_pm_event(&event);
        }
        stats.overrun();
        let text = metrics.render();
        for line in [
            "mptcpd_pm_events_total 2",
            "mptcpd_pm_overruns_total 1",
            "mptcpd_plugin_errors_total 0",
            "mptcpd_endpoints_owned 2",
            "mptcpd_connections 1",
            // Both subflows on loopback: the initial one named by its address.
            "mptcpd_path_subflows{address=\"127.0.0.1\",interface=\"lo\"} 2",
            // No telemetry: the families, without samples.
            "# TYPE mptcpd_path_acked_bytes counter",
            "# TYPE mptcpd_path_received_bytes counter",
            "# TYPE mptcpd_path_retransmissions counter",
            "# TYPE mptcpd_path_rtos counter",
            "# UNIT mptcpd_path_rtt_seconds seconds",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(!text.contains("token"), "no token in labels");
        assert!(
            !text.contains("telemetry"),
            "no telemetry families without it"
        );
        assert!(
            !text.contains("_bytes_total{"),
            "no zeros for unmeasured paths"
        );
    }
}
