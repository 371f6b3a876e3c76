//! Resolving the `mptcp_pm` family through the generic-netlink controller (`nlctrl`).

use netlink_packet_core::{NlaBuffer, NlasIterator, parse_string, parse_u16, parse_u32};
use netlink_packet_generic::{
    constants::{
        CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_MCAST_GROUPS, CTRL_ATTR_MCAST_GRP_ID,
        CTRL_ATTR_MCAST_GRP_NAME, CTRL_ATTR_OP_FLAGS, CTRL_ATTR_OP_ID, CTRL_ATTR_OPS,
        CTRL_ATTR_VERSION,
    },
    ctrl::{GenlCtrl, GenlCtrlCmd, nlas::GenlCtrlAttrs},
};

use super::{PmCmd, WireError};

/// A generic-netlink family as the controller describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Family {
    /// Family name.
    pub name: String,
    /// Dynamic family id: the netlink message type of its messages.
    pub id: u16,
    /// Family version.
    pub version: u32,
    /// Operations the kernel implements, with their `GENL_*` flags.
    pub ops: Vec<Op>,
    /// Multicast groups.
    pub groups: Vec<McastGroup>,
}

/// One operation of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// Command number.
    pub cmd: u32,
    /// `GENL_ADMIN_PERM`, `GENL_UNS_ADMIN_PERM`, `GENL_CMD_CAP_*`...
    pub flags: u32,
}

/// One multicast group of a family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McastGroup {
    /// Group name.
    pub name: String,
    /// Group id, for `NETLINK_ADD_MEMBERSHIP`.
    pub id: u32,
}

impl Family {
    /// The id of the multicast group called `name`.
    #[must_use]
    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|g| g.name == name).map(|g| g.id)
    }

    /// Whether the kernel implements `cmd` (e.g. the userspace-PM commands, Linux 5.19+).
    #[must_use]
    pub fn supports(&self, cmd: PmCmd) -> bool {
        let cmd = u32::from(u8::from(cmd));
        self.ops.iter().any(|op| op.cmd == cmd)
    }

    /// Reads a `CTRL_CMD_NEWFAMILY` reply (the genl payload); unknown attributes are skipped
    /// so that a newer controller does not break resolution.
    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        let mut family = Self::default();
        let mut has_id = false;
        for nla in NlasIterator::new(payload) {
            let nla = nla?;
            let value = nla.value();
            match nla.kind() {
                CTRL_ATTR_FAMILY_ID => {
                    family.id = parse_u16(value)?;
                    has_id = true;
                }
                CTRL_ATTR_FAMILY_NAME => family.name = parse_string(value)?,
                CTRL_ATTR_VERSION => family.version = parse_u32(value)?,
                CTRL_ATTR_OPS => {
                    family.ops = nests(value, |op| {
                        let mut out = Op { cmd: 0, flags: 0 };
                        for nla in NlasIterator::new(op.value()) {
                            let nla = nla?;
                            match nla.kind() {
                                CTRL_ATTR_OP_ID => out.cmd = parse_u32(nla.value())?,
                                CTRL_ATTR_OP_FLAGS => out.flags = parse_u32(nla.value())?,
                                _ => {}
                            }
                        }
                        Ok(out)
                    })?;
                }
                CTRL_ATTR_MCAST_GROUPS => {
                    family.groups = nests(value, |grp| {
                        let mut out = McastGroup {
                            name: String::new(),
                            id: 0,
                        };
                        for nla in NlasIterator::new(grp.value()) {
                            let nla = nla?;
                            match nla.kind() {
                                CTRL_ATTR_MCAST_GRP_NAME => out.name = parse_string(nla.value())?,
                                CTRL_ATTR_MCAST_GRP_ID => out.id = parse_u32(nla.value())?,
                                _ => {}
                            }
                        }
                        Ok(out)
                    })?;
                }
                _ => {}
            }
        }
        if has_id {
            Ok(family)
        } else {
            Err(WireError::MissingAttribute {
                what: "nlctrl reply",
                attr: "CTRL_ATTR_FAMILY_ID",
            })
        }
    }
}

/// Parses each nested entry of an array nest.
fn nests<T>(
    value: &[u8],
    parse: impl Fn(NlaBuffer<&[u8]>) -> Result<T, WireError>,
) -> Result<Vec<T>, WireError> {
    NlasIterator::new(value).map(|nla| parse(nla?)).collect()
}

/// `CTRL_CMD_GETFAMILY` for `name`.
#[must_use]
pub fn get_family_request(name: &str) -> GenlCtrl {
    GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_owned())],
    }
}
