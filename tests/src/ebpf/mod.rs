//! What the eBPF side acts on: cgroups, another process's sockets, and the `mptcpize` binary
//! with a pin directory of the test's own.

pub mod cgroup;
pub mod fds;
pub mod mptcpize;
