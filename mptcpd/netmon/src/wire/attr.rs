//! Attributes (`struct nlattr`): walking those of a message, reading the few value kinds the
//! monitor needs, and writing them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLA_HEADER_SIZE, NlasIterator};

use super::WireError;

/// A message body split into its fixed header (`what`, `N` bytes) and its attributes.
pub(super) fn split_header<'a, const N: usize>(
    what: &'static str,
    body: &'a [u8],
) -> Result<(&'a [u8; N], Attributes<'a>), WireError> {
    let Some((header, attributes)) = body.split_first_chunk::<N>() else {
        return Err(WireError::Truncated {
            what,
            need: N,
            len: body.len(),
        });
    };
    let attributes = Attributes {
        what,
        nlas: NlasIterator::new(attributes),
    };
    Ok((header, attributes))
}

/// The attributes of a message, in order; a malformed one ends the walk with an error.
pub(super) struct Attributes<'a> {
    what: &'static str,
    nlas: NlasIterator<&'a [u8]>,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Value<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let nla = match self.nlas.next()? {
            Ok(nla) => nla,
            Err(e) => return Some(Err(WireError::Framing(e))),
        };
        let (kind, len) = (nla.kind(), usize::from(nla.length()));
        Some(Ok(Value {
            what: self.what,
            kind,
            // The checked buffer holds at least `len` bytes, and `len` at least the header.
            bytes: &nla.into_inner()[NLA_HEADER_SIZE..len],
        }))
    }
}

/// One attribute: its type (without the nested and byte-order flags) and value.
pub(super) struct Value<'a> {
    /// The message kind, for errors.
    what: &'static str,
    pub(super) kind: u16,
    pub(super) bytes: &'a [u8],
}

impl Value<'_> {
    pub(super) fn malformed(&self) -> WireError {
        WireError::Value {
            what: self.what,
            kind: self.kind,
            len: self.bytes.len(),
        }
    }

    /// An `NLA_U8`: exactly one byte.
    pub(super) fn u8(&self) -> Result<u8, WireError> {
        match *self.bytes {
            [byte] => Ok(byte),
            _ => Err(self.malformed()),
        }
    }

    /// An `NLA_U32` in host order: exactly four bytes.
    pub(super) fn u32(&self) -> Result<u32, WireError> {
        <[u8; 4]>::try_from(self.bytes)
            .map(u32::from_ne_bytes)
            .map_err(|_| self.malformed())
    }

    /// An IPv4 or IPv6 address (network order), told apart by its size.
    pub(super) fn ip(&self) -> Result<IpAddr, WireError> {
        if let Ok(v4) = <[u8; 4]>::try_from(self.bytes) {
            Ok(IpAddr::V4(Ipv4Addr::from(v4)))
        } else if let Ok(v6) = <[u8; 16]>::try_from(self.bytes) {
            Ok(IpAddr::V6(Ipv6Addr::from(v6)))
        } else {
            Err(self.malformed())
        }
    }

    /// An `NLA_NUL_STRING` (the NUL, when present, dropped); names are UTF-8 here.
    pub(super) fn string(&self) -> Result<String, WireError> {
        let text = self.bytes.strip_suffix(&[0]).unwrap_or(self.bytes);
        String::from_utf8(text.to_vec()).map_err(|_| self.malformed())
    }
}

/// The bytes an attribute with a value of `value_len` bytes takes, padding included.
pub(super) const fn size(value_len: usize) -> usize {
    (NLA_HEADER_SIZE + value_len).next_multiple_of(4)
}

/// The bytes of an IP address as an attribute value.
pub(super) fn ip_octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// Writes attributes one after the other into a buffer sized with [`size`].
pub(super) struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    pub(super) const fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, at: 0 }
    }

    /// One attribute, its padding zeroed.
    pub(super) fn put(&mut self, kind: u16, value: &[u8]) {
        let end = self.at + size(value.len());
        let attribute = &mut self.buf[self.at..end];
        // Only a name of 64 KiB could overflow the length (the kernel's are 16 bytes).
        let len = u16::try_from(NLA_HEADER_SIZE + value.len()).unwrap_or(u16::MAX);
        attribute[..2].copy_from_slice(&len.to_ne_bytes());
        attribute[2..4].copy_from_slice(&kind.to_ne_bytes());
        let (value_part, padding) = attribute[NLA_HEADER_SIZE..].split_at_mut(value.len());
        value_part.copy_from_slice(value);
        padding.fill(0);
        self.at = end;
    }
}
