//! The names and wire types of mptcpd's read-only D-Bus surface (`docs/dbus.md`), shared by
//! the daemon that serves it and `mptcpctl`, which reads it.

use serde::{Deserialize, Serialize};
use zbus::zvariant::{OwnedValue, Type, Value};

/// The daemon's well-known name on the system bus.
pub const BUS_NAME: &str = "org.mptcpd.Mptcpd";
/// The manager object; also the `ObjectManager` root the connection objects hang under.
pub const MANAGER_PATH: &str = "/org/mptcpd/Mptcpd";
/// The manager's interface.
pub const MANAGER_INTERFACE: &str = "org.mptcpd.Manager1";
/// A connection object's interface.
pub const CONNECTION_INTERFACE: &str = "org.mptcpd.Connection1";
/// Connection objects are `CONNECTION_PATH_PREFIX` + an opaque counter (never the token).
pub const CONNECTION_PATH_PREFIX: &str = "/org/mptcpd/Mptcpd/connection/";

/// An address id the kernel did not give (ids are 0..=255).
pub const NO_ID: i16 = -1;

/// One subflow's figures (D-Bus `(uuuttuu)`); all zero when `Subflow::has_figures` is false.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Type, Value, OwnedValue,
)]
pub struct Figures {
    /// Smoothed RTT, us.
    pub srtt_us: u32,
    /// RTT variance, us.
    pub rttvar_us: u32,
    /// Congestion window, segments.
    pub snd_cwnd: u32,
    /// Bytes the peer acknowledged.
    pub bytes_acked: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Retransmitted segments.
    pub retransmissions: u32,
    /// Retransmission timeouts that fired.
    pub rtos: u32,
}

/// One subflow of a connection (D-Bus `(ssnnubb(uuuttuu))`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct Subflow {
    /// Local address and port (`192.0.2.1:80`, `[2001:db8::1]:80`).
    pub local: String,
    /// Remote address and port.
    pub remote: String,
    /// Local address id, or [`NO_ID`].
    pub local_id: i16,
    /// Remote address id, or [`NO_ID`].
    pub remote_id: i16,
    /// The interface the subflow is bound to; 0 when it is not.
    pub if_index: u32,
    /// A backup subflow.
    pub backup: bool,
    /// The telemetry has figures for it (`figures` is meaningful).
    pub has_figures: bool,
    /// Its figures.
    pub figures: Figures,
}

/// The figures of one connection object, as the manager's `FiguresUpdated` signal carries them
/// (D-Bus `(oa(ssnnubb(uuuttuu)))`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ConnectionFigures {
    /// The connection object.
    pub path: zbus::zvariant::OwnedObjectPath,
    /// Its subflows, figures included.
    pub subflows: Vec<Subflow>,
}

/// A local address's health as a plugin last judged it (D-Bus `(ss)`), in the `PathHealth`
/// properties (`a{s(ss)}`: by address, IPv4-mapped addresses as IPv4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct Judgement {
    /// `healthy`, `degraded` or `dead`.
    pub state: String,
    /// Why and what was done: `<the figures>; <the action>` (e.g. `4/4 subflows bad (0 dead)
    /// across 4 peers; ...; endpoint 2 set backup`).
    pub reason: String,
}

/// The manager's state-changing interface (`docs/dbus.md`): root and the `dbus-group` only.
pub const CONTROL_INTERFACE: &str = "org.mptcpd.Control1";
/// The prefix of the daemon's named errors (`org.mptcpd.Error.NotFound`, ...).
pub const ERROR_PREFIX: &str = "org.mptcpd.Error";

