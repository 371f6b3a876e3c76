//! The connection table itself: pure bookkeeping of `mptcp_pm` events.

use std::collections::{BTreeMap, BTreeSet};

use mptcp_pm::{Event, SubflowEnds as _, Token, canonical};
use mptcpd_plugin::{ConnectionView, SubflowView};

use crate::diag::{MptcpSocket, wire::state};

/// Connections by token.
#[derive(Debug, Default)]
pub struct Table {
    connections: BTreeMap<Token, ConnectionView>,
    /// Connections whose fallback to TCP was reported (once each).
    fallen_back: BTreeSet<Token>,
}

impl Table {
    /// The number of connections.
    #[must_use]
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// Every connection, by token order.
    #[must_use]
    pub fn all(&self) -> Vec<ConnectionView> {
        self.connections.values().cloned().collect()
    }

    /// One connection.
    #[must_use]
    pub fn get(&self, token: Token) -> Option<ConnectionView> {
        self.connections.get(&token).cloned()
    }

    fn remove(&mut self, token: Token) -> bool {
        self.fallen_back.remove(&token);
        self.connections.remove(&token).is_some()
    }

    /// After lost `mptcp_pm` events: reconciles the table with `live`, the kernel's list
    /// (`crate::diag::connections`). Connections the list no longer has (or has closed) go;
    /// live ones the table missed come in with their initial subflow (what a dump tells; their
    /// other subflows' events were lost). True if anything changed.
    pub fn resync(&mut self, live: &[MptcpSocket]) -> bool {
        let alive: BTreeMap<Token, &MptcpSocket> = live
            .iter()
            .filter(|s| s.token != 0 && !s.gone())
            .map(|s| (s.token, s))
            .collect();
        let gone: Vec<Token> = self
            .connections
            .keys()
            .filter(|t| !alive.contains_key(t))
            .copied()
            .collect();
        let mut changed = false;
        for token in gone {
            changed |= self.remove(token);
        }
        for (token, socket) in alive {
            if self.connections.contains_key(&token) {
                continue;
            }
            let (local, remote) = (canonical(socket.local), canonical(socket.remote));
            let mut view = ConnectionView::new(token, local, remote);
            view.established = socket.state == state::ESTABLISHED;
            view.subflows.push(SubflowView::new(local, remote));
            self.connections.insert(token, view);
            changed = true;
        }
        changed
    }

    /// The connections of `views` (read with their figures) whose fallback to TCP is seen
    /// for the first time.
    pub fn new_fallbacks(&mut self, views: &[ConnectionView]) -> Vec<ConnectionView> {
        views
            .iter()
            .filter(|v| v.mptcp.is_some_and(|m| m.fallback))
            .filter(|v| self.connections.contains_key(&v.token) && self.fallen_back.insert(v.token))
            .cloned()
            .collect()
    }

