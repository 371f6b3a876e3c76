//! Events in typed form: what a path manager reacts to, with everything the kernel sends.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{
    Endpoint, EventFlags,
    wire::{AF_INET6, EventAttr, EventKind, PmEvent, WireError},
};

/// A connection's local token (never logged by the daemon: C mptcpd issue #25).
pub type Token = u32;

/// `::ffff:a.b.c.d` as `a.b.c.d`; every other address unchanged.
#[must_use]
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// An event about a subflow's two ends ([`Connection`]: the initial subflow; [`Subflow`]).
///
/// A dual-stack (`AF_INET6`) socket carrying IPv4 reports its subflows with IPv4-mapped
/// addresses (`::ffff:192.0.2.1`), which a path manager would take for IPv6;
/// [`Self::canonical`] gives them as IPv4, as plugins see them.
pub trait SubflowEnds: Sized {
    /// The local and the remote address.
    fn ends(&mut self) -> [&mut SocketAddr; 2];

    /// With IPv4-mapped addresses as IPv4.
    #[must_use]
    fn canonical(mut self) -> Self {
        for addr in self.ends() {
            *addr = canonical(*addr);
        }
        self
    }
}

impl SubflowEnds for Connection {
    fn ends(&mut self) -> [&mut SocketAddr; 2] {
        [&mut self.local, &mut self.remote]
    }
}

impl SubflowEnds for Subflow {
    fn ends(&mut self) -> [&mut SocketAddr; 2] {
        [&mut self.local, &mut self.remote]
    }
}

impl SubflowEnds for SubflowPath {
    fn ends(&mut self) -> [&mut SocketAddr; 2] {
        [&mut self.local, &mut self.remote]
    }
}

/// A subflow to open (userspace PM `SUBFLOW_CREATE`) on connection `token`, from `local` (id
/// 1..=255, address, optional interface, `backup` flag) to `remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewSubflow {
    /// Local token of the connection.
    pub token: Token,
    /// The local end.
    pub local: Endpoint,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// One subflow as the userspace PM's commands name it (`SUBFLOW_DESTROY`, `SET_FLAGS` with a
/// token): the connection and the subflow's two ends. A port of 0 matches any port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubflowPath {
    /// Local token of the connection.
    pub token: Token,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
}

/// A connection-level event: CREATED or ESTABLISHED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// Local token.
    pub token: Token,
    /// Local address and port of the initial subflow.
    pub local: SocketAddr,
    /// Remote address and port of the initial subflow.
    pub remote: SocketAddr,
    /// Local address id (sent since Linux 5.12-ish; absent on some kernels).
    pub local_id: Option<u8>,
    /// Remote address id.
    pub remote_id: Option<u8>,
    /// `MPTCP_ATTR_FLAGS`, with `SERVER_SIDE` also set when only the older
    /// `MPTCP_ATTR_SERVER_SIDE` attribute said so.
    pub flags: EventFlags,
}

impl Connection {
    /// This side accepted the connection.
    #[must_use]
    pub const fn server_side(&self) -> bool {
        self.flags.contains(EventFlags::SERVER_SIDE)
    }

    /// The peer forbids joins to its initial address and port.
    #[must_use]
    pub const fn deny_join_id0(&self) -> bool {
        self.flags.contains(EventFlags::DENY_JOIN_ID0)
    }
}

/// ANNOUNCED: the peer advertised an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddress {
    /// Local token.
    pub token: Token,
    /// The peer's id for the address.
    pub id: u8,
    /// The address.
    pub addr: IpAddr,
    /// The announced port or, if none, the peer port of the initial subflow.
    pub port: Option<u16>,
}

impl RemoteAddress {
    /// With an IPv4-mapped address as IPv4.
    #[must_use]
    pub fn canonical(self) -> Self {
        Self {
            addr: self.addr.to_canonical(),
            ..self
        }
    }
}

/// A subflow event: `SUB_ESTABLISHED`, `SUB_CLOSED` or `SUB_PRIORITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subflow {
    /// Local token.
    pub token: Token,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// Local address id.
    pub local_id: u8,
    /// Remote address id.
    pub remote_id: u8,
    /// Whether the subflow is a backup subflow (the new value for `SUB_PRIORITY`).
    pub backup: bool,
    /// The interface the subflow is bound to, if it is.
    pub if_idx: Option<i32>,
    /// The subflow's socket error (`sk_err`), e.g. 111 for a refused join.
    pub error: Option<u8>,
    /// `MP_TCPRST` reason.
    pub reset_reason: Option<u32>,
    /// `MP_TCPRST` flags.
    pub reset_flags: Option<u32>,
}

