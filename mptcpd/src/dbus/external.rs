//! The bus side of path managers outside the daemon (`claims`): a client's match rule from
//! its `a{sv}`, its release when it unregisters or leaves the bus (`NameOwnerChanged`), and
//! the details of the events sent to it (`ClaimedEvent`).

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use futures_util::StreamExt as _;
use mptcp_pm::{Event, Token};
use mptcpd_common::Chain;
use mptcpd_plugin::{Commands as _, PathManager as _};
use tokio::sync::mpsc;
use zbus::{
    fdo::DBusProxy,
    zvariant::{OwnedValue, Value},
};

use super::{
    claims::{Rule, SharedClaims},
    errors::ControlError,
};
use crate::plugins::{HostPm, NetlinkPm};

/// The claims, and where released connections go (the event loop, which hands them to the
/// default plugin).
#[derive(Debug, Clone)]
pub(crate) struct External {
    pub(crate) claims: SharedClaims,
    pub(crate) handback: mpsc::UnboundedSender<Vec<Token>>,
}

/// The keys a match rule takes, for the error that names an unknown one.
const KEYS: &str =
    "all (b), local_port (q), remote_port (q), local_address (s), remote_address (s)";

fn invalid(what: String) -> ControlError {
    ControlError::InvalidArgument(what)
}

/// A match rule from `RegisterPathManager`'s argument: every key given must match; none, or
/// `all` true alone, matches every new connection.
pub(crate) fn rule(given: &HashMap<String, OwnedValue>) -> Result<Rule, ControlError> {
    let mut rule = Rule::default();
    let mut all = false;
    for (key, value) in given {
        let wrong = |ty: &str| {
            invalid(format!(
                "match key {key:?} takes {ty}, not {}",
                value.value_signature()
            ))
        };
        let port = || u16::try_from(value).map_err(|_| wrong("q (uint16)"));
        let address = || {
            let text = <&str>::try_from(value).map_err(|_| wrong("s (string)"))?;
            text.parse()
                .map_err(|_| invalid(format!("match key {key:?}: {text:?} is not an IP address")))
        };
        match key.as_str() {
            "all" => all = bool::try_from(value).map_err(|_| wrong("b (boolean)"))?,
            "local_port" => rule.local_port = Some(port()?),
            "remote_port" => rule.remote_port = Some(port()?),
            "local_address" => rule.local_address = Some(address()?),
            "remote_address" => rule.remote_address = Some(address()?),
            _ => {
                return Err(invalid(format!(
                    "unknown match key {key:?} (expected {KEYS})"
                )));
            }
        }
    }
    if all && rule != Rule::default() {
        return Err(invalid(
            "match key \"all\" with other keys: give either all, or the criteria".to_owned(),
        ));
    }
    if !all && given.contains_key("all") {
        return Err(invalid(
            "match key \"all\" false: leave it out and give criteria".to_owned(),
        ));
    }
    Ok(rule)
}

impl External {
    /// Forgets `name`: removes the endpoints it added and closes the listeners opened for
    /// it, and hands its connections back to the default plugin. `None`: not registered.
    pub(crate) async fn release(
        &self,
        name: &str,
        pm: &HostPm<NetlinkPm>,
        why: &str,
    ) -> Option<usize> {
        let released = self.claims.lock().release(name)?;
        for id in &released.endpoints {
            match pm.remove_endpoint(*id).await {
                Ok(()) => {}
                // Removed meanwhile (by the client, or an operator): nothing left to do.
                Err(e) if e.is_not_found() => {}
                Err(e) => tracing::warn!(
                    "D-Bus: removing endpoint {id} of path manager {name}: {}",
                    Chain(&e)
                ),
            }
        }
        for addr in &released.listeners {
            if let Err(e) = pm.close_listener(*addr) {
                tracing::debug!("D-Bus: closing listener {addr} of {name}: {}", Chain(&e));
            }
        }
        let count = released.tokens.len();
        // Closed: the daemon is stopping.
        let _sent = self.handback.send(released.tokens);
        tracing::info!(
            "D-Bus: path manager {name} {why}: {count} connections back to the default \
             plugin, {} endpoints and {} listeners removed",
            released.endpoints.len(),
            released.listeners.len()
        );
        Some(count)
    }

