//! Daemons under test: the process runner (readiness, log, reaping), ours or the C peer with
//! the same settings, and the namespaces set up for them (restart, sspi).

pub mod c_peer;
pub mod process;
pub mod restart_lab;
pub mod sspi_pair;
pub mod subject;
