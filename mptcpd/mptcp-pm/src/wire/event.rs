//! Multicast events (`enum mptcp_event_type`, group `mptcp_pm_events`) and their attributes
//! (`enum mptcp_event_attr`) as they are on the wire.
//!
//! Byte orders (verified against Linux 6.18): `SADDR*`/`DADDR*` network order, `SPORT` and
//! `DPORT` **network** order (unlike the command attribute `PORT`), the rest host order.

use std::net::{Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, Nla, NlaBuffer, Parseable, ParseableParametrized, parse_i32,
    parse_u16, parse_u16_be, parse_u32,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use super::{
    FAMILY_NAME, FAMILY_VERSION,
    attr::{octets, parse_attrs, unknown},
};
use crate::EventFlags;

const TOKEN: u16 = 1;
const FAMILY: u16 = 2;
const LOC_ID: u16 = 3;
const REM_ID: u16 = 4;
const SADDR4: u16 = 5;
const SADDR6: u16 = 6;
const DADDR4: u16 = 7;
const DADDR6: u16 = 8;
const SPORT: u16 = 9;
const DPORT: u16 = 10;
const BACKUP: u16 = 11;
const ERROR: u16 = 12;
const FLAGS: u16 = 13;
const TIMEOUT: u16 = 14;
const IF_IDX: u16 = 15;
const RESET_REASON: u16 = 16;
const RESET_FLAGS: u16 = 17;
const SERVER_SIDE: u16 = 18;

/// The event type: the genl `cmd` field of a multicast message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// 1: a connection was created (SYN sent or received).
    Created,
    /// 2: a connection is established.
    Established,
    /// 3: a connection is closed.
    Closed,
    /// 6: the peer announced an address (`ADD_ADDR`).
    Announced,
    /// 7: the peer withdrew an address (`RM_ADDR`).
    Removed,
    /// 10: a subflow is established.
    SubEstablished,
    /// 11: a subflow is closed.
    SubClosed,
    /// 13: a subflow's backup flag changed (`MP_PRIO` received).
    SubPriority,
    /// 15: an MPTCP socket started listening (Linux 6.2).
    ListenerCreated,
    /// 16: a listening MPTCP socket was closed (Linux 6.2).
    ListenerClosed,
    /// A type this crate does not know.
    Other(u8),
}

impl From<u8> for EventKind {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::Created,
            2 => Self::Established,
            3 => Self::Closed,
            6 => Self::Announced,
            7 => Self::Removed,
            10 => Self::SubEstablished,
            11 => Self::SubClosed,
            13 => Self::SubPriority,
            15 => Self::ListenerCreated,
            16 => Self::ListenerClosed,
            other => Self::Other(other),
        }
    }
}

impl From<EventKind> for u8 {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Created => 1,
            EventKind::Established => 2,
            EventKind::Closed => 3,
            EventKind::Announced => 6,
            EventKind::Removed => 7,
            EventKind::SubEstablished => 10,
            EventKind::SubClosed => 11,
            EventKind::SubPriority => 13,
            EventKind::ListenerCreated => 15,
            EventKind::ListenerClosed => 16,
            EventKind::Other(other) => other,
        }
    }
}

/// One `MPTCP_ATTR_*` attribute of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAttr {
    /// `TOKEN` (u32): the connection's local token.
    Token(u32),
    /// `FAMILY` (u16).
    Family(u16),
    /// `LOC_ID` (u8): local address id.
    LocId(u8),
    /// `REM_ID` (u8): remote address id.
    RemId(u8),
    /// `SADDR4`.
    Saddr4(Ipv4Addr),
    /// `SADDR6`.
    Saddr6(Ipv6Addr),
    /// `DADDR4`.
    Daddr4(Ipv4Addr),
    /// `DADDR6`.
    Daddr6(Ipv6Addr),
    /// `SPORT`: the port number (network order on the wire).
    Sport(u16),
    /// `DPORT`: the port number (network order on the wire).
    Dport(u16),
    /// `BACKUP` (u8).
    Backup(u8),
    /// `ERROR` (u8): the subflow's `sk_err`.
    Error(u8),
    /// `FLAGS` (u16).
    Flags(EventFlags),
    /// `TIMEOUT` (u32).
    Timeout(u32),
    /// `IF_IDX` (s32).
    IfIdx(i32),
    /// `RESET_REASON` (u32): `MP_TCPRST` reason.
    ResetReason(u32),
    /// `RESET_FLAGS` (u32).
    ResetFlags(u32),
    /// `SERVER_SIDE` (u8).
    ServerSide(u8),
    /// An attribute this crate does not know, kept as received.
    Other(DefaultNla),
}

