//! The kernel's MPTCP path manager over generic netlink (family `mptcp_pm`).
//!
//! - [`wire`]: the wire format, apart from any I/O.
//! - The domain types everything else uses (the daemon, `mptcpctl`, the plugin API and its
//!   plugins): [`Endpoint`], [`EndpointFlags`] (with the `--addr-flags` text form),
//!   [`Limits`], the events ([`Event`]: [`Connection`], [`Subflow`], [`RemoteAddress`],
//!   [`Listener`], with every attribute the kernel sends) and [`PmError`] with typed refusals.
//! - With the feature `client`: an async request/reply client (`PmClient`), the event
//!   stream (`EventStream`) and the netlink socket under them.

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
mod driver;
mod endpoint;
mod error;
mod event;
#[cfg(feature = "client")]
pub mod events;
mod flags;
#[cfg(feature = "client")]
pub mod socket;
pub mod wire;

#[cfg(feature = "client")]
pub use client::PmClient;
pub use endpoint::{Endpoint, Limits};
pub use error::{PmError, errno};
pub use event::{
    Connection, Event, Listener, NewSubflow, RemoteAddress, Subflow, SubflowEnds, SubflowPath,
    Token, canonical,
};
#[cfg(feature = "client")]
pub use events::{EventItem, EventStream};
pub use flags::{EndpointFlags, EventFlags, FlagsError};
