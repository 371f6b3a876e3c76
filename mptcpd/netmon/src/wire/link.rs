//! `RTM_NEWLINK`, `RTM_DELLINK`, `RTM_GETLINK`: `struct ifinfomsg` and the two attributes the
//! monitor reads.

use super::{
    WireError,
    attr::{self, Writer},
    u32_at,
};

/// `sizeof(struct ifinfomsg)`.
const HEADER: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_OPERSTATE: u16 = 16;

/// A link message: the header and, when present, the name and operational state. Every other
/// attribute (statistics, link info of bonds, VLANs, ...) is skipped unread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    /// `ifi_family`: `AF_UNSPEC` for an interface, `AF_BRIDGE` for a bridge port's message.
    pub family: u8,
    /// `ifi_type`: the link type (`ARPHRD_*`).
    pub link_type: u16,
    /// `ifi_index`.
    pub index: u32,
    /// `ifi_flags`: `IFF_*`.
    pub flags: u32,
    /// `ifi_change`: the flags that changed (0 in requests).
    pub change: u32,
    /// `IFLA_IFNAME`.
    pub name: Option<String>,
    /// `IFLA_OPERSTATE`: `IF_OPER_*` (RFC 2863).
    pub oper_state: Option<u8>,
}

impl Link {
    pub(super) fn parse(body: &[u8]) -> Result<Self, WireError> {
        let (header, attributes) = attr::split_header::<HEADER>("ifinfomsg", body)?;
        let mut link = Self {
            family: header[0],
            link_type: u16::from_ne_bytes([header[2], header[3]]),
            index: u32_at(header, 4),
            flags: u32_at(header, 8),
            change: u32_at(header, 12),
            name: None,
            oper_state: None,
        };
        for value in attributes {
            let value = value?;
            match value.kind {
                IFLA_IFNAME => link.name = Some(value.string()?),
                IFLA_OPERSTATE => link.oper_state = Some(value.u8()?),
                _ => {}
            }
        }
        Ok(link)
    }

    pub(super) fn buffer_len(&self) -> usize {
        HEADER
            + self
                .name
                .as_ref()
                .map_or(0, |name| attr::size(name.len() + 1))
            + self.oper_state.map_or(0, |_| attr::size(1))
    }

    pub(super) fn emit(&self, buf: &mut [u8]) {
        let (header, attributes) = buf.split_at_mut(HEADER);
        header[0] = self.family;
        header[1] = 0;
        header[2..4].copy_from_slice(&self.link_type.to_ne_bytes());
        header[4..8].copy_from_slice(&self.index.to_ne_bytes());
        header[8..12].copy_from_slice(&self.flags.to_ne_bytes());
        header[12..16].copy_from_slice(&self.change.to_ne_bytes());
        let mut writer = Writer::new(attributes);
        if let Some(name) = &self.name {
            let mut value = name.as_bytes().to_vec();
            value.push(0);
            writer.put(IFLA_IFNAME, &value);
        }
        if let Some(state) = self.oper_state {
            writer.put(IFLA_OPERSTATE, &[state]);
        }
    }
}