impl Nla for EventAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::LocId(_)
            | Self::RemId(_)
            | Self::Backup(_)
            | Self::Error(_)
            | Self::ServerSide(_) => 1,
            Self::Family(_) | Self::Sport(_) | Self::Dport(_) | Self::Flags(_) => 2,
            Self::Token(_)
            | Self::Saddr4(_)
            | Self::Daddr4(_)
            | Self::Timeout(_)
            | Self::IfIdx(_)
            | Self::ResetReason(_)
            | Self::ResetFlags(_) => 4,
            Self::Saddr6(_) | Self::Daddr6(_) => 16,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Token(_) => TOKEN,
            Self::Family(_) => FAMILY,
            Self::LocId(_) => LOC_ID,
            Self::RemId(_) => REM_ID,
            Self::Saddr4(_) => SADDR4,
            Self::Saddr6(_) => SADDR6,
            Self::Daddr4(_) => DADDR4,
            Self::Daddr6(_) => DADDR6,
            Self::Sport(_) => SPORT,
            Self::Dport(_) => DPORT,
            Self::Backup(_) => BACKUP,
            Self::Error(_) => ERROR,
            Self::Flags(_) => FLAGS,
            Self::Timeout(_) => TIMEOUT,
            Self::IfIdx(_) => IF_IDX,
            Self::ResetReason(_) => RESET_REASON,
            Self::ResetFlags(_) => RESET_FLAGS,
            Self::ServerSide(_) => SERVER_SIDE,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::LocId(v)
            | Self::RemId(v)
            | Self::Backup(v)
            | Self::Error(v)
            | Self::ServerSide(v) => buffer.copy_from_slice(&[*v]),
            Self::Family(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Sport(v) | Self::Dport(v) => buffer.copy_from_slice(&v.to_be_bytes()),
            Self::Flags(f) => buffer.copy_from_slice(&f.bits().to_ne_bytes()),
            Self::Token(v) | Self::Timeout(v) | Self::ResetReason(v) | Self::ResetFlags(v) => {
                buffer.copy_from_slice(&v.to_ne_bytes());
            }
            Self::IfIdx(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Saddr4(a) | Self::Daddr4(a) => buffer.copy_from_slice(&a.octets()),
            Self::Saddr6(a) | Self::Daddr6(a) => buffer.copy_from_slice(&a.octets()),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&T>> for EventAttr {
    fn parse(buf: &NlaBuffer<&T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        let byte = || octets::<1>(v).map(|[b]| b);
        Ok(match buf.kind() {
            TOKEN => Self::Token(parse_u32(v)?),
            FAMILY => Self::Family(parse_u16(v)?),
            LOC_ID => Self::LocId(byte()?),
            REM_ID => Self::RemId(byte()?),
            SADDR4 => Self::Saddr4(Ipv4Addr::from(octets::<4>(v)?)),
            SADDR6 => Self::Saddr6(Ipv6Addr::from(octets::<16>(v)?)),
            DADDR4 => Self::Daddr4(Ipv4Addr::from(octets::<4>(v)?)),
            DADDR6 => Self::Daddr6(Ipv6Addr::from(octets::<16>(v)?)),
            SPORT => Self::Sport(parse_u16_be(v)?),
            DPORT => Self::Dport(parse_u16_be(v)?),
            BACKUP => Self::Backup(byte()?),
            ERROR => Self::Error(byte()?),
            FLAGS => Self::Flags(EventFlags::from_bits_retain(parse_u16(v)?)),
            TIMEOUT => Self::Timeout(parse_u32(v)?),
            IF_IDX => Self::IfIdx(parse_i32(v)?),
            RESET_REASON => Self::ResetReason(parse_u32(v)?),
            RESET_FLAGS => Self::ResetFlags(parse_u32(v)?),
            SERVER_SIDE => Self::ServerSide(byte()?),
            _ => Self::Other(unknown(buf)),
        })
    }
}

/// An event as received: its type and attributes in wire order (unknown ones kept), so that
/// it encodes back to the same bytes. [`Event`](crate::Event) is the typed view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmEvent {
    /// The event type.
    pub kind: EventKind,
    /// The attributes, in order.
    pub attrs: Vec<EventAttr>,
}

impl GenlFamily for PmEvent {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn command(&self) -> u8 {
        self.kind.into()
    }

    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for PmEvent {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for PmEvent {
    fn parse_with_param(buf: &[u8], params: GenlHeader) -> Result<Self, DecodeError> {
        Ok(Self {
            kind: params.cmd.into(),
            attrs: parse_attrs(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn numbers_round_trip() {
        for n in 0..=u8::MAX {
            assert_eq!(u8::from(EventKind::from(n)), n);
        }
        assert_eq!(EventKind::from(13), EventKind::SubPriority);
        assert_eq!(EventKind::from(4), EventKind::Other(4));
    }
}
