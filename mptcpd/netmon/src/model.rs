//! What the monitor reports: interfaces, local addresses and the events about them.

use std::net::IpAddr;

/// `IFF_UP`: the administrator brought the link up.
pub const IFF_UP: u32 = 0x1;
/// `IFF_LOOPBACK`.
pub const IFF_LOOPBACK: u32 = 0x8;
/// `IFF_RUNNING`: up and operationally up (carrier, not dormant).
pub const IFF_RUNNING: u32 = 0x40;
/// `IFF_LOWER_UP`: the driver reports a carrier.
pub const IFF_LOWER_UP: u32 = 0x1_0000;

/// `IFA_F_DADFAILED`: duplicate address detection failed; the address cannot be used.
pub const IFA_F_DADFAILED: u32 = 0x08;
/// `IFA_F_TENTATIVE`: duplicate address detection is still running; binding fails until then.
pub const IFA_F_TENTATIVE: u32 = 0x40;

/// A network interface (`struct mptcpd_interface` without its address list).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interface {
    /// Interface index.
    pub index: u32,
    /// Interface name (`IFLA_IFNAME`).
    pub name: String,
    /// `IFF_*` flags as the kernel reports them (`ifi_flags`).
    pub flags: u32,
    /// RFC 2863 operational state (`IFLA_OPERSTATE`); `Unknown` when the kernel sent none.
    pub oper_state: OperState,
    /// Link-layer type (`ARPHRD_*`).
    pub link_type: u16,
}

impl Interface {
    /// Whether the link is administratively up.
    #[must_use]
    pub const fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    /// Whether the link is operationally up (`IFF_RUNNING`).
    #[must_use]
    pub const fn is_running(&self) -> bool {
        self.flags & IFF_RUNNING != 0
    }

    /// Whether this is a loopback interface.
    #[must_use]
    pub const fn is_loopback(&self) -> bool {
        self.flags & IFF_LOOPBACK != 0
    }

    /// Whether packets can leave through the link: up, running, and not in an operational
    /// state that says otherwise (`UNKNOWN` counts as up, as for loopback and tunnels).
    #[must_use]
    pub const fn is_ready(&self) -> bool {
        self.is_up()
            && self.is_running()
            && !matches!(
                self.oper_state,
                OperState::NotPresent
                    | OperState::Down
                    | OperState::LowerLayerDown
                    | OperState::Dormant
            )
    }
}

/// RFC 2863 operational state (`IF_OPER_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OperState {
    /// `IF_OPER_UNKNOWN` (or not reported).
    #[default]
    Unknown,
    /// `IF_OPER_NOTPRESENT`.
    NotPresent,
    /// `IF_OPER_DOWN`.
    Down,
    /// `IF_OPER_LOWERLAYERDOWN`.
    LowerLayerDown,
    /// `IF_OPER_TESTING`.
    Testing,
    /// `IF_OPER_DORMANT`.
    Dormant,
    /// `IF_OPER_UP`.
    Up,
    /// A value newer than this code.
    Other(u8),
}

impl From<u8> for OperState {
    fn from(value: u8) -> Self {
        match value {
            0 => Self::Unknown,
            1 => Self::NotPresent,
            2 => Self::Down,
            3 => Self::LowerLayerDown,
            4 => Self::Testing,
            5 => Self::Dormant,
            6 => Self::Up,
            other => Self::Other(other),
        }
    }
}

/// An address's scope (`ifa_scope`, `RT_SCOPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AddressScope {
    /// `RT_SCOPE_UNIVERSE` (global).
    #[default]
    Universe,
    /// `RT_SCOPE_SITE`.
    Site,
    /// `RT_SCOPE_LINK`.
    Link,
    /// `RT_SCOPE_HOST`.
    Host,
    /// `RT_SCOPE_NOWHERE`.
    Nowhere,
    /// A user-defined scope (1..=199) or any other value.
    Other(u8),
}

impl From<u8> for AddressScope {
    fn from(value: u8) -> Self {
        match value {
            0 => Self::Universe,
            200 => Self::Site,
            253 => Self::Link,
            254 => Self::Host,
            255 => Self::Nowhere,
            other => Self::Other(other),
        }
    }
}

/// A local IP address on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalAddress {
    /// Index of the interface the address is on.
    pub ifindex: u32,
    /// The address (`IFA_LOCAL`, else `IFA_ADDRESS`).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Scope.
    pub scope: AddressScope,
    /// `IFA_F_*` flags.
    pub flags: u32,
}

impl LocalAddress {
    /// The address's family.
    #[must_use]
    pub const fn family(&self) -> Family {
        match self.addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Whether the address can be bound now: duplicate address detection neither runs nor
    /// failed.
    #[must_use]
    pub const fn is_usable(&self) -> bool {
        self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0
    }

    /// Link-local by scope or by value (`fe80::/10`, `169.254.0.0/16`): tools that assign
    /// IPv4 link-local addresses do not always set the scope.
    #[must_use]
    pub const fn is_link_local(&self) -> bool {
        matches!(self.scope, AddressScope::Link)
            || match self.addr {
                IpAddr::V4(v4) => v4.is_link_local(),
                IpAddr::V6(v6) => v6.is_unicast_link_local(),
            }
    }

    /// Host-scope or a loopback address (`127.0.0.0/8`, `::1`).
    #[must_use]
    pub const fn is_host_or_loopback(&self) -> bool {
        matches!(self.scope, AddressScope::Host) || self.addr.is_loopback()
    }
}

/// IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// What the monitor tells the daemon; one variant per C plugin callback
/// (`new_interface`, `update_interface`, `delete_interface`, `new_local_address`,
/// `delete_local_address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A link became ready (up and running), including the links found at start-up.
    NewInterface(Interface),
    /// A ready link changed (name, flags or operational state).
    UpdateInterface(Interface),
    /// A ready link went away or stopped being ready; its addresses were withdrawn first.
    DeleteInterface(Interface),
    /// An address became usable for new subflows.
    NewLocalAddress {
        /// The interface it is on.
        interface: Interface,
        /// The address.
        address: LocalAddress,
    },
    /// A reported address went away or stopped being usable.
    DeleteLocalAddress {
        /// The interface it is (or was) on.
        interface: Interface,
        /// The address.
        address: LocalAddress,
    },
}
