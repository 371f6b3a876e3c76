//! Netlink framing around genl payloads: encoding a request, splitting a datagram into
//! messages, and reading acknowledgements and errors with their extended-ack TLVs.

use std::{fmt, io};

use netlink_packet_core::{
    Emitable, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN,
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, Parseable as _,
    ParseableParametrized, parse_i32, parse_u32,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};

use super::WireError;

/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;
/// `NLMSGERR_ATTR_MSG`: the extack message string.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// `NLMSGERR_ATTR_OFFS`: offset of the offending attribute in the request.
const NLMSGERR_ATTR_OFFS: u16 = 2;

/// Encodes one genl request: netlink header (type = family id, `flags`, `seq`, port 0), genl
/// header and payload.
#[must_use]
pub fn encode_request<F>(family_id: u16, payload: F, flags: u16, seq: u32) -> Vec<u8>
where
    F: GenlFamily + Emitable + fmt::Debug,
{
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family_id);
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Decodes a whole netlink message whose payload is a genl message of family `F`.
pub fn decode_message<F>(bytes: &[u8]) -> Result<NetlinkMessage<GenlMessage<F>>, WireError>
where
    F: ParseableParametrized<[u8], GenlHeader> + fmt::Debug,
{
    Ok(NetlinkMessage::deserialize(bytes)?)
}

/// Decodes the genl part of a data message (`frame.payload()`) of family `F`.
pub fn decode_genl<F>(frame: &Frame<'_>) -> Result<GenlMessage<F>, WireError>
where
    F: ParseableParametrized<[u8], GenlHeader> + fmt::Debug,
{
    Ok(GenlMessage::parse_with_param(
        frame.payload(),
        frame.header.message_type,
    )?)
}

/// One netlink message of a datagram.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Its header.
    pub header: NetlinkHeader,
    /// The whole message, header included, without trailing padding.
    pub bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// What follows the netlink header.
    #[must_use]
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(NLMSG_HDRLEN..).unwrap_or_default()
    }

    /// What the message means to a requester.
    #[must_use]
    pub fn kind(&self) -> FrameKind {
        let flags = self.header.flags;
        match self.header.message_type {
            NLMSG_ERROR => match KernelError::from_error_payload(flags, self.payload()) {
                Ok(None) => FrameKind::Ack,
                Ok(Some(err)) => FrameKind::Error(err),
                Err(err) => FrameKind::Malformed(err),
            },
            NLMSG_DONE => match KernelError::from_done_payload(flags, self.payload()) {
                Ok(None) => FrameKind::Done,
                Ok(Some(err)) => FrameKind::Error(err),
                Err(err) => FrameKind::Malformed(err),
            },
            // Nothing sends these to genl sockets; they carry nothing anyway.
            NLMSG_NOOP | NLMSG_OVERRUN => FrameKind::Ignored,
            _ => FrameKind::Data,
        }
    }
}

/// The role of a message in a request/reply exchange.
#[derive(Debug)]
pub enum FrameKind {
    /// A reply carrying data (a genl message).
    Data,
    /// `NLMSG_ERROR` with code 0: the request succeeded.
    Ack,
    /// `NLMSG_DONE` without error: the dump is complete.
    Done,
    /// `NLMSG_ERROR` or `NLMSG_DONE` with an error: the request failed.
    Error(KernelError),
    /// An error or done message too short to read.
    Malformed(WireError),
    /// `NLMSG_NOOP` or `NLMSG_OVERRUN`.
    Ignored,
}

/// Iterates over the messages of one datagram; stops after the first malformed one.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

/// The messages of a datagram received from a netlink socket.
#[must_use]
pub fn frames(datagram: &[u8]) -> Frames<'_> {
    Frames { rest: datagram }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let frame = NetlinkBuffer::new_checked(self.rest)
            .and_then(|buf| NetlinkHeader::parse(&buf))
            .map_err(WireError::from)
            .and_then(|header| {
                // new_checked() guarantees NLMSG_HDRLEN <= length <= rest.len().
                let len = usize::try_from(header.length).unwrap_or(usize::MAX);
                let bytes = self.rest.get(..len).ok_or(WireError::Truncated)?;
                let next = len.checked_next_multiple_of(4).unwrap_or(usize::MAX);
                self.rest = self.rest.get(next..).unwrap_or_default();
                Ok(Frame { header, bytes })
            });
        if frame.is_err() {
            self.rest = &[];
        }
        Some(frame)
    }
}

/// A request the kernel refused: the errno and its extended-ack message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The (positive) errno, e.g. `libc::EEXIST`.
    pub errno: i32,
    /// `NLMSGERR_ATTR_MSG`: the kernel's explanation, when it gave one.
    pub message: Option<String>,
    /// `NLMSGERR_ATTR_OFFS`: offset in the request of the attribute at fault.
    pub offset: Option<u32>,
}

impl KernelError {
    /// The errno as an [`io::Error`].
    #[must_use]
    pub fn io_error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }

    /// Reads an `NLMSG_ERROR` payload: `Ok(None)` for an acknowledgement.
    pub fn from_error_payload(flags: u16, payload: &[u8]) -> Result<Option<Self>, WireError> {
        let code = parse_i32(payload.get(..4).ok_or(WireError::Truncated)?)?;
        if code == 0 {
            return Ok(None);
        }
        // The echoed request: its header only when capped, else the whole message.
        let echoed = payload.get(4..).unwrap_or_default();
        let skip = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            let len = echoed.get(..4).map_or(Ok(0), parse_u32)?;
            usize::try_from(len)
                .ok()
                .and_then(|len| len.max(NLMSG_HDRLEN).checked_next_multiple_of(4))
                .unwrap_or(usize::MAX)
        };
        let tlvs = if flags & NLM_F_ACK_TLVS != 0 {
            echoed.get(skip..)
        } else {
            None
        };
        Ok(Some(Self::new(code, tlvs.unwrap_or_default())))
    }

    /// Reads an `NLMSG_DONE` payload: `Ok(None)` when the dump ended without error.
    pub fn from_done_payload(flags: u16, payload: &[u8]) -> Result<Option<Self>, WireError> {
        let Some(code) = payload.get(..4) else {
            return Ok(None);
        };
        let code = parse_i32(code)?;
        if code >= 0 {
            return Ok(None);
        }
        let tlvs = if flags & NLM_F_ACK_TLVS != 0 {
            payload.get(4..)
        } else {
            None
        };
        Ok(Some(Self::new(code, tlvs.unwrap_or_default())))
    }

    fn new(code: i32, tlvs: &[u8]) -> Self {
        let mut err = Self {
            errno: code.saturating_abs(),
            message: None,
            offset: None,
        };
        // A malformed TLV costs the explanation, never the errno.
        for nla in NlasIterator::new(tlvs) {
            let Ok(nla) = nla else {
                tracing::debug!("malformed extended-ack attributes");
                break;
            };
            match nla.kind() {
                NLMSGERR_ATTR_MSG => {
                    let text = nla.value().split(|&b| b == 0).next().unwrap_or_default();
                    err.message = Some(String::from_utf8_lossy(text).into_owned());
                }
                NLMSGERR_ATTR_OFFS => err.offset = parse_u32(nla.value()).ok(),
                _ => {}
            }
        }
        err
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.io_error())?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KernelError {}
