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
        /// What went wrong.
        #[source]
        source: RequestError,
    },
    /// A route lookup failed for another reason than "no such route" (the request socket
    /// is gone).
    #[error("looking up a route")]
    Lookup(#[source] RequestError),
    /// The notification socket closed.
    #[error("the rtnetlink notification socket closed")]
    Closed,
    /// The monitor task panicked or was cancelled.
    #[error("the network monitor task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Why a request on the rtnetlink socket got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request could not be handed to the socket's task (it has stopped).
    #[error("sending the request")]
    Send(#[source] netlink_proto::NetlinkProtoError),
    /// The kernel answered with an error.
    #[error("refused by the kernel")]
    Kernel(#[source] io::Error),
    /// The answer was a message of a type that does not answer this request.
    #[error("unexpected answer of type {0}")]
    Unexpected(u16),
}
