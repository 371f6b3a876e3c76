//! Attributes of commands and replies: the top level (`MPTCP_PM_ATTR_*`) and the address
//! nest (`MPTCP_PM_ADDR_ATTR_*`), plus [`Address`], the nest in typed form.
//!
//! Byte orders (verified against Linux 6.18): `ADDR4` and `ADDR6` are network order, `PORT`
//! is **host** order (the kernel does `htons(nla_get_u16())`), everything else host order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable as _, Nla, NlaBuffer, NlasIterator, Parseable, parse_i32,
    parse_u8, parse_u16, parse_u32,
};

use super::WireError;
use crate::EndpointFlags;

const ADDR_ATTR_FAMILY: u16 = 1;
const ADDR_ATTR_ID: u16 = 2;
const ADDR_ATTR_ADDR4: u16 = 3;
const ADDR_ATTR_ADDR6: u16 = 4;
const ADDR_ATTR_PORT: u16 = 5;
const ADDR_ATTR_FLAGS: u16 = 6;
const ADDR_ATTR_IF_IDX: u16 = 7;

const ATTR_ADDR: u16 = 1;
const ATTR_RCV_ADD_ADDRS: u16 = 2;
const ATTR_SUBFLOWS: u16 = 3;
const ATTR_TOKEN: u16 = 4;
const ATTR_LOC_ID: u16 = 5;
const ATTR_ADDR_REMOTE: u16 = 6;

const NLA_F_NESTED: u16 = netlink_packet_core::NLA_F_NESTED;
/// The largest attribute value a `u16` length field can describe.
const MAX_VALUE_LEN: usize = u16::MAX as usize - netlink_packet_core::NLA_HEADER_SIZE;

/// `AF_INET` and `AF_INET6` as the kernel sends them in `u16` family attributes.
pub(crate) const AF_INET: u16 = 2;
pub(crate) const AF_INET6: u16 = 10;

/// One `MPTCP_PM_ADDR_ATTR_*` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrAttr {
    /// `FAMILY` (u16): `AF_INET` = 2 or `AF_INET6` = 10.
    Family(u16),
    /// `ID` (u8): endpoint or local address id.
    Id(u8),
    /// `ADDR4`: IPv4 address, network order on the wire.
    Addr4(Ipv4Addr),
    /// `ADDR6`: IPv6 address, network order on the wire.
    Addr6(Ipv6Addr),
    /// `PORT` (u16), **host** order on the wire.
    Port(u16),
    /// `FLAGS` (u32).
    Flags(EndpointFlags),
    /// `IF_IDX` (s32): the interface subflows are bound to.
    IfIdx(i32),
    /// An attribute this crate does not know, kept as received.
    Other(DefaultNla),
}

