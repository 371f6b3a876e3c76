//! `RTM_NEWADDR`, `RTM_DELADDR`, `RTM_GETADDR`: `struct ifaddrmsg` and the three attributes
//! the monitor reads.

use std::net::IpAddr;

use super::{
    WireError,
    attr::{self, Writer},
    u32_at,
};

/// `sizeof(struct ifaddrmsg)`.
const HEADER: usize = 8;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;

/// An address message: the header and, when present, the address, the local address and the
/// full flags. Every other attribute (label, lifetimes, ...) is skipped unread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// `ifa_family`: `AF_INET` or `AF_INET6` for IP addresses.
    pub family: u8,
    /// `ifa_prefixlen`.
    pub prefix_len: u8,
    /// `ifa_flags`: the low 8 bits of the `IFA_F_*` flags.
    pub header_flags: u8,
    /// `ifa_scope`: `RT_SCOPE_*`.
    pub scope: u8,
    /// `ifa_index`: the interface.
    pub index: u32,
    /// `IFA_ADDRESS`: the address, or the peer's on a point-to-point link.
    pub address: Option<IpAddr>,
    /// `IFA_LOCAL`: the local address, where it differs from `IFA_ADDRESS`'s meaning.
    pub local: Option<IpAddr>,
    /// `IFA_FLAGS`: all 32 bits of the `IFA_F_*` flags.
    pub flags: Option<u32>,
}

impl Address {
    pub(super) fn parse(body: &[u8]) -> Result<Self, WireError> {
        let (header, attributes) = attr::split_header::<HEADER>("ifaddrmsg", body)?;
        let mut address = Self {
            family: header[0],
            prefix_len: header[1],
            header_flags: header[2],
            scope: header[3],
            index: u32_at(header, 4),
            address: None,
            local: None,
            flags: None,
        };
        for value in attributes {
            let value = value?;
            match value.kind {
                IFA_ADDRESS => address.address = Some(value.ip()?),
                IFA_LOCAL => address.local = Some(value.ip()?),
                IFA_FLAGS => address.flags = Some(value.u32()?),
                _ => {}
            }
        }
        Ok(address)
    }

    pub(super) fn buffer_len(&self) -> usize {
        let ip =
            |addr: Option<IpAddr>| addr.map_or(0, |addr| attr::size(attr::ip_octets(addr).len()));
        HEADER + ip(self.address) + ip(self.local) + self.flags.map_or(0, |_| attr::size(4))
    }

    pub(super) fn emit(&self, buf: &mut [u8]) {
        let (header, attributes) = buf.split_at_mut(HEADER);
        header[..4].copy_from_slice(&[self.family, self.prefix_len, self.header_flags, self.scope]);
        header[4..].copy_from_slice(&self.index.to_ne_bytes());
        let mut writer = Writer::new(attributes);
        if let Some(addr) = self.address {
            writer.put(IFA_ADDRESS, &attr::ip_octets(addr));
        }
        if let Some(addr) = self.local {
            writer.put(IFA_LOCAL, &attr::ip_octets(addr));
        }
        if let Some(flags) = self.flags {
            writer.put(IFA_FLAGS, &flags.to_ne_bytes());
        }
    }
}
