//! The network monitor: the host's links and IPv4/IPv6 addresses, from a start-up dump and
//! live rtnetlink notifications, as [`NetEvent`]s that map onto the C plugin callbacks
//! `new_interface`, `update_interface`, `delete_interface`, `new_local_address` and
//! `delete_local_address`.
//!
//! `state` holds all the decisions and is tested without a kernel; `wire` is the rtnetlink
//! messages, lean (only what the monitor reads); `decode` turns them into its inputs (both
//! public for the fuzz targets); `monitor` owns the sockets and the task. `wire`, `decode` and
//! `monitor` need the default feature `monitor`; without it the crate is the I/O-free model,
//! flags and state machine (what the plugin API re-exports).

#[cfg(feature = "monitor")]
pub mod decode;
#[cfg(feature = "monitor")]
mod error;
mod flags;
mod model;
#[cfg(feature = "monitor")]
mod monitor;
mod policy;
#[cfg(feature = "monitor")]
mod routing;
pub mod state;
#[cfg(feature = "monitor")]
pub mod wire;

#[cfg(feature = "monitor")]
pub use error::{NetmonError, RequestError};
pub use flags::{NotifyFlags, NotifyFlagsError};
pub use model::{
    AddressScope, Family, IFA_F_DADFAILED, IFA_F_TENTATIVE, IFF_LOOPBACK, IFF_LOWER_UP,
    IFF_RUNNING, IFF_UP, Interface, LocalAddress, NetEvent, OperState,
};
#[cfg(feature = "monitor")]
pub use monitor::{NOTIFY_RECEIVE_BUFFER, NetworkMonitor};
pub use policy::{
    AddressClass, AddressFilter, IFA_F_DEPRECATED, IFA_F_TEMPORARY, InterfacePattern, PolicyError,
    Prefix, parse_list,
};