    /// Opens the listener an announcement of `addr` (with a port) needs for joins to reach
    /// it, as the daemon's own plugins do, recorded as `name`'s; nothing for a client that
    /// is not registered (an operator's announcement) or without a port.
    pub(crate) fn listen_for(
        &self,
        name: &str,
        addr: SocketAddr,
        pm: &HostPm<NetlinkPm>,
    ) -> Result<(), ControlError> {
        if addr.port() == 0 || !self.claims.lock().is_registered(name) {
            return Ok(());
        }
        pm.listen(addr)?;
        if !self.claims.lock().note_listener(name, addr) {
            // It went meanwhile.
            pm.close_listener(addr)?;
        }
        Ok(())
    }

    /// Closes the listener [`Self::listen_for`] opened, when the announcement failed.
    pub(crate) fn unlisten(&self, name: &str, addr: SocketAddr, pm: &HostPm<NetlinkPm>) {
        if addr.port() == 0 || !self.claims.lock().is_registered(name) {
            return;
        }
        self.claims.lock().forget_listener(name, addr);
        if let Err(e) = pm.close_listener(addr) {
            tracing::debug!("D-Bus: closing listener {addr} of {name}: {}", Chain(&e));
        }
    }

    /// Refuses a command from a registered client about a connection it does not hold
    /// (another client's, or the plugins'); operators (not registered) may command any.
    pub(crate) fn check_token(&self, name: &str, token: Token) -> Result<(), ControlError> {
        let claims = self.claims.lock();
        if claims.is_registered(name) && !claims.holds(name, token) {
            return Err(ControlError::NotHeld(format!(
                "path manager {name} does not handle connection {token}: it handles the \
                 connections its ClaimedEvent signals named"
            )));
        }
        Ok(())
    }
}

/// Releases every registered client that leaves the bus, until the bus goes.
pub(crate) async fn watch_departures(
    bus: zbus::Connection,
    external: External,
    pm: Arc<HostPm<NetlinkPm>>,
) {
    let changes = match DBusProxy::new(&bus).await {
        Ok(proxy) => proxy.receive_name_owner_changed().await,
        Err(e) => Err(e),
    };
    let mut changes = match changes {
        Ok(changes) => changes,
        Err(e) => {
            tracing::warn!(
                "D-Bus: cannot follow clients leaving the bus ({}): an external path manager \
                 that leaves keeps its connections until it unregisters",
                Chain(&e)
            );
            return;
        }
    };
    while let Some(change) = changes.next().await {
        let Ok(args) = change.args() else {
            continue;
        };
        if args.new_owner().is_none() {
            let name = args.name().to_string();
            external.release(&name, &pm, "left the bus").await;
        }
    }
}

