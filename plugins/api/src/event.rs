//! What plugins are told: the kernel's `mptcp_pm` events and the network monitor's, in one
//! enum that later kinds of events (telemetry, health) join as variants.

use std::net::{IpAddr, SocketAddr};

use crate::{Connection, Interface, RemoteAddress, Subflow, TelemetryEvent, Token};

/// An event for plugins. Names follow the C API's callbacks.
///
/// `#[non_exhaustive]`: match with a `_ => {}` arm; a plugin ignores what it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `MPTCP_EVENT_CREATED`: a connection was created (the initial subflow exists).
    NewConnection(Connection),
    /// `MPTCP_EVENT_ESTABLISHED`: the connection is fully established.
    ConnectionEstablished(Connection),
    /// `MPTCP_EVENT_CLOSED`: drop what is kept about the connection.
    ConnectionClosed(Token),
    /// `MPTCP_EVENT_ANNOUNCED`: the peer announced an address.
    NewAddress(RemoteAddress),
    /// `MPTCP_EVENT_REMOVED`: the peer withdrew the address it numbered `remote_id`.
    AddressRemoved {
        /// The connection.
        token: Token,
        /// The peer's id of the address.
        remote_id: u8,
    },
    /// `MPTCP_EVENT_SUB_ESTABLISHED`: a subflow joined.
    NewSubflow(Subflow),
    /// `MPTCP_EVENT_SUB_CLOSED`.
    SubflowClosed(Subflow),
    /// `MPTCP_EVENT_SUB_PRIORITY`: the peer changed a subflow's backup flag.
    SubflowPriority(Subflow),
    /// `MPTCP_EVENT_LISTENER_CREATED`: an MPTCP socket listens on this address.
    ListenerCreated(SocketAddr),
    /// `MPTCP_EVENT_LISTENER_CLOSED`.
    ListenerClosed(SocketAddr),
    /// A link became ready (up and running), including links found at start-up.
    NewInterface(Interface),
    /// A ready link changed.
    UpdateInterface(Interface),
    /// A link went away or stopped being ready (its addresses were withdrawn before).
    DeleteInterface(Interface),
    /// A local address became usable.
    NewLocalAddress {
        /// The interface carrying it.
        iface: Interface,
        /// The address.
        addr: IpAddr,
    },
    /// A local address went away or stopped being usable.
    DeleteLocalAddress {
        /// The interface that carried it.
        iface: Interface,
        /// The address.
        addr: IpAddr,
    },
    /// The subflow telemetry reports a path event (RTO, retransmission burst, reset,
    /// fallback) on a subflow of a connection this plugin handles.
    Telemetry(TelemetryEvent),
    /// About once a second, to the default plugin if it asks for it
    /// ([`crate::Plugin::wants_ticks`]), in the network lane: for decisions over time that no
    /// event prompts (a path that stayed healthy long enough).
    Tick,
}

impl Event {
    /// The connection the event is about; `None` for listener, interface and address events.
    #[must_use]
    pub const fn token(&self) -> Option<Token> {
        match self {
            Self::NewConnection(c) | Self::ConnectionEstablished(c) => Some(c.token),
            Self::ConnectionClosed(token) | Self::AddressRemoved { token, .. } => Some(*token),
            Self::NewAddress(a) => Some(a.token),
            Self::NewSubflow(s) | Self::SubflowClosed(s) | Self::SubflowPriority(s) => {
                Some(s.token)
            }
            Self::Telemetry(t) => Some(t.token),
            Self::ListenerCreated(_)
            | Self::ListenerClosed(_)
            | Self::NewInterface(_)
            | Self::UpdateInterface(_)
            | Self::DeleteInterface(_)
            | Self::NewLocalAddress { .. }
            | Self::DeleteLocalAddress { .. }
            | Self::Tick => None,
        }
    }
}
