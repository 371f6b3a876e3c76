//! The `sock_diag` wire format for MPTCP sockets (`mptcp_diag`), apart from any I/O: the dump
//! request `ss -M` sends and the `inet_diag_msg` replies carrying `struct mptcp_info`, and the
//! TCP dump `ss -ti` sends, whose MPTCP subflows carry their `INET_DIAG_ULP_INFO`
//! (uapi `linux/sock_diag.h`, `linux/inet_diag.h`, `linux/mptcp.h`; host byte order except
//! ports and addresses, which are in network order).
//!
//! `netlink-packet-sock-diag` 0.5 was looked at (it uses our `netlink-packet-core` 0.9): its
//! request has only the 8-bit `sdiag_protocol` and no request attributes (262 needs
//! `INET_DIAG_REQ_PROTOCOL`), and it reads `INET_DIAG_INFO` as `struct tcp_info` (or raw
//! bytes), so these few structures are our own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST};

use mptcp_pm::wire::{FrameKind, KernelError, frames};

/// `SOCK_DIAG_BY_FAMILY`: the request and reply message type.
pub(crate) const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `INET_DIAG_INFO`: the attribute carrying the protocol's info (`struct mptcp_info`).
pub(crate) const INET_DIAG_INFO: u16 = 2;
/// `INET_DIAG_REQ_PROTOCOL`: a request attribute with the real (32-bit) protocol.
const INET_DIAG_REQ_PROTOCOL: u16 = 3;
/// `IPPROTO_MPTCP`.
const IPPROTO_MPTCP: u32 = 262;
/// `INET_DIAG_ULP_INFO`: a TCP socket's upper-layer protocol (nested; sent only to
/// `CAP_NET_ADMIN` and only with `INET_DIAG_INFO` asked for).
const INET_DIAG_ULP_INFO: u16 = 19;
/// `INET_ULP_INFO_MPTCP`, inside it: the subflow's attributes (nested).
const INET_ULP_INFO_MPTCP: u16 = 3;
/// `MPTCP_SUBFLOW_ATTR_TOKEN_LOC`: the connection's local token.
const SUBFLOW_ATTR_TOKEN_LOC: u16 = 2;
/// `MPTCP_SUBFLOW_ATTR_FLAGS`.
const SUBFLOW_ATTR_FLAGS: u16 = 8;
/// `MPTCP_SUBFLOW_FLAG_FULLY_ESTABLISHED`.
const SUBFLOW_FLAG_FULLY_ESTABLISHED: u32 = 1 << 6;
/// `NLA_TYPE_MASK`: an attribute's type without `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// `TCP_LISTEN`: left out of the dump (listeners are not connections).
const TCP_LISTEN: u8 = 10;
/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct inet_diag_req_v2)`.
const REQUEST_LEN: usize = 56;
/// `sizeof(struct inet_diag_msg)`.
const MSG_LEN: usize = 72;
/// `AF_INET`, `AF_INET6` as the one-byte family fields carry them.
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// TCP states of an MPTCP socket (`sk_state`, as `ss` names them).
pub mod state {
    /// `TCP_ESTABLISHED`.
    pub const ESTABLISHED: u8 = 1;
    /// `TCP_SYN_SENT`.
    pub const SYN_SENT: u8 = 2;
    /// `TCP_FIN_WAIT1`.
    pub const FIN_WAIT1: u8 = 4;
    /// `TCP_FIN_WAIT2`.
    pub const FIN_WAIT2: u8 = 5;
    /// `TCP_TIME_WAIT`.
    pub const TIME_WAIT: u8 = 6;
    /// `TCP_CLOSE`.
    pub const CLOSE: u8 = 7;
    /// `TCP_LAST_ACK`.
    pub const LAST_ACK: u8 = 9;
    /// `TCP_CLOSING`.
    pub const CLOSING: u8 = 11;
}

bitflags::bitflags! {
    /// `mptcpi_flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct InfoFlags: u32 {
        /// `MPTCP_INFO_FLAG_FALLBACK`: the connection fell back to plain TCP.
        const FALLBACK = 1;
        /// `MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED`: the peer's key is known.
        const REMOTE_KEY_RECEIVED = 2;
        const _ = !0;
    }
}

