//! The D-Bus surface of a build without the `dbus` feature: the daemon's calls, doing nothing.

use std::sync::Arc;

use mptcp_pm::PmClient;

use crate::{
    config::Config,
    connections::Connections,
    plugins::{Decisions, HostPm, NetlinkPm},
};

/// Stands in for the bus task.
#[derive(Debug)]
pub(crate) struct Bus;

impl Bus {
    /// Says once that there is no bus.
    pub(crate) fn spawn(
        pm: PmClient,
        handle: Arc<HostPm<NetlinkPm>>,
        connections: Connections,
        decisions: Decisions,
        plugins: Vec<String>,
        config: &Config,
    ) -> Self {
        drop((pm, handle, connections, decisions, plugins, config));
        tracing::info!("built without the dbus feature: no D-Bus interface");
        Self
    }

    #[expect(clippy::unused_self, reason = "the bus build's signature")]
    pub(crate) const fn pm_event(&self, event: &mptcp_pm::Event) {
        let _ = event;
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
