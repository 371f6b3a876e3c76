//! `org.mptcpd.Connection1` at `/org/mptcpd/Mptcpd/connection/N`: one MPTCP connection. The
//! object knows its token to read the table; the token itself is never on the bus.

use std::collections::HashMap;

use mptcp_pm::Token;
use mptcpd_common::dbus::{Judgement, Subflow};
use mptcpd_plugin::ConnectionView;
use zbus::interface;

use super::{health, wire};
use crate::{connections::Connections, plugins::Decisions};

/// One connection object.
pub(super) struct Connection {
    pub(super) token: Token,
    pub(super) connections: Connections,
    pub(super) decisions: Decisions,
    /// What stays for the connection's life (shown even after the table dropped it).
    pub(super) local: String,
    pub(super) remote: String,
    pub(super) server_side: bool,
}

#[expect(
    clippy::multiple_inherent_impl,
    reason = "zbus's interface macro takes an impl block of its own"
)]
impl Connection {
    pub(super) fn new(
        view: &ConnectionView,
        connections: Connections,
        decisions: Decisions,
    ) -> Self {
        Self {
            token: view.token,
            connections,
            decisions,
            local: view.local.to_string(),
            remote: view.remote.to_string(),
            server_side: view.server_side,
        }
    }

    fn view(&self) -> Option<ConnectionView> {
        self.connections.get(self.token)
    }
}

#[interface(name = "org.mptcpd.Connection1")]
impl Connection {
    /// Local address and port of the initial subflow.
    #[zbus(property(emits_changed_signal = "const"))]
    fn local_address(&self) -> String {
        self.local.clone()
    }

    /// Remote address and port of the initial subflow.
    #[zbus(property(emits_changed_signal = "const"))]
    fn remote_address(&self) -> String {
        self.remote.clone()
    }

    /// This side accepted the connection.
    #[zbus(property(emits_changed_signal = "const"))]
    fn server_side(&self) -> bool {
        self.server_side
    }

    /// The MPTCP handshake completed (`MPTCP_EVENT_ESTABLISHED`).
    #[zbus(property)]
    fn established(&self) -> bool {
        self.view().is_some_and(|v| v.established)
    }

    /// The subflows, initial first, with their figures as of the read. A subflow that comes
    /// or goes invalidates the property; figures alone do not (see `FiguresUpdated`).
    #[zbus(property(emits_changed_signal = "invalidates"))]
    fn subflows(&self) -> Vec<Subflow> {
        self.view()
            .map(|v| v.subflows.iter().map(wire::subflow).collect())
            .unwrap_or_default()
    }

    /// The health a plugin judged each of its subflows' local addresses to be in, and why
    /// (`<figures>; <action>`): why a subflow is backup. Addresses never judged are absent.
    #[zbus(property(emits_changed_signal = "invalidates"))]
    fn path_health(&self) -> HashMap<String, Judgement> {
        self.view()
            .map(|v| {
                health::of_connection(&v, &self.decisions)
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default()
    }
}
