//! The kernel's MPTCP path manager over generic netlink (family `mptcp_pm`): the wire format,
//! with the feature `client`, an async request/reply client and the event stream.

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
mod driver;
mod error;
#[cfg(feature = "client")]
pub mod events;
#[cfg(feature = "client")]
pub mod socket;
pub mod wire;

#[cfg(feature = "client")]
pub use client::PmClient;
pub use error::PmError;
#[cfg(feature = "client")]
pub use events::{EventItem, EventStream};
