//! The connection table itself: pure bookkeeping of `mptcp_pm` events.

use std::collections::BTreeMap;

use mptcp_pm::{Event, SubflowEnds as _, Token};
use mptcpd_plugin::{ConnectionView, SubflowView};

/// Connections by token.
#[derive(Debug, Default)]
pub struct Table {
    connections: BTreeMap<Token, ConnectionView>,
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
            Event::Closed { token } => self.connections.remove(token).is_some(),
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

    use super::Table;

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
}