    /// Applies `event`; true if a connection or subflow appeared or went.
    pub fn apply(&mut self, event: &Event) -> bool {
        match event {
            // The kernel may send a connection's ESTABLISHED after its CLOSED: only CREATED
            // makes an entry (as the plugin host routes them).
            Event::Established(c) if !self.connections.contains_key(&c.token) => false,
            Event::Created(c) | Event::Established(c) => {
                let c = (*c).canonical();
                let established = matches!(event, Event::Established(_));
                let entry = self.connections.entry(c.token);
                let fresh = matches!(entry, std::collections::btree_map::Entry::Vacant(_));
                let view = entry.or_insert_with(|| {
                    let mut view = ConnectionView::new(c.token, c.local, c.remote);
                    let mut initial = SubflowView::new(c.local, c.remote);
                    initial.local_id = c.local_id;
                    initial.remote_id = c.remote_id;
                    view.subflows.push(initial);
                    view
                });
                view.server_side = c.server_side();
                view.established |= established;
                fresh
            }
            Event::Closed { token } => self.remove(*token),
            Event::SubflowEstablished(s) => {
                let s = (*s).canonical();
                let Some(view) = self.connections.get_mut(&s.token) else {
                    return false;
                };
                let mut sub = SubflowView::new(s.local, s.remote);
                sub.local_id = Some(s.local_id);
                sub.remote_id = Some(s.remote_id);
                sub.if_index = s.if_idx.and_then(|i| u32::try_from(i).ok());
                sub.backup = s.backup;
                if let Some(known) = view
                    .subflows
                    .iter_mut()
                    .find(|v| v.local == s.local && v.remote == s.remote)
                {
                    *known = sub;
                    false
                } else {
                    view.subflows.push(sub);
                    true
                }
            }
            Event::SubflowClosed(s) => {
                let s = (*s).canonical();
                let Some(view) = self.connections.get_mut(&s.token) else {
                    return false;
                };
                let before = view.subflows.len();
                view.subflows
                    .retain(|v| !(v.local == s.local && v.remote == s.remote));
                view.subflows.len() != before
            }
            Event::SubflowPriority(s) => {
                let s = (*s).canonical();
                if let Some(sub) = self.connections.get_mut(&s.token).and_then(|v| {
                    v.subflows
                        .iter_mut()
                        .find(|v| v.local == s.local && v.remote == s.remote)
                }) {
                    sub.backup = s.backup;
                }
                false
            }
            Event::Announced(_)
            | Event::Removed { .. }
            | Event::ListenerCreated(_)
            | Event::ListenerClosed(_)
            | Event::Other(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use mptcp_pm::{Connection, Event, EventFlags, Subflow};
    use mptcpd_plugin::MptcpFigures;

    use super::Table;
    use crate::diag::{InfoFlags, MptcpSocket, wire::state};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn subflow(local: &str, backup: bool) -> Subflow {
        Subflow {
            token: 7,
            local: addr(local),
            remote: addr("198.51.100.2:80"),
            local_id: 2,
            remote_id: 0,
            backup,
            if_idx: Some(3),
            error: None,
            reset_reason: None,
            reset_flags: None,
        }
    }

    #[test]
    fn subflows_join_and_leave_their_connection_and_closed_removes_it() {
        let mut table = Table::default();
        let initial = Connection {
            token: 7,
            local: addr("[::ffff:192.0.2.1]:4000"),
            remote: addr("198.51.100.2:80"),
            local_id: Some(0),
            remote_id: Some(0),
            flags: EventFlags::empty(),
        };
        assert!(table.apply(&Event::Created(initial)));
        assert!(!table.apply(&Event::Established(initial)));
        assert!(table.apply(&Event::SubflowEstablished(subflow(
            "203.0.113.1:5000",
            false
        ))));
        assert!(!table.apply(&Event::SubflowPriority(subflow("203.0.113.1:5000", true))));
        let view = table.get(7).unwrap();
        assert!(view.established);
        assert_eq!(
            view.local,
            addr("192.0.2.1:4000"),
            "IPv4-mapped made canonical"
        );
        let locals: Vec<_> = view.subflows.iter().map(|s| (s.local, s.backup)).collect();
        assert_eq!(
            locals,
            [
                (addr("192.0.2.1:4000"), false),
                (addr("203.0.113.1:5000"), true)
            ]
        );
        assert!(table.apply(&Event::SubflowClosed(subflow("203.0.113.1:5000", true))));
        assert_eq!(table.get(7).unwrap().subflows.len(), 1);
        assert!(table.apply(&Event::Closed { token: 7 }));
        assert!(table.is_empty());
        assert!(!table.apply(&Event::Closed { token: 7 }), "unknown token");
        assert!(
            !table.apply(&Event::Established(initial)),
            "an ESTABLISHED after CLOSED"
        );
        assert!(table.is_empty());
    }

    fn live(token: u32, local: &str, state: u8, orphan: bool) -> MptcpSocket {
        MptcpSocket {
            state,
            local: addr(local),
            remote: addr("[::ffff:198.51.100.2]:80"),
            token,
            flags: InfoFlags::REMOTE_KEY_RECEIVED,
            orphan,
            retransmits: None,
            bytes_retrans: None,
            fully_established: None,
        }
    }

    fn created(token: u32, local: &str) -> Event {
        Event::Created(Connection {
            token,
            local: addr(local),
            remote: addr("198.51.100.2:80"),
            local_id: Some(0),
            remote_id: Some(0),
            flags: EventFlags::empty(),
        })
    }

    #[test]
    fn a_resync_drops_connections_gone_and_adds_those_missed() {
        let mut table = Table::default();
        for (token, local) in [
            (1, "192.0.2.1:1001"),
            (2, "192.0.2.1:1002"),
            (3, "192.0.2.1:1003"),
        ] {
            assert!(table.apply(&created(token, local)));
        }
        assert!(table.apply(&Event::SubflowEstablished(Subflow {
            token: 2,
            ..subflow("203.0.113.1:5000", false)
        })));
        let live = [
            // 1: not listed (its CLOSED was lost). 2: still there, with its subflows.
            live(2, "[::ffff:192.0.2.1]:1002", state::ESTABLISHED, false),
            // 3: closed by its owner and shutting down: gone.
            live(3, "192.0.2.1:1003", state::FIN_WAIT1, true),
            // 4: never seen (its CREATED was lost): added, canonical, with its initial subflow.
            live(4, "[::ffff:192.0.2.1]:1004", state::ESTABLISHED, false),
            // 5: not accepted yet (an orphan not closing): alive. 0: no token, left out.
            live(5, "192.0.2.1:1005", state::SYN_SENT, true),
            live(0, "192.0.2.1:1006", state::ESTABLISHED, false),
        ];
        assert!(table.resync(&live));
        let tokens: Vec<u32> = table.all().iter().map(|v| v.token).collect();
        assert_eq!(tokens, [2, 4, 5]);
        assert_eq!(table.get(2).unwrap().subflows.len(), 2, "kept as it was");
        let added = table.get(4).unwrap();
        assert!(added.established);
        assert_eq!(
            (added.local, added.remote),
            (addr("192.0.2.1:1004"), addr("198.51.100.2:80"))
        );
        assert_eq!(added.subflows.len(), 1);
        assert!(!table.get(5).unwrap().established);
        assert!(!table.resync(&live), "nothing more to do");
    }

    #[test]
    fn a_fallback_is_reported_once_per_connection() {
        let mut table = Table::default();
        assert!(table.apply(&created(7, "192.0.2.1:1000")));
        let mut view = table.get(7).unwrap();
        assert!(table.new_fallbacks(&[view.clone()]).is_empty(), "not read");
        let mut figures = MptcpFigures::default();
        view.mptcp = Some(figures);
        assert!(
            table.new_fallbacks(&[view.clone()]).is_empty(),
            "not fallen back"
        );
        figures.fallback = true;
        view.mptcp = Some(figures);
        assert_eq!(table.new_fallbacks(&[view.clone()]), [view.clone()]);
        assert!(table.new_fallbacks(&[view.clone()]).is_empty(), "once");
        // Closed and reopened with the same token: a new connection, reported again.
        assert!(table.apply(&Event::Closed { token: 7 }));
        assert!(table.new_fallbacks(&[view.clone()]).is_empty(), "unknown");
        assert!(table.apply(&created(7, "192.0.2.1:1000")));
        assert_eq!(table.new_fallbacks(&[view.clone()]).len(), 1);
    }
}
