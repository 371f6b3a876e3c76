//! The connection table's views as the D-Bus wire types, and which figures are due in the
//! next `FiguresUpdated` signal.

use std::collections::HashMap;

use mptcp_pm::Token;
use mptcpd_common::dbus::{ConnectionFigures, Figures, NO_ID, Subflow};
use mptcpd_plugin::{ConnectionView, PathFigures, SubflowView};
use zbus::zvariant::OwnedObjectPath;

use super::health;
use crate::plugins::Decisions;

/// A subflow as the bus shows it.
pub(super) fn subflow(view: &SubflowView) -> Subflow {
    let SubflowView {
        local,
        remote,
        local_id,
        remote_id,
        if_index,
        backup,
        figures,
        ..
    } = view;
    Subflow {
        local: local.to_string(),
        remote: remote.to_string(),
        local_id: local_id.map_or(NO_ID, i16::from),
        remote_id: remote_id.map_or(NO_ID, i16::from),
        if_index: if_index.unwrap_or(0),
        backup: *backup,
        has_figures: figures.is_some(),
        figures: figures.as_ref().map(self::figures).unwrap_or_default(),
    }
}

/// The figures the bus carries (the others stay in the plugins' view).
fn figures(f: &PathFigures) -> Figures {
    Figures {
        srtt_us: f.srtt_us,
        rttvar_us: f.rttvar_us,
        snd_cwnd: f.snd_cwnd,
        bytes_acked: f.bytes_acked,
        bytes_received: f.bytes_received,
        retransmissions: f.retransmissions,
        rtos: f.rtos,
    }
}

/// What a connection object shows apart from figures: a change here is a property change
/// (`PropertiesChanged`); a change of figures only goes into the rate-limited signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Shape {
    pub(super) established: bool,
    /// The subflows without their figures.
    pub(super) subflows: Vec<Subflow>,
    /// The judgements of its local addresses.
    pub(super) path_health: health::PathHealth,
}

impl Shape {
    pub(super) fn of(view: &ConnectionView, decisions: &Decisions) -> Self {
        Self {
            established: view.established,
            path_health: health::of_connection(view, decisions),
            subflows: view
                .subflows
                .iter()
                .map(|s| Subflow {
                    has_figures: false,
                    figures: Figures::default(),
                    ..subflow(s)
                })
                .collect(),
        }
    }
}

/// The figures last sent per connection, to send only what changed.
#[derive(Debug, Default)]
pub(super) struct Sent {
    last: HashMap<Token, Vec<Subflow>>,
}

impl Sent {
    /// The connections (with their object paths) whose figures changed since the last call,
    /// and only those that have figures; forgets connections that are gone.
    pub(super) fn due(
        &mut self,
        views: &[ConnectionView],
        path: impl Fn(Token) -> Option<OwnedObjectPath>,
    ) -> Vec<ConnectionFigures> {
        let mut due = Vec::new();
        let mut now = HashMap::with_capacity(views.len());
        for view in views {
            let subflows: Vec<Subflow> = view.subflows.iter().map(subflow).collect();
            let changed = self.last.get(&view.token) != Some(&subflows);
            if changed
                && subflows.iter().any(|s| s.has_figures)
                && let Some(path) = path(view.token)
            {
                due.push(ConnectionFigures {
                    path,
                    subflows: subflows.clone(),
                });
            }
            now.insert(view.token, subflows);
        }
        self.last = now;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(token: u32, bytes: Option<u64>) -> ConnectionView {
        let mut view = ConnectionView::new(
            token,
            "192.0.2.1:1000".parse().unwrap(),
            "192.0.2.2:80".parse().unwrap(),
        );
        let mut sub = SubflowView::new(view.local, view.remote);
        sub.local_id = Some(0);
        sub.figures = bytes.map(|b| {
            let mut f = PathFigures::default();
            f.bytes_acked = b;
            f
        });
        view.subflows.push(sub);
        view
    }

    fn path(token: Token) -> Option<OwnedObjectPath> {
        OwnedObjectPath::try_from(format!("/c/{token}")).ok()
    }

    #[test]
    fn figures_are_sent_once_per_change_and_only_with_figures() {
        let mut sent = Sent::default();
        // No figures yet: nothing to carry.
        assert_eq!(sent.due(&[view(1, None)], path), Vec::new());
        let first = sent.due(&[view(1, Some(10)), view(2, None)], path);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].path.as_str(), "/c/1");
        assert_eq!(first[0].subflows[0].figures.bytes_acked, 10);
        assert!(first[0].subflows[0].has_figures);
        assert_eq!(first[0].subflows[0].local_id, 0);
        assert_eq!(first[0].subflows[0].remote_id, NO_ID);
        // Unchanged: nothing; changed: that connection only.
        assert_eq!(sent.due(&[view(1, Some(10))], path), Vec::new());
        let next = sent.due(&[view(1, Some(20))], path);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].subflows[0].figures.bytes_acked, 20);
    }

    #[test]
    fn shape_ignores_figures_but_not_a_judgement() {
        let decisions = Decisions::default();
        let shape = |view| Shape::of(&view, &decisions);
        assert_eq!(shape(view(1, Some(1))), shape(view(1, Some(2))));
        let mut established = view(1, None);
        established.established = true;
        assert_ne!(shape(view(1, None)), shape(established));
        let before = shape(view(1, None));
        decisions.record(mptcpd_plugin::PathDecision {
            plugin: "health",
            addr: "192.0.2.1".parse().unwrap(),
            from: mptcpd_plugin::PathHealth::Healthy,
            to: mptcpd_plugin::PathHealth::Dead,
            reason: "r".into(),
            action: "a".into(),
        });
        assert_ne!(before, shape(view(1, None)));
    }
}
