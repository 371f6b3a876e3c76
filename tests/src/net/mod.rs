//! The network a test builds: namespaces, veth pairs and addresses, sysctls inside them, and
//! the two-host topology made of them.

pub mod ip;
pub mod netns;
pub mod sysctl;
pub mod two_hosts;
pub mod veth;
