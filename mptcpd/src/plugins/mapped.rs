//! Subflows the kernel reported with IPv4-mapped IPv6 addresses.
//!
//! Plugins see canonical IPv4 addresses (`mptcp_pm::canonical`), but the kernel finds an
//! `AF_INET6` subflow carrying IPv4 (a dual-stack socket's) only by its mapped addresses
//! (`SUBFLOW_DESTROY`, `SET_FLAGS` by token), while a subflow of the same connection that
//! joined through an IPv4 listener is `AF_INET`. So the handle remembers which subflows came
//! mapped and maps their addresses back in commands.

use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
};

use mptcp_pm::{SubflowPath, Token, canonical};

/// The subflows (token, canonical local, canonical remote) reported mapped.
#[derive(Debug, Default)]
pub(super) struct MappedSubflows(HashSet<(Token, SocketAddr, SocketAddr)>);

fn mapped(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    }
}

fn is_mapped(addr: SocketAddr) -> bool {
    matches!(addr.ip(), IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

impl MappedSubflows {
    /// A subflow as an event reported it (`local`, `remote` not canonicalised).
    pub(super) fn note(&mut self, token: Token, local: SocketAddr, remote: SocketAddr) {
        if is_mapped(local) || is_mapped(remote) {
            self.0.insert((token, canonical(local), canonical(remote)));
        }
    }

    /// A subflow closed (addresses as the event reported them).
    pub(super) fn forget(&mut self, token: Token, local: SocketAddr, remote: SocketAddr) {
        self.0.remove(&(token, canonical(local), canonical(remote)));
    }

    /// A connection closed.
    pub(super) fn forget_connection(&mut self, token: Token) {
        self.0.retain(|(t, _, _)| *t != token);
    }

    /// The addresses to give the kernel for a subflow a plugin names canonically.
    pub(super) fn to_kernel(&self, subflow: SubflowPath) -> SubflowPath {
        let SubflowPath {
            token,
            local,
            remote,
        } = subflow;
        if self.0.contains(&(token, local, remote)) {
            SubflowPath {
                token,
                local: mapped(local),
                remote: mapped(remote),
            }
        } else {
            subflow
        }
    }

    /// How many are remembered.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use mptcp_pm::SubflowPath;

    use super::MappedSubflows;

    fn sock(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn path(token: u32, local: &str, remote: &str) -> SubflowPath {
        SubflowPath {
            token,
            local: sock(local),
            remote: sock(remote),
        }
    }

    #[test]
    fn only_subflows_reported_mapped_are_mapped_back() {
        let mut m = MappedSubflows::default();
        m.note(
            1,
            sock("[::ffff:192.0.2.2]:80"),
            sock("[::ffff:192.0.2.1]:4000"),
        );
        m.note(1, sock("198.51.100.2:81"), sock("198.51.100.1:4001"));
        m.note(1, sock("[2001:db8::2]:80"), sock("[2001:db8::1]:4002"));
        assert_eq!(m.len(), 1);
        assert_eq!(
            m.to_kernel(path(1, "192.0.2.2:80", "192.0.2.1:4000")),
            path(1, "[::ffff:192.0.2.2]:80", "[::ffff:192.0.2.1]:4000")
        );
        let plain = path(1, "198.51.100.2:81", "198.51.100.1:4001");
        assert_eq!(m.to_kernel(plain), plain);
        let other = path(2, "192.0.2.2:80", "192.0.2.1:4000");
        assert_eq!(m.to_kernel(other), other, "another connection");
        m.forget(
            1,
            sock("[::ffff:192.0.2.2]:80"),
            sock("[::ffff:192.0.2.1]:4000"),
        );
        assert_eq!(m.len(), 0);
        m.note(
            3,
            sock("[::ffff:192.0.2.2]:80"),
            sock("[::ffff:192.0.2.1]:4000"),
        );
        m.forget_connection(3);
        assert_eq!(m.len(), 0);
    }
}