/// Why a reply could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiagWireError {
    /// A message or structure shorter than its fixed part.
    #[error("{what} truncated: {len} bytes")]
    Truncated {
        /// Which structure.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// An address family other than `AF_INET` and `AF_INET6`.
    #[error("unknown address family {0}")]
    Family(u8),
    /// A netlink message that is neither a socket, an error nor the end of the dump.
    #[error("unexpected netlink message type {0}")]
    MessageType(u16),
    /// The netlink framing is broken.
    #[error("netlink framing: {0}")]
    Framing(String),
    /// The kernel refused the dump (`ENOENT`: no `mptcp_diag`).
    #[error("kernel: {0}")]
    Kernel(KernelError),
}

/// The dump request for the MPTCP sockets of `family` (`AF_INET` or `AF_INET6`): every state
/// but `LISTEN`, with `INET_DIAG_INFO`, as `ss -Mi` sends it (`sdiag_protocol` says TCP, the
/// real protocol rides in `INET_DIAG_REQ_PROTOCOL`).
#[must_use]
pub(crate) fn dump_request(family: u8, seq: u32) -> Vec<u8> {
    request(family, seq, !(1_u32 << TCP_LISTEN), Some(IPPROTO_MPTCP))
}

/// The states of a subflow that can be fully established: not `SYN_SENT`, `SYN_RECV`,
/// `TIME_WAIT` (no ULP info, and the bulk of a busy host's sockets), `CLOSE`, `LISTEN`.
const SUBFLOW_STATES: u32 = 1 << state::ESTABLISHED
    | 1 << state::FIN_WAIT1
    | 1 << state::FIN_WAIT2
    | 1 << TCP_CLOSE_WAIT
    | 1 << state::LAST_ACK
    | 1 << state::CLOSING;
/// `TCP_CLOSE_WAIT`.
const TCP_CLOSE_WAIT: u8 = 8;

/// The dump request for the TCP sockets of `family` in [`SUBFLOW_STATES`], with
/// `INET_DIAG_INFO`, as `ss -ti` sends it: MPTCP subflows then carry their
/// `INET_DIAG_ULP_INFO` ([`DiagMsg::subflow`]).
#[must_use]
pub(crate) fn subflow_dump_request(family: u8, seq: u32) -> Vec<u8> {
    request(family, seq, SUBFLOW_STATES, None)
}

/// `inet_diag_req_v2` for `family` and `states`, TCP, or `protocol` in
/// `INET_DIAG_REQ_PROTOCOL`.
fn request(family: u8, seq: u32, states: u32, protocol: Option<u32>) -> Vec<u8> {
    let len = NLMSG_HDRLEN + REQUEST_LEN + if protocol.is_some() { 8 } else { 0 };
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    buf.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0_u32.to_ne_bytes());
    // inet_diag_req_v2: family, protocol, ext, pad, states, then a zero sockid (no filter).
    let tcp = u8::try_from(libc::IPPROTO_TCP).unwrap_or(6);
    buf.extend_from_slice(&[family, tcp, 1 << (INET_DIAG_INFO - 1), 0]);
    buf.extend_from_slice(&states.to_ne_bytes());
    buf.resize(NLMSG_HDRLEN + REQUEST_LEN, 0);
    if let Some(protocol) = protocol {
        buf.extend_from_slice(&8_u16.to_ne_bytes());
        buf.extend_from_slice(&INET_DIAG_REQ_PROTOCOL.to_ne_bytes());
        buf.extend_from_slice(&protocol.to_ne_bytes());
    }
    buf
}

