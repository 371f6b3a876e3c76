//! Path managers outside the daemon (`docs/dbus.md`, `RegisterPathManager`): which bus client
//! handles which connections, and what it made that must go when it goes. Pure: the bus
//! methods register and release, the event loop routes each `mptcp_pm` event through
//! [`Claims::route`] before the plugins see it.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use mptcp_pm::{Event, Token, canonical};

/// A client's unique bus name (`:1.42`).
pub(crate) type Owner = Arc<str>;

/// Which new connections a client asks for: every one given must match (none: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) local_port: Option<u16>,
    pub(crate) remote_port: Option<u16>,
    pub(crate) local_address: Option<IpAddr>,
    pub(crate) remote_address: Option<IpAddr>,
}

impl Rule {
    /// Whether a connection from `local` to `remote` (its initial subflow) matches.
    fn matches(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        let Self {
            local_port,
            remote_port,
            local_address,
            remote_address,
        } = self;
        let (local, remote) = (canonical(local), canonical(remote));
        local_port.is_none_or(|p| p == local.port())
            && remote_port.is_none_or(|p| p == remote.port())
            && local_address.is_none_or(|a| a.to_canonical() == local.ip())
            && remote_address.is_none_or(|a| a.to_canonical() == remote.ip())
    }
}

/// A registered client.
#[derive(Debug)]
struct Client {
    name: Owner,
    rule: Rule,
    /// Endpoints it added (`AddEndpoint`), removed when it goes.
    endpoints: Vec<u8>,
    /// Listeners opened for its announcements, closed when it goes.
    listeners: Vec<SocketAddr>,
}

/// What a client left behind: its connections, for the default plugin, and what it made.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Released {
    pub(crate) tokens: Vec<Token>,
    pub(crate) endpoints: Vec<u8>,
    pub(crate) listeners: Vec<SocketAddr>,
}

/// The registered clients, in registration order (the first whose rule matches gets a new
/// connection), and the connections each holds.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    clients: Vec<Client>,
    owners: HashMap<Token, Owner>,
}

impl Claims {
    /// Registers `name` with `rule`, or gives a registered client its new rule (the
    /// connections it holds stay its own).
    pub(crate) fn register(&mut self, name: &str, rule: Rule) {
        if let Some(client) = self.clients.iter_mut().find(|c| &*c.name == name) {
            client.rule = rule;
            return;
        }
        self.clients.push(Client {
            name: name.into(),
            rule,
            endpoints: Vec::new(),
            listeners: Vec::new(),
        });
    }

    /// Whether `name` is registered.
    pub(crate) fn is_registered(&self, name: &str) -> bool {
        self.clients.iter().any(|c| &*c.name == name)
    }

