//! Every request of the `mptcp_pm` family in typed form, and its encoding as a [`PmMessage`].

use super::{Address, PmAttr, PmCmd, PmMessage, WireError};

/// A request to the kernel. Which attributes each command needs is the kernel's business:
/// it answers `EINVAL` with an extack message naming what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `ADD_ADDR`: add an endpoint (address, flags, optional id, port, ifindex).
    AddAddr(Address),
    /// `DEL_ADDR`: delete an endpoint by id (id 0: by address, from every connection).
    DelAddr(Address),
    /// `GET_ADDR` (do): one endpoint by id; with a token, a userspace-PM connection's address.
    GetAddr {
        /// The id to look up.
        addr: Address,
        /// A userspace-PM connection.
        token: Option<u32>,
    },
    /// `GET_ADDR` (dump): every endpoint; with a token, a userspace-PM connection's addresses.
    DumpAddrs {
        /// A userspace-PM connection.
        token: Option<u32>,
    },
    /// `FLUSH_ADDRS`: delete every endpoint.
    FlushAddrs,
    /// `SET_LIMITS`: change either limit or both.
    SetLimits {
        /// `RCV_ADD_ADDRS`.
        add_addr_accepted: Option<u32>,
        /// `SUBFLOWS`.
        subflows: Option<u32>,
    },
    /// `GET_LIMITS`.
    GetLimits,
    /// `SET_FLAGS`: an endpoint's flags (by id or address); with a token, the backup flag of a
    /// userspace-PM connection's subflows from `local` to `remote`.
    SetFlags {
        /// A userspace-PM connection.
        token: Option<u32>,
        /// The endpoint or local address, with the new flags.
        local: Address,
        /// The peer address (token form).
        remote: Option<Address>,
    },
    /// ANNOUNCE (userspace PM): send `ADD_ADDR` for a local address (id, address, `signal`).
    Announce {
        /// The connection.
        token: u32,
        /// The address to announce.
        local: Address,
    },
    /// REMOVE (userspace PM): send `RM_ADDR` for a local address id and close its subflows.
    Remove {
        /// The connection.
        token: u32,
        /// The local address id.
        local_id: u8,
    },
    /// `SUBFLOW_CREATE` (userspace PM): open a subflow from `local` (id, address) to `remote`.
    SubflowCreate {
        /// The connection.
        token: u32,
        /// Local address and id, optional ifindex and flags.
        local: Address,
        /// Peer address and port.
        remote: Address,
    },
    /// `SUBFLOW_DESTROY` (userspace PM): close the subflow between these addresses and ports.
    SubflowDestroy {
        /// The connection.
        token: u32,
        /// Local address and port.
        local: Address,
        /// Peer address and port.
        remote: Address,
    },
}

impl Request {
    /// The genl command.
    #[must_use]
    pub const fn cmd(&self) -> PmCmd {
        match self {
            Self::AddAddr(_) => PmCmd::AddAddr,
            Self::DelAddr(_) => PmCmd::DelAddr,
            Self::GetAddr { .. } | Self::DumpAddrs { .. } => PmCmd::GetAddr,
            Self::FlushAddrs => PmCmd::FlushAddrs,
            Self::SetLimits { .. } => PmCmd::SetLimits,
            Self::GetLimits => PmCmd::GetLimits,
            Self::SetFlags { .. } => PmCmd::SetFlags,
            Self::Announce { .. } => PmCmd::Announce,
            Self::Remove { .. } => PmCmd::Remove,
            Self::SubflowCreate { .. } => PmCmd::SubflowCreate,
            Self::SubflowDestroy { .. } => PmCmd::SubflowDestroy,
        }
    }

    /// Whether the request is a dump (`NLM_F_DUMP`): replies end with `NLMSG_DONE`.
    #[must_use]
    pub const fn is_dump(&self) -> bool {
        matches!(self, Self::DumpAddrs { .. })
    }

