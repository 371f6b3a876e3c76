//! `RTM_NEWROUTE`, `RTM_DELROUTE`, `RTM_GETROUTE`: `struct rtmsg` and the attributes of route
//! notifications, lookups and their answers.

use std::net::IpAddr;

use super::{
    WireError,
    attr::{self, Value, Writer},
    u32_at,
};

/// `sizeof(struct rtmsg)`.
const HEADER: usize = 12;
/// `sizeof(struct rtnexthop)`.
const NEXT_HOP: usize = 8;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_MULTIPATH: u16 = 9;

/// `RTM_F_LOOKUP_TABLE`: a lookup answers with the table it went through.
pub const RTM_F_LOOKUP_TABLE: u32 = 0x1000;
/// `RTM_F_FIB_MATCH`: a lookup answers with the matching FIB entry, not a host route.
pub const RTM_F_FIB_MATCH: u32 = 0x2000;

/// A route message: the header and, when present, the destination, source, output interface
/// and next hops. Every other attribute (gateway, metrics, ...) is skipped unread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// `rtm_family`: `AF_INET` or `AF_INET6` for IP routes.
    pub family: u8,
    /// `rtm_dst_len`: the destination's prefix length (0: a default route).
    pub dst_len: u8,
    /// `rtm_src_len`.
    pub src_len: u8,
    /// `rtm_tos`.
    pub tos: u8,
    /// `rtm_table`: the table (`RT_TABLE_MAIN` = 254), or 0 in requests.
    pub table: u8,
    /// `rtm_protocol`: `RTPROT_*`.
    pub protocol: u8,
    /// `rtm_scope`: `RT_SCOPE_*`.
    pub scope: u8,
    /// `rtm_type`: `RTN_*`.
    pub kind: u8,
    /// `rtm_flags`: `RTM_F_*`.
    pub flags: u32,
    /// `RTA_DST`.
    pub destination: Option<IpAddr>,
    /// `RTA_SRC`.
    pub source: Option<IpAddr>,
    /// `RTA_OIF`: the output interface of a single-path route.
    pub oif: Option<u32>,
    /// `RTA_MULTIPATH`: the next hops of a multipath route (empty: none).
    pub multipath: Vec<NextHop>,
}

/// One `struct rtnexthop` of `RTA_MULTIPATH`, without its attributes (its gateway).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NextHop {
    /// `rtnh_flags`: `RTNH_F_*`.
    pub flags: u8,
    /// `rtnh_hops`: the weight minus one.
    pub hops: u8,
    /// `rtnh_ifindex`.
    pub ifindex: u32,
}

impl Route {
    pub(super) fn parse(body: &[u8]) -> Result<Self, WireError> {
        let (header, attributes) = attr::split_header::<HEADER>("rtmsg", body)?;
        let mut route = Self {
            family: header[0],
            dst_len: header[1],
            src_len: header[2],
            tos: header[3],
            table: header[4],
            protocol: header[5],
            scope: header[6],
            kind: header[7],
            flags: u32_at(header, 8),
            ..Self::default()
        };
        for value in attributes {
            let value = value?;
            match value.kind {
                RTA_DST => route.destination = Some(value.ip()?),
                RTA_SRC => route.source = Some(value.ip()?),
                RTA_OIF => route.oif = Some(value.u32()?),
                RTA_MULTIPATH => route.multipath = next_hops(&value)?,
                _ => {}
            }
        }
        Ok(route)
    }

    pub(super) fn buffer_len(&self) -> usize {
        let ip =
            |addr: Option<IpAddr>| addr.map_or(0, |addr| attr::size(attr::ip_octets(addr).len()));
        let multipath = if self.multipath.is_empty() {
            0
        } else {
            attr::size(NEXT_HOP * self.multipath.len())
        };
        HEADER
            + ip(self.destination)
            + self.oif.map_or(0, |_| attr::size(4))
            + ip(self.source)
            + multipath
    }

    /// The header, then the attributes in the order the monitor's lookups have always sent
    /// them: destination, output interface, source; then the next hops.
    pub(super) fn emit(&self, buf: &mut [u8]) {
        let (header, attributes) = buf.split_at_mut(HEADER);
        header[..8].copy_from_slice(&[
            self.family,
            self.dst_len,
            self.src_len,
            self.tos,
            self.table,
            self.protocol,
            self.scope,
            self.kind,
        ]);
        header[8..].copy_from_slice(&self.flags.to_ne_bytes());
        let mut writer = Writer::new(attributes);
        if let Some(addr) = self.destination {
            writer.put(RTA_DST, &attr::ip_octets(addr));
        }
        if let Some(oif) = self.oif {
            writer.put(RTA_OIF, &oif.to_ne_bytes());
        }
        if let Some(addr) = self.source {
            writer.put(RTA_SRC, &attr::ip_octets(addr));
        }
        if !self.multipath.is_empty() {
            let mut hops = Vec::with_capacity(NEXT_HOP * self.multipath.len());
            for hop in &self.multipath {
                // rtnh_len: the bare struct, no gateway after it.
                hops.extend_from_slice(&8_u16.to_ne_bytes());
                hops.extend_from_slice(&[hop.flags, hop.hops]);
                hops.extend_from_slice(&hop.ifindex.to_ne_bytes());
            }
            writer.put(RTA_MULTIPATH, &hops);
        }
    }
}

/// The `struct rtnexthop`s of an `RTA_MULTIPATH` value, each followed by its own attributes
/// (`rtnh_len` covers both; each starts 4-byte aligned).
fn next_hops(value: &Value<'_>) -> Result<Vec<NextHop>, WireError> {
    let mut hops = Vec::new();
    let mut rest = value.bytes;
    while !rest.is_empty() {
        let Some((hop, _)) = rest.split_first_chunk::<NEXT_HOP>() else {
            return Err(value.malformed());
        };
        let len = usize::from(u16::from_ne_bytes([hop[0], hop[1]]));
        if len < NEXT_HOP || len > rest.len() {
            return Err(value.malformed());
        }
        hops.push(NextHop {
            flags: hop[2],
            hops: hop[3],
            ifindex: u32_at(hop, 4),
        });
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Ok(hops)
}
