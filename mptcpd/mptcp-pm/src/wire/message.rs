//! A command or reply of the `mptcp_pm` family as a generic-netlink payload.

use netlink_packet_core::{DecodeError, Emitable, ParseableParametrized};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use crate::{Endpoint, Limits};

use super::{Address, FAMILY_NAME, FAMILY_VERSION, PmAttr, PmCmd, WireError, attr::parse_attrs};

/// A request to, or a reply from, the `mptcp_pm` family: the command and its attributes in
/// wire order (unknown ones kept), so that a received message encodes back to the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmMessage {
    /// The genl command.
    pub cmd: PmCmd,
    /// The attributes, in order.
    pub attrs: Vec<PmAttr>,
}

impl PmMessage {
    /// A message with these attributes.
    #[must_use]
    pub const fn new(cmd: PmCmd, attrs: Vec<PmAttr>) -> Self {
        Self { cmd, attrs }
    }

    /// The (last) `MPTCP_PM_ATTR_ADDR` nest, typed.
    #[must_use]
    pub fn address(&self) -> Option<Address> {
        self.attrs.iter().rev().find_map(|a| match a {
            PmAttr::Addr(nest) => Some(Address::from_attrs(nest)),
            _ => None,
        })
    }

    /// The (last) `MPTCP_PM_ATTR_ADDR_REMOTE` nest, typed.
    #[must_use]
    pub fn remote_address(&self) -> Option<Address> {
        self.attrs.iter().rev().find_map(|a| match a {
            PmAttr::AddrRemote(nest) => Some(Address::from_attrs(nest)),
            _ => None,
        })
    }

    /// The (last) `MPTCP_PM_ATTR_TOKEN`.
    #[must_use]
    pub fn token(&self) -> Option<u32> {
        self.attrs.iter().rev().find_map(|a| match a {
            PmAttr::Token(t) => Some(*t),
            _ => None,
        })
    }

    /// The endpoint of a `GET_ADDR` reply (one per message in a dump).
    pub fn endpoint(&self) -> Result<Endpoint, WireError> {
        let address = self.address().ok_or(WireError::MissingAttribute {
            what: "GET_ADDR reply",
            attr: "MPTCP_PM_ATTR_ADDR",
        })?;
        Endpoint::from_address(&address)
    }

    /// The limits of a `GET_LIMITS` reply.
    pub fn limits(&self) -> Result<Limits, WireError> {
        let (mut add_addr_accepted, mut subflows) = (None, None);
        for attr in &self.attrs {
            match attr {
                PmAttr::RcvAddAddrs(v) => add_addr_accepted = Some(*v),
                PmAttr::Subflows(v) => subflows = Some(*v),
                _ => {}
            }
        }
        let missing = |attr| WireError::MissingAttribute {
            what: "GET_LIMITS reply",
            attr,
        };
        Ok(Limits {
            add_addr_accepted: add_addr_accepted
                .ok_or_else(|| missing("MPTCP_PM_ATTR_RCV_ADD_ADDRS"))?,
            subflows: subflows.ok_or_else(|| missing("MPTCP_PM_ATTR_SUBFLOWS"))?,
        })
    }
}

impl GenlFamily for PmMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.into()
    }

    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for PmMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for PmMessage {
    fn parse_with_param(buf: &[u8], params: GenlHeader) -> Result<Self, DecodeError> {
        Ok(Self {
            cmd: params.cmd.into(),
            attrs: parse_attrs(buf)?,
        })
    }
}