/// One attribute of a reply, kept as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// `nla_type`.
    pub kind: u16,
    /// The value, without padding.
    pub value: Vec<u8>,
}

/// `struct inet_diag_msg` and its attributes: one MPTCP socket of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagMsg {
    /// `idiag_family`.
    pub family: u8,
    /// `idiag_state` (see [`state`]).
    pub state: u8,
    /// `idiag_timer`.
    pub timer: u8,
    /// `idiag_retrans`.
    pub(crate) retrans: u8,
    /// `id.idiag_sport` (host order here).
    pub(crate) sport: u16,
    /// `id.idiag_dport` (host order here).
    pub(crate) dport: u16,
    /// `id.idiag_src`: 4 bytes used for IPv4.
    pub src: [u8; 16],
    /// `id.idiag_dst`.
    pub dst: [u8; 16],
    /// `id.idiag_if`.
    pub ifindex: u32,
    /// `id.idiag_cookie`.
    pub cookie: [u32; 2],
    /// `idiag_expires`.
    pub(crate) expires: u32,
    /// `idiag_rqueue`.
    pub(crate) rqueue: u32,
    /// `idiag_wqueue`.
    pub(crate) wqueue: u32,
    /// `idiag_uid`.
    pub uid: u32,
    /// `idiag_inode`: 0 once the socket has no file (closed by its owner, or not accepted yet).
    pub inode: u32,
    /// The attributes, in order, unknown ones included.
    pub attrs: Vec<Attr>,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(word)
}

impl DiagMsg {
    /// Reads the payload of a `SOCK_DIAG_BY_FAMILY` reply (what follows the `nlmsghdr`).
    pub fn decode(payload: &[u8]) -> Result<Self, DiagWireError> {
        if payload.len() < MSG_LEN {
            return Err(DiagWireError::Truncated {
                what: "inet_diag_msg",
                len: payload.len(),
            });
        }
        let mut src = [0; 16];
        src.copy_from_slice(&payload[8..24]);
        let mut dst = [0; 16];
        dst.copy_from_slice(&payload[24..40]);
        let attrs = attributes(&payload[MSG_LEN..])?;
        Ok(Self {
            family: payload[0],
            state: payload[1],
            timer: payload[2],
            retrans: payload[3],
            sport: u16::from_be_bytes([payload[4], payload[5]]),
            dport: u16::from_be_bytes([payload[6], payload[7]]),
            src,
            dst,
            ifindex: u32_at(payload, 40),
            cookie: [u32_at(payload, 44), u32_at(payload, 48)],
            expires: u32_at(payload, 52),
            rqueue: u32_at(payload, 56),
            wqueue: u32_at(payload, 60),
            uid: u32_at(payload, 64),
            inode: u32_at(payload, 68),
            attrs,
        })
    }

