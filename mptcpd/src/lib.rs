//! mptcpd: a Multipath TCP path-management daemon.
//!
//! The daemon's logic lives here; the `mptcpd` binary is `Daemon::builder().run()`, and a
//! crate with plugins of its own runs the same daemon with them:
//!
//! ```no_run
//! # struct MyPlugin;
//! # impl mptcpd_plugin::Plugin for MyPlugin {
//! #     fn name(&self) -> &'static str { "mine" }
//! #     fn description(&self) -> &'static str { "mine" }
//! #     fn on_event<'a>(&'a self, _: &'a mptcpd_plugin::Event, _: &'a dyn mptcpd_plugin::PathManager)
//! #         -> mptcpd_plugin::BoxFuture<'a, ()> { mptcpd_plugin::done() }
//! # }
//! fn main() -> std::process::ExitCode {
//!     mptcpd::Daemon::builder().plugin(MyPlugin).run()
//! }
//! ```
//!
//! See `docs/architecture.md` for how the parts fit.

pub mod cli;
pub mod config;
pub mod connections;
pub(crate) mod daemon;
#[cfg(feature = "dbus")]
pub(crate) mod dbus;
#[cfg(not(feature = "dbus"))]
#[path = "dbus_off.rs"]
pub(crate) mod dbus;
pub mod diag;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
pub mod plugins;
pub mod stats;

pub use daemon::Daemon;