impl Subflow {
    /// This subflow, as commands name it.
    #[must_use]
    pub const fn path(&self) -> SubflowPath {
        SubflowPath {
            token: self.token,
            local: self.local,
            remote: self.remote,
        }
    }
}

/// `LISTENER_CREATED` or `LISTENER_CLOSED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The address and port listened on.
    pub local: SocketAddr,
}

/// An `mptcp_pm` event, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// CREATED.
    Created(Connection),
    /// ESTABLISHED.
    Established(Connection),
    /// CLOSED.
    Closed {
        /// Local token.
        token: Token,
    },
    /// ANNOUNCED.
    Announced(RemoteAddress),
    /// REMOVED: the peer withdrew an address.
    Removed {
        /// Local token.
        token: Token,
        /// The peer's id of the withdrawn address.
        remote_id: u8,
    },
    /// `SUB_ESTABLISHED`.
    SubflowEstablished(Subflow),
    /// `SUB_CLOSED`.
    SubflowClosed(Subflow),
    /// `SUB_PRIORITY`.
    SubflowPriority(Subflow),
    /// `LISTENER_CREATED`.
    ListenerCreated(Listener),
    /// `LISTENER_CLOSED`.
    ListenerClosed(Listener),
    /// An event type this crate does not know, as received.
    Other(PmEvent),
}

impl Event {
    /// The connection token, for the events that carry one.
    #[must_use]
    pub const fn token(&self) -> Option<Token> {
        match self {
            Self::Created(c) | Self::Established(c) => Some(c.token),
            Self::Closed { token } | Self::Removed { token, .. } => Some(*token),
            Self::Announced(a) => Some(a.token),
            Self::SubflowEstablished(s) | Self::SubflowClosed(s) | Self::SubflowPriority(s) => {
                Some(s.token)
            }
            Self::ListenerCreated(_) | Self::ListenerClosed(_) | Self::Other(_) => None,
        }
    }
}

/// Every attribute an event may carry, the last occurrence winning.
#[derive(Default)]
struct Fields {
    token: Option<u32>,
    family: Option<u16>,
    loc_id: Option<u8>,
    rem_id: Option<u8>,
    saddr4: Option<Ipv4Addr>,
    saddr6: Option<Ipv6Addr>,
    daddr4: Option<Ipv4Addr>,
    daddr6: Option<Ipv6Addr>,
    sport: Option<u16>,
    dport: Option<u16>,
    backup: Option<u8>,
    error: Option<u8>,
    flags: Option<EventFlags>,
    if_idx: Option<i32>,
    reset_reason: Option<u32>,
    reset_flags: Option<u32>,
    server_side: Option<u8>,
}

impl Fields {
    fn collect(attrs: &[EventAttr]) -> Self {
        let mut f = Self::default();
        let mut unknown = 0_usize;
        for attr in attrs {
            match attr {
                EventAttr::Token(v) => f.token = Some(*v),
                EventAttr::Family(v) => f.family = Some(*v),
                EventAttr::LocId(v) => f.loc_id = Some(*v),
                EventAttr::RemId(v) => f.rem_id = Some(*v),
                EventAttr::Saddr4(a) => f.saddr4 = Some(*a),
                EventAttr::Saddr6(a) => f.saddr6 = Some(*a),
                EventAttr::Daddr4(a) => f.daddr4 = Some(*a),
                EventAttr::Daddr6(a) => f.daddr6 = Some(*a),
                EventAttr::Sport(v) => f.sport = Some(*v),
                EventAttr::Dport(v) => f.dport = Some(*v),
                EventAttr::Backup(v) => f.backup = Some(*v),
                EventAttr::Error(v) => f.error = Some(*v),
                EventAttr::Flags(v) => f.flags = Some(*v),
                // Defined by the uapi, sent by no event so far.
                EventAttr::Timeout(_) => {}
                EventAttr::IfIdx(v) => f.if_idx = Some(*v),
                EventAttr::ResetReason(v) => f.reset_reason = Some(*v),
                EventAttr::ResetFlags(v) => f.reset_flags = Some(*v),
                EventAttr::ServerSide(v) => f.server_side = Some(*v),
                EventAttr::Other(_) => unknown += 1,
            }
        }
        if unknown > 0 {
            tracing::debug!(unknown, "skipping unknown event attributes");
        }
        f
    }

    /// The family attribute picks between an IPv4 and an IPv6 attribute when both are there.
    fn pick(&self, v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) -> Option<IpAddr> {
        let v4 = v4.map(IpAddr::V4);
        let v6 = v6.map(IpAddr::V6);
        if self.family == Some(AF_INET6) {
            v6.or(v4)
        } else {
            v4.or(v6)
        }
    }
}

