//! Benchmarks that `cargo xtask bench` runs (root): measurements against the real kernel, each
//! beside a floor or a peer measured in the same run where one exists. Not tests: nothing here
//! judges a timing.

pub mod churn;
pub mod monitor;
pub mod netlink;
pub mod report;
pub mod storm;
