//! The kernel's path manager as tests see it: its events, a connection with a client and an
//! event stream on each side, and its endpoint table.

pub mod connection;
pub mod endpoints;
pub mod events;
