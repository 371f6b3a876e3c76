//! Test harness for mptcpd against the real kernel: RAII guards for what tests create
//! (namespaces, veth pairs, addresses, sysctls, cgroups), a daemon runner with readiness and
//! log capture, and MPTCP socket helpers. The lab (`cargo xtask lab`) is built from the same
//! parts.
//!
//! Every guard removes what it made when dropped, which also happens while a panicking test
//! unwinds. Tests that need root call [`skip::require_root`], which skips outside CI and fails
//! with `CI=true`.

pub mod bins;
pub mod c_peer;
pub mod cgroup;
pub mod daemon;
pub mod daemons;
pub mod endpoints;
pub mod faults;
pub mod fds;
pub mod features;
pub mod interrupt;
pub mod ip;
pub mod lab;
pub mod mptcp;
pub mod mptcp_tokio;
pub mod mptcpize;
pub mod netns;
pub mod pm;
pub mod pm_conn;
pub mod restart_lab;
pub mod skip;
pub mod sspi_pair;
pub mod sysctl;
pub mod two_hosts;
pub mod veth;
