//! Endpoints (`GET_ADDR` replies, `ADD_ADDR`, ANNOUNCE and `SUBFLOW_CREATE` requests) and
//! the limits (`GET_LIMITS`, `SET_LIMITS`).

use std::net::IpAddr;

use crate::{
    EndpointFlags,
    wire::{Address, WireError},
};

/// An endpoint of the in-kernel path manager, or a local address of a userspace-PM connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Address id, 1..=255; 0 in a request lets the kernel choose.
    pub id: u8,
    /// The local address.
    pub addr: IpAddr,
    /// Port, for `signal` endpoints that announce a port (the kernel reports 0 as none).
    pub port: Option<u16>,
    /// What the endpoint is used for.
    pub flags: EndpointFlags,
    /// Interface subflows from this address are bound to.
    pub if_idx: Option<i32>,
}

impl Endpoint {
    /// An endpoint without id (the kernel picks one), port or interface.
    #[must_use]
    pub const fn new(addr: IpAddr, flags: EndpointFlags) -> Self {
        Self {
            id: 0,
            addr,
            port: None,
            flags,
            if_idx: None,
        }
    }

    /// With this id.
    #[must_use]
    pub const fn with_id(mut self, id: u8) -> Self {
        self.id = id;
        self
    }

    /// With this port (0: none).
    #[must_use]
    pub const fn with_port(mut self, port: u16) -> Self {
        self.port = if port == 0 { None } else { Some(port) };
        self
    }

    /// Bound to this interface index.
    #[must_use]
    pub const fn with_if_idx(mut self, if_idx: i32) -> Self {
        self.if_idx = Some(if_idx);
        self
    }

    /// The address nest for `ADD_ADDR`, ANNOUNCE and `SUBFLOW_CREATE`. (A new field of
    /// `Self` breaks [`Self::from_address`]'s literal, one of [`Address`] this one.)
    #[must_use]
    pub const fn to_address(&self) -> Address {
        Address {
            id: Some(self.id),
            addr: Some(self.addr),
            port: self.port,
            flags: Some(self.flags),
            if_idx: self.if_idx,
        }
    }

    /// The endpoint a reply's nest describes; it must carry an id and an address.
    pub fn from_address(address: &Address) -> Result<Self, WireError> {
        let Address {
            id,
            addr,
            port,
            flags,
            if_idx,
        } = *address;
        let missing = |attr| WireError::MissingAttribute {
            what: "endpoint",
            attr,
        };
        Ok(Self {
            id: id.ok_or_else(|| missing("MPTCP_PM_ADDR_ATTR_ID"))?,
            addr: addr.ok_or_else(|| missing("MPTCP_PM_ADDR_ATTR_ADDR4/ADDR6"))?,
            port: port.filter(|&p| p != 0),
            flags: flags.unwrap_or_default(),
            if_idx,
        })
    }
}

/// The in-kernel path manager's per-netns limits (each at most 8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// `MPTCP_PM_ATTR_RCV_ADD_ADDRS`: `ADD_ADDR`s accepted per connection (`add_addr_accepted`).
    pub add_addr_accepted: u32,
    /// `MPTCP_PM_ATTR_SUBFLOWS`: extra subflows per connection (`subflows`).
    pub subflows: u32,
}
