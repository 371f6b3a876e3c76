//! The D-Bus surface of a build without the `dbus` feature: the daemon's calls, doing nothing.

use std::sync::Arc;

use mptcp_pm::{PmClient, Token};
use tokio::sync::mpsc;

use crate::{
    config::Config,
    connections::Connections,
    plugins::{Decisions, HostPm, NetlinkPm},
};

/// Stands in for the bus task.
#[derive(Debug)]
pub(crate) struct Bus {
    claims: SharedClaims,
}

/// No external path manager claims a connection without a bus.
#[derive(Debug, Default)]
pub(crate) struct SharedClaims;

impl SharedClaims {
    #[expect(clippy::unused_self, reason = "the bus build's signature")]
    pub(crate) const fn lock(&self) -> Claims {
        Claims
    }
}

/// The claims: none.
#[derive(Debug)]
pub(crate) struct Claims;

impl Claims {
    #[expect(clippy::unused_self, reason = "the bus build's signature")]
    pub(crate) fn retain_live(&mut self, live: &[Token]) -> Vec<Token> {
        let _ = live;
        Vec::new()
    }
}

impl Bus {
    /// Says once that there is no bus.
    pub(crate) fn spawn(
        pm: PmClient,
        handle: Arc<HostPm<NetlinkPm>>,
        connections: Connections,
        decisions: Decisions,
        plugins: Vec<String>,
        config: &Config,
        handback: mpsc::UnboundedSender<Vec<Token>>,
    ) -> Self {
        drop((
            pm,
            handle,
            connections,
            decisions,
            plugins,
            config,
            handback,
        ));
        tracing::info!("built without the dbus feature: no D-Bus interface");
        Self {
            claims: SharedClaims,
        }
    }

    /// No external path manager handles a connection: the plugins see every event.
    #[expect(clippy::unused_self, reason = "the bus build's signature")]
    pub(crate) const fn pm_event(&self, event: &mptcp_pm::Event) -> bool {
        let _ = event;
        false
    }

    pub(crate) const fn claims(&self) -> &SharedClaims {
        &self.claims
    }

    #[expect(clippy::unused_self, reason = "the bus build's signature")]
    pub(crate) const fn net_event(&self, event: &mptcpd_netmon::NetEvent) {
        let _ = event;
    }

    #[expect(clippy::unused_self, reason = "the bus build's signature")]
    pub(crate) const fn configuration(&self, config: &Config) {
        let _ = config;
    }
}
