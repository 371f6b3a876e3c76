//! `org.mptcpd.Manager1` at `/org/mptcpd/Mptcpd`: what the daemon is and what the kernel's
//! path manager holds (asked of the kernel when read), and its signals: `FiguresUpdated`,
//! and the event signals that `super::signals` sends.

// On the generated signal functions too (outside the `impl`).
#![expect(
    clippy::too_many_arguments,
    reason = "a signal's arguments are its D-Bus arguments (the subflow signals have 9)"
)]

use std::collections::HashMap;

use mptcp_pm::PmClient;
use mptcpd_common::{
    Chain,
    dbus::{ConnectionFigures, Judgement},
};
use tokio::sync::watch;
use zbus::{fdo, interface, object_server::SignalEmitter, zvariant::ObjectPath};

/// The sysctl that says which path manager the kernel runs (5.19+; absent: in-kernel only).
const PM_TYPE: &str = "/proc/sys/net/mptcp/pm_type";

/// The manager object.
pub(super) struct Manager {
    pub(super) pm: PmClient,
    pub(super) plugins: Vec<String>,
    /// The effective configuration, updated on reload.
    pub(super) config: watch::Receiver<Vec<(&'static str, String)>>,
    /// The plugins' path-health decisions.
    pub(super) decisions: crate::plugins::Decisions,
}

/// An endpoint on the bus: id, address, port (0: none), interface index (0: none), flags.
type Endpoint = (u8, String, u16, u32, Vec<String>);

fn kernel_error(what: &str, e: &mptcp_pm::PmError) -> fdo::Error {
    fdo::Error::Failed(format!("reading {what} from the kernel: {}", Chain(e)))
}

#[interface(name = "org.mptcpd.Manager1")]
impl Manager {
    /// The daemon's version.
    #[zbus(property(emits_changed_signal = "const"))]
    #[expect(
        clippy::unused_self,
        reason = "a D-Bus property is a method of its object"
    )]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    /// `in-kernel` or `userspace` (`net.mptcp.pm_type` of the daemon's network namespace).
    #[zbus(property(emits_changed_signal = "false"))]
    #[expect(
        clippy::unused_self,
        reason = "a D-Bus property is a method of its object"
    )]
    fn path_manager(&self) -> String {
        match std::fs::read_to_string(PM_TYPE).map(|s| s.trim().to_owned()) {
            Ok(t) if t == "1" => "userspace".to_owned(),
            Ok(t) if t != "0" => format!("unknown ({t})"),
            _ => "in-kernel".to_owned(),
        }
    }

    /// The plugins loaded, by name.
    #[zbus(property(emits_changed_signal = "const"))]
    fn plugins(&self) -> Vec<String> {
        self.plugins.clone()
    }

    /// The in-kernel path manager's limits: `subflows`, `add_addr_accepted`.
    #[zbus(property(emits_changed_signal = "false"))]
    async fn limits(&self) -> fdo::Result<HashMap<String, u32>> {
        let limits = self
            .pm
            .get_limits()
            .await
            .map_err(|e| kernel_error("the limits", &e))?;
        Ok(HashMap::from([
            ("subflows".to_owned(), limits.subflows),
            ("add_addr_accepted".to_owned(), limits.add_addr_accepted),
        ]))
    }

    /// The in-kernel path manager's endpoints.
    #[zbus(property(emits_changed_signal = "false"))]
    async fn endpoints(&self) -> fdo::Result<Vec<Endpoint>> {
        let endpoints = self
            .pm
            .dump_addrs()
            .await
            .map_err(|e| kernel_error("the endpoints", &e))?;
        Ok(endpoints
            .iter()
            .map(|e| {
                (
                    e.id,
                    e.addr.to_string(),
                    e.port.unwrap_or(0),
                    e.if_idx.and_then(|i| u32::try_from(i).ok()).unwrap_or(0),
                    e.flags
                        .to_string()
                        .split(',')
                        .filter(|f| !f.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            })
            .collect())
    }

    /// The effective configuration: file key to the value the log shows.
    #[zbus(property)]
    fn configuration(&self) -> HashMap<String, String> {
        self.config
            .borrow()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// Every local address a plugin judged: its state and why (`<figures>; <action>`).
    #[zbus(property(emits_changed_signal = "invalidates"))]
    fn path_health(&self) -> HashMap<String, Judgement> {
        super::health::all(&self.decisions).into_iter().collect()
    }

    /// The figures of the connections whose figures changed, at most once a second.
    #[zbus(signal)]
    pub(super) async fn figures_updated(
        emitter: &SignalEmitter<'_>,
        connections: Vec<ConnectionFigures>,
    ) -> zbus::Result<()>;

    /// Event signals were dropped (the bus was behind): `count` of them, just before this
    /// signal. Read the state again (`GetManagedObjects`; an external path manager
    /// `ClaimedConnections` too).
    #[zbus(signal)]
    pub(super) async fn signals_dropped(
        emitter: &SignalEmitter<'_>,
        count: u64,
    ) -> zbus::Result<()>;

    // The event signals (`super::signals`; their arguments are `mptcpd_common::dbus`'s
    // structs, in order).

    #[zbus(signal)]
    pub(super) async fn connection_created(
        emitter: &SignalEmitter<'_>,
        connection: ObjectPath<'_>,
        local: &str,
        remote: &str,
        local_id: i16,
        remote_id: i16,
        server_side: bool,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn connection_established(
        emitter: &SignalEmitter<'_>,
        connection: ObjectPath<'_>,
        local: &str,
        remote: &str,
        local_id: i16,
        remote_id: i16,
        server_side: bool,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn connection_closed(
        emitter: &SignalEmitter<'_>,
        connection: ObjectPath<'_>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn address_announced(
        emitter: &SignalEmitter<'_>,
        connection: ObjectPath<'_>,
        id: u8,
        address: &str,
        port: u16,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn address_removed(
        emitter: &SignalEmitter<'_>,
        connection: ObjectPath<'_>,
        id: u8,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn subflow_established(
        emitter: &SignalEmitter<'_>,
        connection: ObjectPath<'_>,
        local: &str,
        remote: &str,
        local_id: u8,
        remote_id: u8,
        backup: bool,
        if_index: u32,
        error: u8,
        reset_reason: u32,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn subflow_closed(
        emitter: &SignalEmitter<'_>,
        connection: ObjectPath<'_>,
        local: &str,
        remote: &str,
        local_id: u8,
        remote_id: u8,
        backup: bool,
        if_index: u32,
        error: u8,
        reset_reason: u32,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn subflow_priority(
        emitter: &SignalEmitter<'_>,
        connection: ObjectPath<'_>,
        local: &str,
        remote: &str,
        local_id: u8,
        remote_id: u8,
        backup: bool,
        if_index: u32,
        error: u8,
        reset_reason: u32,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn listener_created(
        emitter: &SignalEmitter<'_>,
        local: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn listener_closed(
        emitter: &SignalEmitter<'_>,
        local: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn network_interface_added(
        emitter: &SignalEmitter<'_>,
        index: u32,
        name: &str,
        flags: u32,
        oper_state: &str,
        ready: bool,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn network_interface_changed(
        emitter: &SignalEmitter<'_>,
        index: u32,
        name: &str,
        flags: u32,
        oper_state: &str,
        ready: bool,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn network_interface_removed(
        emitter: &SignalEmitter<'_>,
        index: u32,
        name: &str,
        flags: u32,
        oper_state: &str,
        ready: bool,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn local_address_added(
        emitter: &SignalEmitter<'_>,
        index: u32,
        address: &str,
        prefix_len: u8,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn local_address_removed(
        emitter: &SignalEmitter<'_>,
        index: u32,
        address: &str,
        prefix_len: u8,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn path_decision(
        emitter: &SignalEmitter<'_>,
        address: &str,
        plugin: &str,
        from: &str,
        to: &str,
        reason: &str,
        action: &str,
    ) -> zbus::Result<()>;
}