impl Nla for AddrAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Id(_) => 1,
            Self::Family(_) | Self::Port(_) => 2,
            Self::Addr4(_) | Self::Flags(_) | Self::IfIdx(_) => 4,
            Self::Addr6(_) => 16,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Family(_) => ADDR_ATTR_FAMILY,
            Self::Id(_) => ADDR_ATTR_ID,
            Self::Addr4(_) => ADDR_ATTR_ADDR4,
            Self::Addr6(_) => ADDR_ATTR_ADDR6,
            Self::Port(_) => ADDR_ATTR_PORT,
            Self::Flags(_) => ADDR_ATTR_FLAGS,
            Self::IfIdx(_) => ADDR_ATTR_IF_IDX,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Family(v) | Self::Port(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Id(v) => buffer.copy_from_slice(&[*v]),
            Self::Addr4(a) => buffer.copy_from_slice(&a.octets()),
            Self::Addr6(a) => buffer.copy_from_slice(&a.octets()),
            Self::Flags(f) => buffer.copy_from_slice(&f.bits().to_ne_bytes()),
            Self::IfIdx(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&T>> for AddrAttr {
    fn parse(buf: &NlaBuffer<&T>) -> Result<Self, DecodeError> {
        let value = buf.value();
        Ok(match buf.kind() {
            ADDR_ATTR_FAMILY => Self::Family(parse_u16(value)?),
            ADDR_ATTR_ID => Self::Id(exact_u8(value)?),
            ADDR_ATTR_ADDR4 => Self::Addr4(Ipv4Addr::from(octets::<4>(value)?)),
            ADDR_ATTR_ADDR6 => Self::Addr6(Ipv6Addr::from(octets::<16>(value)?)),
            ADDR_ATTR_PORT => Self::Port(parse_u16(value)?),
            ADDR_ATTR_FLAGS => Self::Flags(EndpointFlags::from_bits_retain(parse_u32(value)?)),
            ADDR_ATTR_IF_IDX => Self::IfIdx(parse_i32(value)?),
            _ => Self::Other(unknown(buf)),
        })
    }
}

/// One top-level `MPTCP_PM_ATTR_*` attribute of a command or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PmAttr {
    /// `ADDR` (= `MPTCP_PM_ENDPOINT_ADDR`), nested: an endpoint or a local address.
    Addr(Vec<AddrAttr>),
    /// `RCV_ADD_ADDRS` (u32): limit on accepted `ADD_ADDR`s.
    RcvAddAddrs(u32),
    /// `SUBFLOWS` (u32): limit on extra subflows.
    Subflows(u32),
    /// `TOKEN` (u32): a connection's local token.
    Token(u32),
    /// `LOC_ID` (u8): a local address id (REMOVE).
    LocId(u8),
    /// `ADDR_REMOTE`, nested: a peer address.
    AddrRemote(Vec<AddrAttr>),
    /// An attribute this crate does not know, kept as received.
    Other(DefaultNla),
}

impl Nla for PmAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Addr(nest) | Self::AddrRemote(nest) => nest.as_slice().buffer_len(),
            Self::RcvAddAddrs(_) | Self::Subflows(_) | Self::Token(_) => 4,
            Self::LocId(_) => 1,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            // The kernel sets NLA_F_NESTED on the nests it sends; do the same.
            Self::Addr(_) => ATTR_ADDR | NLA_F_NESTED,
            Self::RcvAddAddrs(_) => ATTR_RCV_ADD_ADDRS,
            Self::Subflows(_) => ATTR_SUBFLOWS,
            Self::Token(_) => ATTR_TOKEN,
            Self::LocId(_) => ATTR_LOC_ID,
            Self::AddrRemote(_) => ATTR_ADDR_REMOTE | NLA_F_NESTED,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Addr(nest) | Self::AddrRemote(nest) => nest.as_slice().emit(buffer),
            Self::RcvAddAddrs(v) | Self::Subflows(v) | Self::Token(v) => {
                buffer.copy_from_slice(&v.to_ne_bytes());
            }
            Self::LocId(v) => buffer.copy_from_slice(&[*v]),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&T>> for PmAttr {
    fn parse(buf: &NlaBuffer<&T>) -> Result<Self, DecodeError> {
        let value = buf.value();
        Ok(match buf.kind() {
            ATTR_ADDR => Self::Addr(parse_nest(value, "MPTCP_PM_ATTR_ADDR")?),
            ATTR_RCV_ADD_ADDRS => Self::RcvAddAddrs(parse_u32(value)?),
            ATTR_SUBFLOWS => Self::Subflows(parse_u32(value)?),
            ATTR_TOKEN => Self::Token(parse_u32(value)?),
            ATTR_LOC_ID => Self::LocId(exact_u8(value)?),
            ATTR_ADDR_REMOTE => Self::AddrRemote(parse_nest(value, "MPTCP_PM_ATTR_ADDR_REMOTE")?),
            _ => Self::Other(unknown(buf)),
        })
    }
}

/// An attribute this crate does not know, kept with its flags.
///
/// An attribute flagged both nested and network-order (meaningless, and never sent by the
/// kernel) keeps only the nested flag: netlink-packet-core 0.9 cannot encode both, and the
/// value must encode back to itself.
pub(crate) fn unknown<T: AsRef<[u8]> + ?Sized>(buf: &NlaBuffer<&T>) -> DefaultNla {
    let flag = if buf.nested_flag() {
        NLA_F_NESTED
    } else if buf.network_byte_order_flag() {
        netlink_packet_core::NLA_F_NET_BYTEORDER
    } else {
        0
    };
    DefaultNla::new(buf.kind() | flag, buf.value().to_vec())
}

/// Parses a sequence of attributes, stopping at the first malformed one.
pub(crate) fn parse_attrs<A>(buf: &[u8]) -> Result<Vec<A>, DecodeError>
where
    A: for<'a> Parseable<NlaBuffer<&'a [u8]>>,
{
    NlasIterator::new(buf)
        .map(|nla| nla.and_then(|nla| A::parse(&nla)))
        .collect()
}

fn parse_nest(buf: &[u8], what: &'static str) -> Result<Vec<AddrAttr>, DecodeError> {
    let nest: Vec<AddrAttr> = parse_attrs(buf)?;
    // Re-encoding pads every attribute; refuse what would then overflow the u16 length.
    if nest.as_slice().buffer_len() > MAX_VALUE_LEN {
        return Err(DecodeError::from(WireError::NestTooLarge(what).to_string()));
    }
    Ok(nest)
}

/// `parse_u8` accepts longer values; the kernel's `NLA_U8` is exactly one byte.
fn exact_u8(value: &[u8]) -> Result<u8, DecodeError> {
    if value.len() == 1 {
        parse_u8(value)
    } else {
        Err(DecodeError::invalid_number(1, value.len()))
    }
}

pub(crate) fn octets<const N: usize>(value: &[u8]) -> Result<[u8; N], DecodeError> {
    <[u8; N]>::try_from(value).map_err(|_| DecodeError::invalid_number(N, value.len()))
}

/// An address nest in typed form, for requests; every attribute is optional because each
/// command wants a different subset (the kernel says which is missing in its extack).
///
/// `FAMILY` is derived from `addr` when encoding and ignored when decoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Address {
    /// `ID`.
    pub id: Option<u8>,
    /// `ADDR4` or `ADDR6`, with `FAMILY`.
    pub addr: Option<IpAddr>,
    /// `PORT`.
    pub port: Option<u16>,
    /// `FLAGS`.
    pub flags: Option<EndpointFlags>,
    /// `IF_IDX`.
    pub if_idx: Option<i32>,
}

