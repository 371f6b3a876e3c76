//! The plugin API of mptcpd: what a path-manager plugin implements ([`Plugin`]), the handle
//! through which it commands the kernel ([`PathManager`]), and the plain types both use.
//!
//! # Async model
//!
//! Callbacks are async: each returns a boxed future ([`BoxFuture`]) that the host awaits
//! before it delivers the next event, so a plugin sees events in order and writes straight-line
//! code that awaits the kernel's answer to each command (`pm.add_endpoint(e).await?`). No
//! result comes back later through another callback. The futures are `Send`, so a host may
//! run on any tokio runtime; a callback that awaits for long delays every later event, which
//! is fine for netlink commands (the kernel answers at once).
//!
//! A callback looks like this (the default implementations do nothing):
//!
//! ```
//! use std::net::IpAddr;
//! use mptcpd_plugin::{BoxFuture, Interface, PathManager, Plugin};
//!
//! struct Logger;
//!
//! impl Plugin for Logger {
//!     fn name(&self) -> &'static str { "logger" }
//!     fn description(&self) -> &'static str { "logs new addresses" }
//!     fn new_local_address<'a>(
//!         &'a mut self,
//!         iface: &'a Interface,
//!         addr: IpAddr,
//!         _pm: &'a dyn PathManager,
//!     ) -> BoxFuture<'a, ()> {
//!         Box::pin(async move { println!("{addr} on {}", iface.name) })
//!     }
//! }
//! ```
//!
//! The crate does no I/O: the daemon implements [`PathManager`] over netlink, and the
//! `testing` feature offers a recording fake for unit tests of plugin decisions.

mod error;
mod flags;
mod ids;
mod path_manager;
mod plugin;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use error::{PmError, errno};
pub use flags::{EndpointFlags, FlagsError};
pub use ids::IdManager;
pub use path_manager::{Commands, PathManager, PmFuture};
pub use plugin::{
    BoxFuture, PRIORITY_DEFAULT, PRIORITY_HIGH, PRIORITY_LOW, Plugin, PluginConfig, done,
};
pub use types::{Connection, Endpoint, Interface, Limits, RemoteAddress, Subflow, Token};
