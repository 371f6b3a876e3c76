//! The plugins' path-health decisions as metrics: a counter per plugin and outcome, and the
//! current judgement of every address judged, one gauge per state (1 for the address's
//! state, 0 for the others: the state set as a gauge, which Prometheus reads).

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

use crate::plugins::Decisions;
use mptcpd_plugin::PathHealth;

/// Every state, in the order the samples go.
const STATES: [PathHealth; 3] = [PathHealth::Healthy, PathHealth::Degraded, PathHealth::Dead];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    plugin: String,
    /// The state the address was judged to be in.
    to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    /// The local IP address judged (IPv4-mapped addresses as IPv4).
    address: String,
    state: String,
}

/// `mptcpd_health_decisions_total{plugin,to}` and `mptcpd_path_health{address,state}`.
pub(super) fn encode(
    encoder: &mut DescriptorEncoder<'_>,
    decisions: &Decisions,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(
        "health_decisions",
        "path-health decisions plugins took, by plugin and the state decided",
        None,
        MetricType::Counter,
    )?;
    for ((plugin, to), count) in decisions.counts() {
        let labels = DecisionLabels {
            plugin: plugin.to_owned(),
            to: to.as_str().to_owned(),
        };
        ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
    }
    let mut family = encoder.encode_descriptor(
        "path_health",
        "a local address's health as last judged by a plugin: 1 for its state, 0 for the others",
        None,
        MetricType::Gauge,
    )?;
    for decision in decisions.all_latest() {
        for state in STATES {
            let labels = StateLabels {
                address: decision.addr.to_canonical().to_string(),
                state: state.as_str().to_owned(),
            };
            ConstGauge::new(i64::from(decision.to == state))
                .encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{Metrics, Sources};
    use crate::{connections::Connections, plugins::Decisions, stats::Stats};
    use mptcpd_plugin::{PathDecision, PathHealth};

    #[test]
    fn decisions_are_counted_and_each_judged_address_has_its_state() {
        let decisions = Decisions::default();
        let metrics = Metrics::new(Sources {
            connections: Connections::new(),
            stats: Arc::new(Stats::default()),
            endpoints_owned: Box::new(|| 0),
            telemetry: None,
            decisions: decisions.clone(),
        });
        assert!(
            metrics
                .render()
                .contains("# TYPE mptcpd_health_decisions counter\n"),
            "described before any decision"
        );
        for (addr, to) in [
            ("::ffff:192.0.2.1", PathHealth::Degraded),
            ("192.0.2.1", PathHealth::Dead),
            ("198.51.100.1", PathHealth::Degraded),
        ] {
            decisions.record(PathDecision {
                plugin: "health",
                addr: addr.parse().unwrap(),
                from: PathHealth::Healthy,
                to,
                reason: "figures".into(),
                action: "endpoint 1 set backup".into(),
            });
        }
        let text = metrics.render();
        for line in [
            "mptcpd_health_decisions_total{plugin=\"health\",to=\"degraded\"} 2",
            "mptcpd_health_decisions_total{plugin=\"health\",to=\"dead\"} 1",
            "mptcpd_path_health{address=\"192.0.2.1\",state=\"healthy\"} 0",
            "mptcpd_path_health{address=\"192.0.2.1\",state=\"degraded\"} 0",
            "mptcpd_path_health{address=\"192.0.2.1\",state=\"dead\"} 1",
            "mptcpd_path_health{address=\"198.51.100.1\",state=\"degraded\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
        }
        assert!(!text.contains("figures"), "no reason in the labels");
    }
}