/// `ClaimedEvent`'s arguments: the event's kind and its details by name.
pub(crate) fn details(
    event: &Event,
) -> Option<(&'static str, Token, HashMap<&'static str, Value<'static>>)> {
    let addr = |a: SocketAddr| Value::from(mptcp_pm::canonical(a).to_string());
    let mut details: HashMap<&'static str, Value<'static>> = HashMap::new();
    let (kind, token) = match event {
        Event::Created(c) | Event::Established(c) => {
            details.insert("local", addr(c.local));
            details.insert("remote", addr(c.remote));
            details.insert("server_side", Value::from(c.server_side()));
            let kind = if matches!(event, Event::Created(_)) {
                "created"
            } else {
                "established"
            };
            (kind, c.token)
        }
        Event::Closed { token } => ("closed", *token),
        Event::Announced(a) => {
            let a = a.canonical();
            details.insert("id", Value::from(a.id));
            details.insert("address", Value::from(a.addr.to_string()));
            details.insert("port", Value::from(a.port.unwrap_or(0)));
            ("announced", a.token)
        }
        Event::Removed { token, remote_id } => {
            details.insert("id", Value::from(*remote_id));
            ("removed", *token)
        }
        Event::SubflowEstablished(s) | Event::SubflowClosed(s) | Event::SubflowPriority(s) => {
            details.insert("local", addr(s.local));
            details.insert("remote", addr(s.remote));
            details.insert("local_id", Value::from(s.local_id));
            details.insert("remote_id", Value::from(s.remote_id));
            details.insert("backup", Value::from(s.backup));
            let if_index = s.if_idx.and_then(|i| u32::try_from(i).ok()).unwrap_or(0);
            details.insert("if_index", Value::from(if_index));
            details.insert("error", Value::from(s.error.unwrap_or(0)));
            let kind = match event {
                Event::SubflowEstablished(_) => "subflow_established",
                Event::SubflowClosed(_) => "subflow_closed",
                _ => "subflow_priority",
            };
            (kind, s.token)
        }
        Event::ListenerCreated(_) | Event::ListenerClosed(_) | Event::Other(_) => return None,
    };
    Some((kind, token, details))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, Value<'_>)]) -> HashMap<String, OwnedValue> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    OwnedValue::try_from(v.try_clone().unwrap()).unwrap(),
                )
            })
            .collect()
    }

    fn refusal(pairs: &[(&str, Value<'_>)]) -> String {
        match rule(&given(pairs)) {
            Err(ControlError::InvalidArgument(text)) => text,
            other => panic!("{pairs:?}: {other:?}"),
        }
    }

    #[test]
    fn a_rule_from_its_keys() {
        assert_eq!(rule(&given(&[])).unwrap(), Rule::default());
        assert_eq!(
            rule(&given(&[("all", Value::from(true))])).unwrap(),
            Rule::default()
        );
        let both = rule(&given(&[
            ("remote_port", Value::from(80_u16)),
            ("local_address", Value::from("192.0.2.1")),
        ]))
        .unwrap();
        assert_eq!(
            both,
            Rule {
                remote_port: Some(80),
                local_address: Some("192.0.2.1".parse().unwrap()),
                ..Rule::default()
            }
        );
    }

    #[test]
    fn a_bad_rule_is_refused_naming_the_key_and_what_it_takes() {
        assert_eq!(
            refusal(&[("remote_port", Value::from("80"))]),
            "match key \"remote_port\" takes q (uint16), not s"
        );
        assert_eq!(
            refusal(&[("local_port", Value::from(80_u32))]),
            "match key \"local_port\" takes q (uint16), not u"
        );
        assert!(
            refusal(&[("port", Value::from(80_u16))]).starts_with("unknown match key \"port\"")
        );
        assert_eq!(
            refusal(&[("remote_address", Value::from("example.org"))]),
            "match key \"remote_address\": \"example.org\" is not an IP address"
        );
        assert!(
            refusal(&[
                ("all", Value::from(true)),
                ("remote_port", Value::from(80_u16))
            ])
            .contains("either all")
        );
        assert!(refusal(&[("all", Value::from(false))]).contains("leave it out"));
    }

    #[test]
    fn event_details_carry_the_token_and_canonical_addresses() {
        let event = Event::Created(mptcp_pm::Connection {
            token: 7,
            local: "[::ffff:192.0.2.1]:40000".parse().unwrap(),
            remote: "203.0.113.1:80".parse().unwrap(),
            local_id: Some(0),
            remote_id: Some(0),
            flags: mptcp_pm::EventFlags::SERVER_SIDE,
        });
        let (kind, token, args) = details(&event).unwrap();
        assert_eq!((kind, token), ("created", 7));
        assert_eq!(args["local"], Value::from("192.0.2.1:40000"));
        assert_eq!(args["server_side"], Value::from(true));
        let listener = Event::ListenerClosed(mptcp_pm::Listener {
            local: "192.0.2.1:80".parse().unwrap(),
        });
        assert!(details(&listener).is_none());
    }
}