    /// The payload again, as the kernel wrote it (attributes padded to 4 bytes).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let Self {
            family,
            state,
            timer,
            retrans,
            sport,
            dport,
            src,
            dst,
            ifindex,
            cookie,
            expires,
            rqueue,
            wqueue,
            uid,
            inode,
            attrs,
        } = self;
        let mut buf = vec![*family, *state, *timer, *retrans];
        buf.extend_from_slice(&sport.to_be_bytes());
        buf.extend_from_slice(&dport.to_be_bytes());
        buf.extend_from_slice(src);
        buf.extend_from_slice(dst);
        for word in [
            *ifindex, cookie[0], cookie[1], *expires, *rqueue, *wqueue, *uid, *inode,
        ] {
            buf.extend_from_slice(&word.to_ne_bytes());
        }
        for Attr { kind, value } in attrs {
            let len = u16::try_from(value.len() + 4).unwrap_or(u16::MAX);
            buf.extend_from_slice(&len.to_ne_bytes());
            buf.extend_from_slice(&kind.to_ne_bytes());
            buf.extend_from_slice(value);
            buf.resize(buf.len().next_multiple_of(4), 0);
        }
        buf
    }

    /// The value of attribute `kind`, if present.
    #[must_use]
    pub fn attr(&self, kind: u16) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|a| a.kind == kind)
            .map(|a| a.value.as_slice())
    }

    /// The MPTCP subflow this socket of a TCP dump ([`subflow_dump_request`]) is, from its
    /// `INET_DIAG_ULP_INFO`: `None` for plain TCP (or without `CAP_NET_ADMIN`, which the
    /// kernel asks for this attribute).
    #[must_use]
    pub fn subflow(&self) -> Option<SubflowSocket> {
        let ulp = attributes(self.attr(INET_DIAG_ULP_INFO)?).ok()?;
        let mptcp = attributes(nested(&ulp, INET_ULP_INFO_MPTCP)?).ok()?;
        Some(SubflowSocket {
            token: nested_u32(&mptcp, SUBFLOW_ATTR_TOKEN_LOC)?,
            fully_established: nested_u32(&mptcp, SUBFLOW_ATTR_FLAGS)
                .is_some_and(|flags| flags & SUBFLOW_FLAG_FULLY_ESTABLISHED != 0),
        })
    }

    /// What the daemon uses of it.
    pub fn socket(&self) -> Result<MptcpSocket, DiagWireError> {
        let (local, remote) = match self.family {
            AF_INET => {
                let ip = |a: &[u8; 16]| IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]));
                (ip(&self.src), ip(&self.dst))
            }
            AF_INET6 => (
                IpAddr::V6(Ipv6Addr::from(self.src)),
                IpAddr::V6(Ipv6Addr::from(self.dst)),
            ),
            other => return Err(DiagWireError::Family(other)),
        };
        // Without INET_DIAG_INFO (or a shorter one) the token is unknown: 0, never a real one.
        let info = self.attr(INET_DIAG_INFO).unwrap_or_default();
        let (flags, token) = if info.len() >= 16 {
            (u32_at(info, 8), u32_at(info, 12))
        } else {
            (0, 0)
        };
        let (retransmits, bytes_retrans) = retrans_of(info).unzip();
        Ok(MptcpSocket {
            state: self.state,
            local: SocketAddr::new(local, self.sport),
            remote: SocketAddr::new(remote, self.dport),
            token,
            flags: InfoFlags::from_bits_retain(flags),
            orphan: self.inode == 0,
            retransmits,
            bytes_retrans,
            fully_established: None,
        })
    }
}

/// The attributes in `bytes`, in order.
fn attributes(mut rest: &[u8]) -> Result<Vec<Attr>, DiagWireError> {
    let mut attrs = Vec::new();
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]);
        let value = rest
            .get(4..len)
            .filter(|_| len >= 4)
            .ok_or(DiagWireError::Truncated {
                what: "attribute",
                len: rest.len(),
            })?;
        attrs.push(Attr {
            kind,
            value: value.to_vec(),
        });
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Ok(attrs)
}

/// The value of nested attribute `kind` in `attrs` (flags bits ignored).
fn nested(attrs: &[Attr], kind: u16) -> Option<&[u8]> {
    attrs
        .iter()
        .find(|a| a.kind & NLA_TYPE_MASK == kind)
        .map(|a| a.value.as_slice())
}

/// A `u32` attribute's value.
fn nested_u32(attrs: &[Attr], kind: u16) -> Option<u32> {
    nested(attrs, kind)
        .filter(|v| v.len() >= 4)
        .map(|v| u32_at(v, 0))
}

/// An MPTCP subflow as a TCP dump lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubflowSocket {
    /// Its connection's local token (`MPTCP_SUBFLOW_ATTR_TOKEN_LOC`).
    pub token: u32,
    /// `MPTCP_SUBFLOW_FLAG_FULLY_ESTABLISHED`: the peer acknowledged its MPTCP
    /// establishment, which makes the connection fully established.
    pub fully_established: bool,
}