/// The manager's event signals (`docs/dbus.md`): one per MPTCP event and network event the
/// plugins see, and one per health decision. Each struct below is a signal's arguments in
/// order; a client reads a signal's body as it (`message.body().deserialize::<T>()`).
pub mod signal {
    /// `MPTCP_EVENT_CREATED`: [`super::ConnectionEvent`].
    pub const CONNECTION_CREATED: &str = "ConnectionCreated";
    /// `MPTCP_EVENT_ESTABLISHED`: [`super::ConnectionEvent`].
    pub const CONNECTION_ESTABLISHED: &str = "ConnectionEstablished";
    /// `MPTCP_EVENT_CLOSED`: the connection object (`o`).
    pub const CONNECTION_CLOSED: &str = "ConnectionClosed";
    /// `MPTCP_EVENT_ANNOUNCED`: [`super::AddressEvent`].
    pub const ADDRESS_ANNOUNCED: &str = "AddressAnnounced";
    /// `MPTCP_EVENT_REMOVED`: the connection object and the remote address id (`oy`).
    pub const ADDRESS_REMOVED: &str = "AddressRemoved";
    /// `MPTCP_EVENT_SUB_ESTABLISHED`: [`super::SubflowEvent`].
    pub const SUBFLOW_ESTABLISHED: &str = "SubflowEstablished";
    /// `MPTCP_EVENT_SUB_CLOSED`: [`super::SubflowEvent`].
    pub const SUBFLOW_CLOSED: &str = "SubflowClosed";
    /// `MPTCP_EVENT_SUB_PRIORITY`: [`super::SubflowEvent`].
    pub const SUBFLOW_PRIORITY: &str = "SubflowPriority";
    /// `MPTCP_EVENT_LISTENER_CREATED`: the listening address and port (`s`).
    pub const LISTENER_CREATED: &str = "ListenerCreated";
    /// `MPTCP_EVENT_LISTENER_CLOSED`: the listening address and port (`s`).
    pub const LISTENER_CLOSED: &str = "ListenerClosed";
    /// A new network interface: [`super::InterfaceEvent`].
    pub const INTERFACE_ADDED: &str = "NetworkInterfaceAdded";
    /// A network interface changed (flags, state): [`super::InterfaceEvent`].
    pub const INTERFACE_CHANGED: &str = "NetworkInterfaceChanged";
    /// A network interface went: [`super::InterfaceEvent`].
    pub const INTERFACE_REMOVED: &str = "NetworkInterfaceRemoved";
    /// A local address the address policy lets through appeared: [`super::LocalAddressEvent`].
    pub const LOCAL_ADDRESS_ADDED: &str = "LocalAddressAdded";
    /// Such a local address went: [`super::LocalAddressEvent`].
    pub const LOCAL_ADDRESS_REMOVED: &str = "LocalAddressRemoved";
    /// A plugin judged a local address's paths: [`super::Decision`].
    pub const PATH_DECISION: &str = "PathDecision";
    /// Event signals were dropped, the bus being behind: their count (`t`).
    pub const SIGNALS_DROPPED: &str = "SignalsDropped";
    /// `Control1`, to an external path manager only: an event of a connection it handles
    /// (`sua{sv}`: kind, token, details).
    pub const CLAIMED_EVENT: &str = "ClaimedEvent";
}

/// `ConnectionCreated`, `ConnectionEstablished` (D-Bus `ossnnb`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ConnectionEvent {
    /// The connection object (its path also while the object is not, or no longer, there).
    pub connection: zbus::zvariant::OwnedObjectPath,
    /// Local address and port of the initial subflow.
    pub local: String,
    /// Remote address and port of the initial subflow.
    pub remote: String,
    /// Local address id, or [`NO_ID`].
    pub local_id: i16,
    /// Remote address id, or [`NO_ID`].
    pub remote_id: i16,
    /// This side accepted the connection.
    pub server_side: bool,
}

/// `AddressAnnounced` (D-Bus `oysq`): the peer announced an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct AddressEvent {
    /// The connection object.
    pub connection: zbus::zvariant::OwnedObjectPath,
    /// The remote address id.
    pub id: u8,
    /// The address.
    pub address: String,
    /// Its port; 0 when none was given.
    pub port: u16,
}

/// `SubflowEstablished`, `SubflowClosed`, `SubflowPriority` (D-Bus `ossyybuyu`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct SubflowEvent {
    /// The connection object.
    pub connection: zbus::zvariant::OwnedObjectPath,
    /// Local address and port.
    pub local: String,
    /// Remote address and port.
    pub remote: String,
    /// Local address id.
    pub local_id: u8,
    /// Remote address id.
    pub remote_id: u8,
    /// A backup subflow.
    pub backup: bool,
    /// The interface it is bound to; 0 when none.
    pub if_index: u32,
    /// The socket error (errno) it closed with; 0 when none.
    pub error: u8,
    /// The MPTCP reset reason it closed with (`MPTCP_RST_*`); 0 (unspecified) when none.
    pub reset_reason: u32,
}

/// `NetworkInterfaceAdded`, `NetworkInterfaceChanged`, `NetworkInterfaceRemoved` (D-Bus
/// `ususb`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct InterfaceEvent {
    /// The interface index.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Its `IFF_*` flags.
    pub flags: u32,
    /// Its operational state (`up`, `down`, `lowerlayerdown`, `dormant`, `testing`,
    /// `notpresent`, `unknown`, or the number).
    pub oper_state: String,
    /// Up, running and not down: the daemon would use its addresses.
    pub ready: bool,
}

/// `LocalAddressAdded`, `LocalAddressRemoved` (D-Bus `usy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct LocalAddressEvent {
    /// The interface index.
    pub index: u32,
    /// The address.
    pub address: String,
    /// Its prefix length.
    pub prefix_len: u8,
}

/// `PathDecision` (D-Bus `ssssss`): a plugin's judgement of a local address's paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Decision {
    /// The local address judged (IPv4-mapped as IPv4).
    pub address: String,
    /// The plugin that decided.
    pub plugin: String,
    /// Its state before: `healthy`, `degraded` or `dead`.
    pub from: String,
    /// Its state now.
    pub to: String,
    /// The figures that caused it (never a token).
    pub reason: String,
    /// What was done (e.g. `endpoint 3 set backup`).
    pub action: String,
}
