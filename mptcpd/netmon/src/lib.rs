//! The network monitor: the host's links and IPv4/IPv6 addresses, from a start-up dump and
//! live rtnetlink notifications, as [`NetEvent`]s that map onto the C plugin callbacks
//! `new_interface`, `update_interface`, `delete_interface`, `new_local_address` and
//! `delete_local_address`.
//!
//! `state` holds all the decisions and is tested without a kernel; `decode` turns rtnetlink
//! messages into its inputs (public for the fuzz targets); `monitor` owns the sockets and the
//! task.

pub mod decode;
mod error;
mod flags;
mod model;
mod monitor;
pub mod state;

pub use error::NetmonError;
pub use flags::{NotifyFlags, NotifyFlagsError};
pub use model::{
    AddressScope, Family, IFA_F_DADFAILED, IFA_F_TENTATIVE, IFF_LOOPBACK, IFF_LOWER_UP,
    IFF_RUNNING, IFF_UP, Interface, LocalAddress, NetEvent, OperState,
};
pub use monitor::{NOTIFY_RECEIVE_BUFFER, NetworkMonitor};
