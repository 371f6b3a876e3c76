//! The plugin API of mptcpd: what a path-manager plugin implements ([`Plugin`]), the handle
//! through which it commands the kernel ([`PathManager`]), and the plain types both use.
//!
//! # Events and concurrency
//!
//! A plugin implements one entry point, [`Plugin::on_event`], for every [`Event`] (a
//! `#[non_exhaustive]` enum: new kinds of events become variants, and a plugin ignores those
//! it does not match). It returns a boxed future ([`BoxFuture`]) in which the plugin writes
//! straight-line code that awaits the kernel's answer to each command
//! (`pm.add_endpoint(e).await?`); no result comes back later through another event.
//!
//! The host runs events in lanes: one per connection (token), one for interface and address
//! events, one per listening address. A lane is sequential, so a plugin sees the events of
//! one connection (or of the network) in order and one at a time; lanes run concurrently, so
//! a plugin waiting for the kernel on one connection does not hold up the others (the daemon
//! runs one thread today, so lanes interleave where plugins await: never block in a plugin,
//! and expect no parallelism beyond that). Hence
//! plugins are `Send + Sync` and get `&self`: they keep their state behind their own locks.
//! The host could instead hand each event the plugin's per-connection state, but plugins'
//! state is rarely only per connection (the built-ins map local addresses to interfaces
//! across connections), and a lock the plugin chooses keeps [`Plugin`] object-safe and lets
//! it decide what may run in parallel: a `std::sync::Mutex` taken between awaits (as `sspi`
//! does) lets connections proceed in parallel; an async mutex held for a whole event (as
//! `addr_adv` does for its network lane) serialises what must be.
//!
//! A plugin looks like this:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use mptcpd_plugin::{BoxFuture, Event, PathManager, Plugin, done};
//!
//! #[derive(Default)]
//! struct Counter {
//!     addresses: AtomicUsize,
//! }
//!
//! impl Plugin for Counter {
//!     fn name(&self) -> &'static str { "counter" }
//!     fn description(&self) -> &'static str { "counts new local addresses" }
//!     fn on_event<'a>(&'a self, event: &'a Event, _pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
//!         if let Event::NewLocalAddress { iface, addr } = event {
//!             let seen = self.addresses.fetch_add(1, Ordering::Relaxed) + 1;
//!             println!("{addr} on {} ({seen} so far)", iface.name);
//!         }
//!         done()
//!     }
//! }
//! ```
//!
//! `mptcpd::Daemon::builder().plugin(Counter::default()).run()` runs the daemon with it
//! (see `plugins/examples/`).
//!
//! # Path quality
//!
//! A plugin can ask how a connection's paths are doing: [`PathManager::connection_view`]
//! returns the daemon's [`ConnectionView`] of a connection it tracks (token, initial addresses,
//! which side accepted, whether established) with one [`SubflowView`] per subflow (addresses,
//! address ids, interface, backup) and, read at that moment:
//!
//! - [`SubflowView::figures`] ([`PathFigures`]: smoothed RTT and variance, minimum RTT, cwnd,
//!   bytes acked/received, segments, retransmissions, RTOs, TCP state, last activity) when the
//!   daemon's subflow telemetry runs (`--observe-cgroup`) and has a record of that subflow in
//!   the daemon's network namespace; `None` otherwise;
//! - [`ConnectionView::mptcp`] ([`MptcpFigures`]: MPTCP-level retransmissions and bytes
//!   retransmitted, `None` before Linux 6.5, and whether the connection fell back to TCP) from
//!   the kernel's `MPTCP_INFO`; `None` when it could not be read.
//!
//! `None` for a connection the daemon does not track. What must be heard at once arrives as
//! [`Event::Telemetry`] ([`TelemetryEvent`]: token, subflow addresses, figures at that moment),
//! to the plugin that handles the connection, in the connection's lane (so after its
//! `NewSubflow`): [`TelemetryKind::Rto`] (a retransmission timeout fired),
//! [`TelemetryKind::RetransmissionBurst`] (8 retransmissions within a second),
//! [`TelemetryKind::Reset`] (the subflow went from a synchronised state straight to closed) —
//! these three only with subflow telemetry on — and [`TelemetryKind::Fallback`] (the
//! connection's fallback flag, first seen set when the view is read). In unit tests,
//! `testing::RecordingPm::set_connection_view` sets what `connection_view` answers.
//!
//! The crate does no I/O: the daemon implements [`PathManager`] over netlink, and the
//! `testing` feature offers a recording fake for unit tests of plugin decisions.

mod event;
mod health;
mod ids;
mod path_manager;
mod plugin;
mod pm_kind;
mod policy;
mod probe;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use event::Event;
pub use health::{PathDecision, PathHealth};
pub use ids::IdManager;
/// The path manager's domain types, owned by `mptcp_pm` and re-exported under the names
/// plugins use.
pub use mptcp_pm::{
    Connection, Endpoint, EndpointFlags, EventFlags, FlagsError, Limits, NewSubflow, PmError,
    RemoteAddress, Subflow, SubflowPath, Token, errno,
};
/// How a plugin logs an error: the error and its sources on one line (`{}` prints only the
/// outermost message; see docs/architecture.md, "Errors and logs").
pub use mptcpd_common::Chain;
/// The network interfaces plugins hear of: the network monitor's own model (with its
/// operational state and link type), from `mptcpd-netmon` without its I/O.
pub use mptcpd_netmon::{Family, Interface, InterfacePattern, OperState};
pub use path_manager::{Commands, PathManager, PmFuture};
pub use plugin::{
    BoxFuture, HealthConfig, PRIORITY_DEFAULT, PRIORITY_HIGH, PRIORITY_LOW, Plugin, PluginConfig,
    done,
};
pub use pm_kind::PmKind;
pub use policy::{EndpointPolicy, Rank};
pub use probe::{PathProbe, ProbeOutcome};
pub use telemetry::{
    ConnectionView, MptcpFigures, PathFigures, SubflowView, TelemetryEvent, TelemetryKind,
};