fn need<T>(value: Option<T>, what: &'static str, attr: &'static str) -> Result<T, WireError> {
    value.ok_or(WireError::MissingAttribute { what, attr })
}

impl TryFrom<&PmEvent> for Event {
    type Error = WireError;

    fn try_from(event: &PmEvent) -> Result<Self, WireError> {
        let f = Fields::collect(&event.attrs);
        let what = match event.kind {
            EventKind::Created => "CREATED event",
            EventKind::Established => "ESTABLISHED event",
            EventKind::Closed => "CLOSED event",
            EventKind::Announced => "ANNOUNCED event",
            EventKind::Removed => "REMOVED event",
            EventKind::SubEstablished => "SUB_ESTABLISHED event",
            EventKind::SubClosed => "SUB_CLOSED event",
            EventKind::SubPriority => "SUB_PRIORITY event",
            EventKind::ListenerCreated => "LISTENER_CREATED event",
            EventKind::ListenerClosed => "LISTENER_CLOSED event",
            EventKind::Other(_) => return Ok(Self::Other(event.clone())),
        };
        let token = || need(f.token, what, "MPTCP_ATTR_TOKEN");
        let local = || {
            let ip = need(f.pick(f.saddr4, f.saddr6), what, "MPTCP_ATTR_SADDR4/SADDR6")?;
            Ok::<_, WireError>(SocketAddr::new(
                ip,
                need(f.sport, what, "MPTCP_ATTR_SPORT")?,
            ))
        };
        let remote = || {
            let ip = need(f.pick(f.daddr4, f.daddr6), what, "MPTCP_ATTR_DADDR4/DADDR6")?;
            Ok::<_, WireError>(SocketAddr::new(
                ip,
                need(f.dport, what, "MPTCP_ATTR_DPORT")?,
            ))
        };
        let connection = || {
            let mut flags = f.flags.unwrap_or_default();
            if f.server_side.is_some_and(|v| v != 0) {
                flags |= EventFlags::SERVER_SIDE;
            }
            Ok::<_, WireError>(Connection {
                token: token()?,
                local: local()?,
                remote: remote()?,
                local_id: f.loc_id,
                remote_id: f.rem_id,
                flags,
            })
        };
        let subflow = || {
            Ok::<_, WireError>(Subflow {
                token: token()?,
                local: local()?,
                remote: remote()?,
                local_id: need(f.loc_id, what, "MPTCP_ATTR_LOC_ID")?,
                remote_id: need(f.rem_id, what, "MPTCP_ATTR_REM_ID")?,
                backup: f.backup.is_some_and(|v| v != 0),
                if_idx: f.if_idx,
                error: f.error,
                reset_reason: f.reset_reason,
                reset_flags: f.reset_flags,
            })
        };
        Ok(match event.kind {
            EventKind::Created => Self::Created(connection()?),
            EventKind::Established => Self::Established(connection()?),
            EventKind::Closed => Self::Closed { token: token()? },
            EventKind::Announced => Self::Announced(RemoteAddress {
                token: token()?,
                id: need(f.rem_id, what, "MPTCP_ATTR_REM_ID")?,
                addr: need(f.pick(f.daddr4, f.daddr6), what, "MPTCP_ATTR_DADDR4/DADDR6")?,
                port: f.dport,
            }),
            EventKind::Removed => Self::Removed {
                token: token()?,
                remote_id: need(f.rem_id, what, "MPTCP_ATTR_REM_ID")?,
            },
            EventKind::SubEstablished => Self::SubflowEstablished(subflow()?),
            EventKind::SubClosed => Self::SubflowClosed(subflow()?),
            EventKind::SubPriority => Self::SubflowPriority(subflow()?),
            EventKind::ListenerCreated => Self::ListenerCreated(Listener { local: local()? }),
            EventKind::ListenerClosed => Self::ListenerClosed(Listener { local: local()? }),
            EventKind::Other(_) => Self::Other(event.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::{SubflowEnds as _, SubflowPath};

    fn path(local: &str, remote: &str) -> SubflowPath {
        SubflowPath {
            token: 7,
            local: local.parse::<SocketAddr>().unwrap(),
            remote: remote.parse().unwrap(),
        }
    }

    #[test]
    fn a_subflow_path_has_canonical_ends() {
        assert_eq!(
            path("[::ffff:192.0.2.2]:80", "[::ffff:192.0.2.1]:4000").canonical(),
            path("192.0.2.2:80", "192.0.2.1:4000")
        );
        let v6 = path("[2001:db8::2]:80", "[2001:db8::1]:4000");
        assert_eq!(v6.canonical(), v6);
    }
}