/// An MPTCP connection (`msk`) as a dump lists it. Addresses are as the kernel reports them:
/// an `AF_INET6` socket carrying IPv4 has IPv4-mapped IPv6 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MptcpSocket {
    /// Its TCP state (see [`state`]).
    pub state: u8,
    /// Local address and port (of the initial subflow).
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// The local token (`mptcpi_token`; 0 when the reply had no `mptcp_info`).
    pub token: u32,
    /// `mptcpi_flags`.
    pub flags: InfoFlags,
    /// No file refers to it any more (closed by its owner) or yet (not accepted).
    pub orphan: bool,
    /// `mptcpi_retransmits` (Linux 6.5+; `None` on older kernels).
    pub retransmits: Option<u32>,
    /// `mptcpi_bytes_retrans` (Linux 6.5+; `None` on older kernels).
    pub bytes_retrans: Option<u64>,
    /// Fully established (a subflow of it is, [`SubflowSocket`]): only then has the kernel
    /// sent its `ESTABLISHED` and does it accept `SUBFLOW_CREATE` for it. A client has the
    /// peer's key (`REMOTE_KEY_RECEIVED`) from the SYN-ACK, a round trip earlier. `None`:
    /// not known (no subflow dump, or no subflow of it listed).
    pub fully_established: Option<bool>,
}

impl MptcpSocket {
    /// Its `CLOSED` event was sent (and maybe lost): closed, or closed by its owner and
    /// shutting down. An orphan that is not closing is one not accepted yet: alive.
    #[must_use]
    pub const fn gone(&self) -> bool {
        let closing = matches!(
            self.state,
            state::FIN_WAIT1
                | state::FIN_WAIT2
                | state::CLOSING
                | state::LAST_ACK
                | state::TIME_WAIT
        );
        self.state == state::CLOSE || (self.orphan && closing)
    }
}

/// Where `struct mptcp_info` holds `mptcpi_retransmits` (after `mptcpi_csum_enabled` and a
/// pad byte) and `mptcpi_bytes_retrans`.
const INFO_RETRANSMITS: usize = 44;
/// See [`INFO_RETRANSMITS`].
const INFO_BYTES_RETRANS: usize = 48;

/// `mptcpi_retransmits` and `mptcpi_bytes_retrans`, when the kernel's `mptcp_info` has them.
/// Decided by length: before 6.5 the struct ends at offset 48 (the 4 bytes at 44 are its
/// tail padding, not a count); 6.5 added both fields together.
fn retrans_of(info: &[u8]) -> Option<(u32, u64)> {
    let bytes = info.get(INFO_BYTES_RETRANS..INFO_BYTES_RETRANS + 8)?;
    let mut word = [0; 8];
    word.copy_from_slice(bytes);
    Some((u32_at(info, INFO_RETRANSMITS), u64::from_ne_bytes(word)))
}

/// Reads one datagram of a dump reply into `out`. `Ok(true)` when it held the end of the dump.
pub fn read_reply(datagram: &[u8], out: &mut Vec<DiagMsg>) -> Result<bool, DiagWireError> {
    for frame in frames(datagram) {
        let frame = frame.map_err(|e| DiagWireError::Framing(e.to_string()))?;
        match frame.kind() {
            FrameKind::Data if frame.header.message_type == SOCK_DIAG_BY_FAMILY => {
                out.push(DiagMsg::decode(frame.payload())?);
            }
            FrameKind::Data => {
                return Err(DiagWireError::MessageType(frame.header.message_type));
            }
            FrameKind::Done => return Ok(true),
            FrameKind::Error(err) => return Err(DiagWireError::Kernel(err)),
            FrameKind::Malformed(err) => return Err(DiagWireError::Framing(err.to_string())),
            FrameKind::Ack | FrameKind::Ignored => {}
        }
    }
    Ok(false)
}
