//! mptcpd: a Multipath TCP path-management daemon.
//!
//! The daemon's logic lives here; the `mptcpd` binary only parses its command line and calls
//! [`daemon::run`]. See `docs/architecture.md` for how the parts fit.

pub mod cli;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod diag;
pub mod netmon;
pub mod plugins;
pub mod pm;
pub mod sockopt;
