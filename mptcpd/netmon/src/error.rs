//! Why the network monitor could not start or stopped.

use std::io;

/// A network-monitor failure. Kernel messages it cannot use are skipped, not errors.
#[derive(Debug, thiserror::Error)]
pub enum NetmonError {
    /// A `NETLINK_ROUTE` socket could not be opened, bound or subscribed.
    #[error("opening the rtnetlink socket")]
    Socket(#[source] io::Error),
    /// The kernel refused a dump of links or addresses.
    #[error("dumping {what}")]
    Dump {
        /// `links` or `addresses`.
        what: &'static str,
        /// The rtnetlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A route lookup failed for another reason than "no such route" (the request socket
    /// is gone).
    #[error("looking up a route")]
    Lookup(#[source] rtnetlink::Error),
    /// The notification socket closed.
    #[error("the rtnetlink notification socket closed")]
    Closed,
    /// The monitor task panicked or was cancelled.
    #[error("the network monitor task failed")]
    Task(#[source] tokio::task::JoinError),
}
