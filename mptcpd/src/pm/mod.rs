//! The kernel's MPTCP path manager over generic netlink (family `mptcp_pm`): the wire format,
//! an async request/reply client and the event stream.

pub mod client;
mod driver;
mod error;
pub mod events;
pub(crate) mod socket;
pub mod wire;

pub use client::PmClient;
pub use error::PmError;
pub use events::{EventItem, EventStream};
