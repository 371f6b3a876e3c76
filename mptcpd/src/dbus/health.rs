//! The plugins' path-health decisions as the bus shows them: the manager's and each
//! connection's `PathHealth` (`a{s(ss)}`: address -> state and why).

use std::{collections::BTreeMap, net::IpAddr};

use mptcpd_common::dbus::Judgement;
use mptcpd_plugin::{ConnectionView, PathDecision};

use crate::plugins::Decisions;

/// By address (as text), for a stable order and a cheap comparison.
pub(super) type PathHealth = BTreeMap<String, Judgement>;

fn judgement(decision: &PathDecision) -> Judgement {
    Judgement {
        state: decision.to.as_str().to_owned(),
        reason: format!("{}; {}", decision.reason, decision.action),
    }
}

/// Every address a plugin judged.
pub(super) fn all(decisions: &Decisions) -> PathHealth {
    decisions
        .all_latest()
        .iter()
        .map(|d| (d.addr.to_canonical().to_string(), judgement(d)))
        .collect()
}

/// The judged addresses among the local addresses of `view`'s subflows.
pub(super) fn of_connection(view: &ConnectionView, decisions: &Decisions) -> PathHealth {
    view.subflows
        .iter()
        .map(|s| s.local.ip().to_canonical())
        .filter_map(|addr: IpAddr| Some((addr.to_string(), judgement(&decisions.latest(addr)?))))
        .collect()
}

#[cfg(test)]
mod tests {
    use mptcpd_plugin::{PathHealth as State, SubflowView};

    use super::*;

    #[test]
    fn a_connection_shows_the_judgements_of_its_local_addresses_only() {
        let decisions = Decisions::default();
        for addr in ["::ffff:192.0.2.1", "198.51.100.1"] {
            decisions.record(PathDecision {
                plugin: "health",
                addr: addr.parse().unwrap(),
                from: State::Healthy,
                to: State::Degraded,
                reason: "4/4 subflows bad".into(),
                action: "endpoint 2 set backup".into(),
            });
        }
        let mut view = ConnectionView::new(
            1,
            "192.0.2.1:1000".parse().unwrap(),
            "203.0.113.2:80".parse().unwrap(),
        );
        view.subflows
            .push(SubflowView::new(view.local, view.remote));
        view.subflows.push(SubflowView::new(
            "192.0.2.9:1000".parse().unwrap(),
            view.remote,
        ));
        let shown = of_connection(&view, &decisions);
        assert_eq!(
            shown,
            PathHealth::from([(
                "192.0.2.1".to_owned(),
                Judgement {
                    state: "degraded".into(),
                    reason: "4/4 subflows bad; endpoint 2 set backup".into(),
                }
            )])
        );
        assert_eq!(all(&decisions).len(), 2);
    }
}