    /// The message to send: the token first, then the local and the remote nests.
    #[must_use]
    pub fn to_message(&self) -> PmMessage {
        let addr = |a: &Address| PmAttr::Addr(a.to_attrs());
        let remote = |a: &Address| PmAttr::AddrRemote(a.to_attrs());
        let attrs = match self {
            Self::AddAddr(a) | Self::DelAddr(a) => vec![addr(a)],
            Self::GetAddr { addr: a, token } => token
                .map(PmAttr::Token)
                .into_iter()
                .chain([addr(a)])
                .collect(),
            Self::DumpAddrs { token } => token.map(PmAttr::Token).into_iter().collect(),
            Self::FlushAddrs | Self::GetLimits => Vec::new(),
            Self::SetLimits {
                add_addr_accepted,
                subflows,
            } => add_addr_accepted
                .map(PmAttr::RcvAddAddrs)
                .into_iter()
                .chain(subflows.map(PmAttr::Subflows))
                .collect(),
            Self::SetFlags {
                token,
                local,
                remote: r,
            } => token
                .map(PmAttr::Token)
                .into_iter()
                .chain([addr(local)])
                .chain(r.as_ref().map(remote))
                .collect(),
            Self::Announce { token, local } => vec![PmAttr::Token(*token), addr(local)],
            Self::Remove { token, local_id } => {
                vec![PmAttr::Token(*token), PmAttr::LocId(*local_id)]
            }
            Self::SubflowCreate {
                token,
                local,
                remote: r,
            }
            | Self::SubflowDestroy {
                token,
                local,
                remote: r,
            } => {
                vec![PmAttr::Token(*token), addr(local), remote(r)]
            }
        };
        PmMessage::new(self.cmd(), attrs)
    }

    /// The request a message encodes (the kernel's view of it); `dump` is whether the netlink
    /// header carried `NLM_F_DUMP`.
    pub fn from_message(msg: &PmMessage, dump: bool) -> Result<Self, WireError> {
        let mut token = None;
        let mut local = None;
        let mut remote = None;
        let mut add_addr_accepted = None;
        let mut subflows = None;
        let mut local_id = None;
        for attr in &msg.attrs {
            match attr {
                PmAttr::Addr(nest) => local = Some(Address::from_attrs(nest)),
                PmAttr::AddrRemote(nest) => remote = Some(Address::from_attrs(nest)),
                PmAttr::Token(t) => token = Some(*t),
                PmAttr::LocId(id) => local_id = Some(*id),
                PmAttr::RcvAddAddrs(v) => add_addr_accepted = Some(*v),
                PmAttr::Subflows(v) => subflows = Some(*v),
                PmAttr::Other(_) => {}
            }
        }
        let what = "request";
        let need = |v: Option<Address>, attr| v.ok_or(WireError::MissingAttribute { what, attr });
        let need_token = || {
            token.ok_or(WireError::MissingAttribute {
                what,
                attr: "TOKEN",
            })
        };
        Ok(match msg.cmd {
            PmCmd::AddAddr => Self::AddAddr(need(local, "ADDR")?),
            PmCmd::DelAddr => Self::DelAddr(need(local, "ADDR")?),
            PmCmd::GetAddr if dump => Self::DumpAddrs { token },
            PmCmd::GetAddr => Self::GetAddr {
                addr: need(local, "ADDR")?,
                token,
            },
            PmCmd::FlushAddrs => Self::FlushAddrs,
            PmCmd::SetLimits => Self::SetLimits {
                add_addr_accepted,
                subflows,
            },
            PmCmd::GetLimits => Self::GetLimits,
            PmCmd::SetFlags => Self::SetFlags {
                token,
                local: need(local, "ADDR")?,
                remote,
            },
            PmCmd::Announce => Self::Announce {
                token: need_token()?,
                local: need(local, "ADDR")?,
            },
            PmCmd::Remove => Self::Remove {
                token: need_token()?,
                local_id: local_id.ok_or(WireError::MissingAttribute {
                    what,
                    attr: "LOC_ID",
                })?,
            },
            PmCmd::SubflowCreate => Self::SubflowCreate {
                token: need_token()?,
                local: need(local, "ADDR")?,
                remote: need(remote, "ADDR_REMOTE")?,
            },
            PmCmd::SubflowDestroy => Self::SubflowDestroy {
                token: need_token()?,
                local: need(local, "ADDR")?,
                remote: need(remote, "ADDR_REMOTE")?,
            },
            PmCmd::Other(cmd) => {
                return Err(WireError::UnexpectedCommand {
                    expected: "a known command",
                    cmd,
                });
            }
        })
    }
}
