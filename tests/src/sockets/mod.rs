//! MPTCP sockets for tests, blocking and for tokio.

pub mod mptcp;
pub mod mptcp_tokio;
pub mod sockopt;