    /// The registered clients' names, in registration order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.clients.iter().map(|c| c.name.to_string()).collect()
    }

    /// Forgets `name` (unregistered, or gone from the bus); `None` if it was not registered.
    pub(crate) fn release(&mut self, name: &str) -> Option<Released> {
        let at = self.clients.iter().position(|c| &*c.name == name)?;
        let client = self.clients.remove(at);
        let mut tokens: Vec<Token> = self
            .owners
            .iter()
            .filter(|(_, owner)| **owner == client.name)
            .map(|(token, _)| *token)
            .collect();
        tokens.sort_unstable();
        self.owners.retain(|_, owner| *owner != client.name);
        Some(Released {
            tokens,
            endpoints: client.endpoints,
            listeners: client.listeners,
        })
    }

    /// Records an endpoint `name` added, if it is registered.
    pub(crate) fn note_endpoint(&mut self, name: &str, id: u8) {
        if let Some(client) = self.clients.iter_mut().find(|c| &*c.name == name) {
            client.endpoints.push(id);
        }
    }

    /// Records a listener opened for `name`'s announcement; `false` if it is not registered
    /// (then nothing is to be opened for it).
    pub(crate) fn note_listener(&mut self, name: &str, addr: SocketAddr) -> bool {
        let Some(client) = self.clients.iter_mut().find(|c| &*c.name == name) else {
            return false;
        };
        client.listeners.push(addr);
        true
    }

    /// Forgets a listener of `name`'s that was closed again (its announcement failed).
    pub(crate) fn forget_listener(&mut self, name: &str, addr: SocketAddr) {
        if let Some(client) = self.clients.iter_mut().find(|c| &*c.name == name)
            && let Some(at) = client.listeners.iter().position(|l| *l == addr)
        {
            client.listeners.remove(at);
        }
    }

    /// Whether `name` holds the connection of `token`.
    pub(crate) fn holds(&self, name: &str, token: Token) -> bool {
        self.owners.get(&token).is_some_and(|o| &**o == name)
    }

    /// The connections `name` holds.
    pub(crate) fn held_by(&self, name: &str) -> Vec<Token> {
        let mut tokens: Vec<Token> = self
            .owners
            .iter()
            .filter(|(_, o)| &***o == name)
            .map(|(t, _)| *t)
            .collect();
        tokens.sort_unstable();
        tokens
    }

    /// The client that handles `event`'s connection, if one does: a new connection
    /// (`CREATED`) goes to the first client whose rule matches it; a claimed connection's
    /// `CLOSED` ends the claim. `None`: the plugins handle it (and every listener event).
    pub(crate) fn route(&mut self, event: &Event) -> Option<Owner> {
        match event {
            Event::Created(c) => {
                let owner = self
                    .clients
                    .iter()
                    .find(|client| client.rule.matches(c.local, c.remote))?
                    .name
                    .clone();
                // A token the kernel reuses is a new connection.
                self.owners.insert(c.token, owner.clone());
                Some(owner)
            }
            Event::Closed { token } => self.owners.remove(token),
            _ => self.owners.get(&event.token()?).cloned(),
        }
    }

    /// After lost events: claimed connections the kernel no longer lists are forgotten
    /// (their `CLOSED` was lost); returns the tokens still claimed, which the plugins must
    /// not be handed.
    pub(crate) fn retain_live(&mut self, live: &[Token]) -> Vec<Token> {
        self.owners.retain(|token, _| live.contains(token));
        self.owners.keys().copied().collect()
    }
}

/// The claims, shared by the bus task and the event loop.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedClaims(Arc<Mutex<Claims>>);

impl SharedClaims {
    /// Nothing panics while holding the lock; if something did, the data is still whole.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Claims> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use mptcp_pm::{Connection, EventFlags, Subflow};

    use super::*;

    fn connection(token: Token, local: &str, remote: &str) -> Connection {
        Connection {
            token,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            local_id: Some(0),
            remote_id: Some(0),
            flags: EventFlags::empty(),
        }
    }

    fn subflow(token: Token) -> Event {
        Event::SubflowEstablished(Subflow {
            token,
            local: "192.0.2.2:40000".parse().unwrap(),
            remote: "203.0.113.1:80".parse().unwrap(),
            local_id: 1,
            remote_id: 0,
            backup: false,
            if_idx: None,
            error: None,
            reset_reason: None,
            reset_flags: None,
        })
    }

    #[test]
    fn new_connections_go_to_the_first_matching_client_and_stay_there_until_closed() {
        let mut claims = Claims::default();
        let web = Rule {
            remote_port: Some(80),
            ..Rule::default()
        };
        claims.register(":1.7", web);
        claims.register(":1.8", Rule::default());
        let to_web = Event::Created(connection(1, "192.0.2.1:40000", "203.0.113.1:80"));
        let other = Event::Created(connection(2, "192.0.2.1:40001", "203.0.113.1:22"));
        assert_eq!(claims.route(&to_web).as_deref(), Some(":1.7"));
        assert_eq!(
            claims.route(&other).as_deref(),
            Some(":1.8"),
            "all the rest"
        );
        assert_eq!(claims.route(&subflow(1)).as_deref(), Some(":1.7"));
        assert!(claims.holds(":1.7", 1) && !claims.holds(":1.8", 1));
        assert_eq!(claims.held_by(":1.8"), [2]);
        assert_eq!(
            claims.route(&Event::Closed { token: 1 }).as_deref(),
            Some(":1.7"),
            "its close still goes to it"
        );
        assert_eq!(claims.route(&subflow(1)), None, "then it is forgotten");
    }

