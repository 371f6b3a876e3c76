//! Plain values the callbacks receive and the handle takes: connections, subflows,
//! interfaces, endpoints, limits.

use std::net::{IpAddr, SocketAddr};

use crate::EndpointFlags;

/// A connection's local token (never logged by the daemon: C mptcpd issue #25).
pub type Token = u32;

/// `new_connection` / `connection_established`: a connection and its initial subflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// Local token.
    pub token: Token,
    /// Local address and port of the initial subflow.
    pub local: SocketAddr,
    /// Remote address and port of the initial subflow.
    pub remote: SocketAddr,
    /// Local address id, when the kernel sent one.
    pub local_id: Option<u8>,
    /// Remote address id, when the kernel sent one.
    pub remote_id: Option<u8>,
    /// This side accepted the connection.
    pub server_side: bool,
    /// The peer forbids joins to its initial address and port.
    pub deny_join_id0: bool,
}

/// `new_subflow` / `subflow_closed` / `subflow_priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subflow {
    /// Local token.
    pub token: Token,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// Local address id.
    pub local_id: u8,
    /// Remote address id.
    pub remote_id: u8,
    /// A backup subflow (the real value; the C daemon always passed `true`).
    pub backup: bool,
    /// The interface the subflow is bound to, if it is.
    pub if_idx: Option<i32>,
    /// The subflow's socket error, e.g. 111 for a refused join.
    pub error: Option<u8>,
}

/// `new_address`: an address the peer announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddress {
    /// Local token.
    pub token: Token,
    /// The peer's id for the address.
    pub id: u8,
    /// The address.
    pub addr: IpAddr,
    /// The announced port, or the peer port of the initial subflow.
    pub port: Option<u16>,
}

/// A network interface the monitor reports (up and running).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interface {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFF_*` flags.
    pub flags: u32,
}

/// An in-kernel endpoint, or a local address of a userspace-PM connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Address id, 1..=255.
    pub id: u8,
    /// The local address.
    pub addr: IpAddr,
    /// Port, when one is announced.
    pub port: Option<u16>,
    /// What the address is used for.
    pub flags: EndpointFlags,
    /// Interface subflows from the address are bound to.
    pub if_idx: Option<i32>,
}

/// The in-kernel path manager's limits (each at most 8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// `ADD_ADDR`s accepted per connection.
    pub add_addr_accepted: u32,
    /// Extra subflows per connection.
    pub subflows: u32,
}
