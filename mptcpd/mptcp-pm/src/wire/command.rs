//! Command numbers (`MPTCP_PM_CMD_*`): the genl `cmd` field of requests and replies.

/// A command of the `mptcp_pm` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PmCmd {
    /// 1: add an endpoint (in-kernel PM).
    AddAddr,
    /// 2: delete an endpoint.
    DelAddr,
    /// 3: get one endpoint, or dump them (with a token: a userspace-PM connection's addresses).
    GetAddr,
    /// 4: delete every endpoint.
    FlushAddrs,
    /// 5: set the limits.
    SetLimits,
    /// 6: get the limits.
    GetLimits,
    /// 7: change an endpoint's flags, or (with a token) a connection's subflows' backup flag.
    SetFlags,
    /// 8: userspace PM: announce a local address (`ADD_ADDR`).
    Announce,
    /// 9: userspace PM: withdraw a local address (`RM_ADDR`).
    Remove,
    /// 10: userspace PM: open a subflow.
    SubflowCreate,
    /// 11: userspace PM: close a subflow.
    SubflowDestroy,
    /// A number this crate does not know.
    Other(u8),
}

impl From<u8> for PmCmd {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::AddAddr,
            2 => Self::DelAddr,
            3 => Self::GetAddr,
            4 => Self::FlushAddrs,
            5 => Self::SetLimits,
            6 => Self::GetLimits,
            7 => Self::SetFlags,
            8 => Self::Announce,
            9 => Self::Remove,
            10 => Self::SubflowCreate,
            11 => Self::SubflowDestroy,
            other => Self::Other(other),
        }
    }
}

impl From<PmCmd> for u8 {
    fn from(cmd: PmCmd) -> Self {
        match cmd {
            PmCmd::AddAddr => 1,
            PmCmd::DelAddr => 2,
            PmCmd::GetAddr => 3,
            PmCmd::FlushAddrs => 4,
            PmCmd::SetLimits => 5,
            PmCmd::GetLimits => 6,
            PmCmd::SetFlags => 7,
            PmCmd::Announce => 8,
            PmCmd::Remove => 9,
            PmCmd::SubflowCreate => 10,
            PmCmd::SubflowDestroy => 11,
            PmCmd::Other(other) => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PmCmd;

    #[test]
    fn numbers_round_trip() {
        for n in 0..=u8::MAX {
            assert_eq!(u8::from(PmCmd::from(n)), n);
        }
        assert_eq!(PmCmd::from(10), PmCmd::SubflowCreate);
        assert_eq!(PmCmd::from(12), PmCmd::Other(12));
    }
}