    #[test]
    fn every_criterion_given_must_match_ipv4_mapped_as_ipv4() {
        let rule = Rule {
            local_address: Some("192.0.2.1".parse().unwrap()),
            remote_port: Some(443),
            ..Rule::default()
        };
        let at = |l: &str, r: &str| rule.matches(l.parse().unwrap(), r.parse().unwrap());
        assert!(at("192.0.2.1:1", "203.0.113.1:443"));
        assert!(at("[::ffff:192.0.2.1]:1", "[::ffff:203.0.113.1]:443"));
        assert!(!at("192.0.2.2:1", "203.0.113.1:443"));
        assert!(!at("192.0.2.1:1", "203.0.113.1:80"));
        let remote = Rule {
            remote_address: Some("2001:db8::1".parse().unwrap()),
            local_port: Some(5000),
            ..Rule::default()
        };
        assert!(remote.matches(
            "[2001:db8::2]:5000".parse().unwrap(),
            "[2001:db8::1]:80".parse().unwrap()
        ));
    }

    #[test]
    fn nothing_is_claimed_without_clients_nor_listener_events() {
        let mut claims = Claims::default();
        let created = Event::Created(connection(1, "192.0.2.1:40000", "203.0.113.1:80"));
        assert_eq!(claims.route(&created), None);
        claims.register(":1.7", Rule::default());
        let listener = Event::ListenerCreated(mptcp_pm::Listener {
            local: "192.0.2.1:80".parse().unwrap(),
        });
        assert_eq!(claims.route(&listener), None);
        assert_eq!(claims.route(&subflow(1)), None, "created before the claim");
    }

    #[test]
    fn a_release_hands_back_the_connections_endpoints_and_listeners() {
        let mut claims = Claims::default();
        claims.register(":1.7", Rule::default());
        for token in [3, 1] {
            claims.route(&Event::Created(connection(
                token,
                "192.0.2.1:40000",
                "203.0.113.1:80",
            )));
        }
        claims.note_endpoint(":1.7", 5);
        claims.note_endpoint(":1.9", 6);
        assert!(claims.note_listener(":1.7", "192.0.2.2:4000".parse().unwrap()));
        assert!(!claims.note_listener(":1.9", "192.0.2.2:4000".parse().unwrap()));
        assert_eq!(claims.names(), [":1.7"]);
        assert_eq!(
            claims.release(":1.7"),
            Some(Released {
                tokens: vec![1, 3],
                endpoints: vec![5],
                listeners: vec!["192.0.2.2:4000".parse().unwrap()],
            })
        );
        assert!(!claims.is_registered(":1.7"));
        assert_eq!(claims.release(":1.7"), None, "once");
        assert_eq!(claims.route(&subflow(1)), None, "the plugins' now");
    }

    #[test]
    fn a_second_registration_changes_the_rule_and_keeps_the_connections() {
        let mut claims = Claims::default();
        claims.register(":1.7", Rule::default());
        claims.route(&Event::Created(connection(
            1,
            "192.0.2.1:40000",
            "203.0.113.1:80",
        )));
        let none_of_those = Rule {
            remote_port: Some(1),
            ..Rule::default()
        };
        claims.register(":1.7", none_of_those);
        assert_eq!(claims.names().len(), 1);
        assert!(claims.holds(":1.7", 1));
        let created = Event::Created(connection(2, "192.0.2.1:40001", "203.0.113.1:80"));
        assert_eq!(claims.route(&created), None);
    }

    #[test]
    fn after_lost_events_only_live_claims_stay() {
        let mut claims = Claims::default();
        claims.register(":1.7", Rule::default());
        for token in [1, 2] {
            claims.route(&Event::Created(connection(
                token,
                "192.0.2.1:40000",
                "203.0.113.1:80",
            )));
        }
        assert_eq!(claims.retain_live(&[2, 9]), [2]);
        assert_eq!(claims.held_by(":1.7"), [2]);
    }
}