impl Address {
    /// The attributes, in the order family, id, address, port, flags, ifindex.
    #[must_use]
    pub fn to_attrs(&self) -> Vec<AddrAttr> {
        let Self {
            id,
            addr,
            port,
            flags,
            if_idx,
        } = *self;
        let mut attrs = Vec::with_capacity(6);
        match addr {
            Some(IpAddr::V4(_)) => attrs.push(AddrAttr::Family(AF_INET)),
            Some(IpAddr::V6(_)) => attrs.push(AddrAttr::Family(AF_INET6)),
            None => {}
        }
        attrs.extend(id.map(AddrAttr::Id));
        attrs.extend(addr.map(|a| match a {
            IpAddr::V4(a) => AddrAttr::Addr4(a),
            IpAddr::V6(a) => AddrAttr::Addr6(a),
        }));
        attrs.extend(port.map(AddrAttr::Port));
        attrs.extend(flags.map(AddrAttr::Flags));
        attrs.extend(if_idx.map(AddrAttr::IfIdx));
        attrs
    }

    /// The typed view of a nest; a repeated attribute counts once (the last one wins, as in
    /// the kernel's `nla_parse`), unknown ones are logged at debug level and skipped.
    #[must_use]
    pub fn from_attrs(attrs: &[AddrAttr]) -> Self {
        let mut out = Self::default();
        for attr in attrs {
            match attr {
                AddrAttr::Family(_) => {}
                AddrAttr::Id(v) => out.id = Some(*v),
                AddrAttr::Addr4(a) => out.addr = Some(IpAddr::V4(*a)),
                AddrAttr::Addr6(a) => out.addr = Some(IpAddr::V6(*a)),
                AddrAttr::Port(v) => out.port = Some(*v),
                AddrAttr::Flags(f) => out.flags = Some(*f),
                AddrAttr::IfIdx(v) => out.if_idx = Some(*v),
                AddrAttr::Other(nla) => {
                    tracing::debug!(kind = nla.kind(), "skipping unknown address attribute");
                }
            }
        }
        out
    }
}
