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
