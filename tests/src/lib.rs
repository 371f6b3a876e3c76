//! Test harness for mptcpd against the real kernel: RAII guards for what tests create
//! (namespaces, veth pairs, addresses, sysctls, cgroups), a daemon runner with readiness and
//! log capture, and MPTCP socket helpers. The lab (`cargo xtask lab`) is built from the same
//! parts.
//!
//! Every guard removes what it made when dropped, which also happens while a panicking test
//! unwinds. Tests that need root call [`skip::require_root`], which skips outside CI and fails
//! with `CI=true`.

pub mod bins;
pub mod daemon;
pub mod dbus;
pub mod debian;
pub mod ebpf;
pub mod faults;
pub mod features;
pub mod interrupt;
pub mod kernel_pm;
pub mod lab;
pub mod net;
pub mod prometheus;
pub mod skip;
pub mod sockets;
