//! The network interfaces plugins hear of (the path-manager types are `mptcp_pm`'s).

/// A network interface the monitor reports (up and running).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interface {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFF_*` flags.
    pub flags: u32,
}
