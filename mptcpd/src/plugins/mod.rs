//! The plugin host: built-in plugins, selected by the settings, fed with network-monitor
//! and `mptcp_pm` events, commanding the kernel through a handle that remembers which
//! endpoints this daemon added.
//!
//! - Plugins are compiled in: the built-ins and those given to `crate::Daemon`'s builder
//!   ([`Registry`]); there is no `.so` loading, so `--plugin-dir` only matters for the C
//!   daemon's compatibility checks (a directory, not world-writable).
//! - Connection events go to the plugin that handles the connection (the default plugin,
//!   picked by `--path-manager` or priority, for every new connection), per token; the
//!   token is forgotten when the connection closes (the C daemon leaked it). Listener events
//!   go to the default plugin, interface and address events to every plugin, in priority
//!   order. Events run in lanes: in order per connection, per listening address, and for
//!   the network (interfaces and addresses); different lanes concurrently.
//! - Endpoints added through the handle are "ours" and written to a state file
//!   (`/run/mptcpd/endpoints.netINODE` by default: tmpfs, gone at reboot like the endpoints;
//!   tied to the namespace and the boot, see `owned`). A restarted daemon adopts those the
//!   kernel still has identically (id, address, port, flags, interface); the network monitor
//!   then reports their addresses even without `existing` ([`PluginHost::start_up`]), so
//!   that the plugin that added one adds it again, a no-op that makes it its own (it then
//!   follows its address), and the adopted ones no plugin asked for again are removed.
//!   Shutdown removes ours and only ours.

mod decisions;
mod deferred_write;
mod error;
mod handle;
mod host;
mod kernel;
mod listeners;
mod mapped;
mod netns_id;
mod owned;
mod pm_kind;
mod probe;
mod registry;
mod settings;
pub mod state_file;

pub use decisions::Decisions;
pub use error::PluginError;
pub use handle::HostPm;
pub use host::PluginHost;
pub use kernel::NetlinkPm;
pub use netns_id::NetnsId;
pub use registry::Registry;
pub use settings::PluginSettings;

/// The plugin API, re-exported for the daemon and tests.
pub use mptcpd_plugin as api;
