//! The listener manager: reference-counted MPTCP listening sockets per address and port, so
//! that joins to addresses announced under the userspace path manager are accepted.

use std::{
    io,
    net::{IpAddr, SocketAddr},
};

use socket2::{Domain, Protocol, Socket, Type};

use crate::sockopt::IPPROTO_MPTCP;

/// Backlog of each listener (joins are short-lived requests; the C daemon's 0 is too tight).
const BACKLOG: i32 = 16;

#[derive(Debug)]
struct Listener {
    /// The address and port asked for (port 0: any).
    requested: SocketAddr,
    /// The address and port bound.
    bound: SocketAddr,
    refs: usize,
    /// Closed when dropped.
    _socket: Socket,
}

/// Listening sockets by address and port.
#[derive(Debug)]
pub struct ListenerManager {
    protocol: i32,
    listeners: Vec<Listener>,
}

impl Default for ListenerManager {
    fn default() -> Self {
        Self::new()
    }
}

impl ListenerManager {
    /// A manager of MPTCP listeners.
    #[must_use]
    pub const fn new() -> Self {
        Self::with_protocol(IPPROTO_MPTCP)
    }

    /// A manager of listeners of another stream protocol (tests without MPTCP use TCP).
    #[must_use]
    pub const fn with_protocol(protocol: i32) -> Self {
        Self {
            protocol,
            listeners: Vec::new(),
        }
    }

    /// Takes a reference to a listener on `addr` and returns the address and port it is
    /// bound to. Port 0 binds an ephemeral port, shared by later requests for the same
    /// address with port 0. Unspecified and broadcast addresses are refused.
    pub fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let wildcard = match addr.ip() {
            IpAddr::V4(v4) => v4.is_unspecified() || v4.is_broadcast(),
            IpAddr::V6(v6) => v6.is_unspecified(),
        };
        if wildcard {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a listener needs a specific address",
            ));
        }
        if let Some(l) = self.find_mut(addr) {
            l.refs += 1;
            return Ok(l.bound);
        }
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM,
            Some(Protocol::from(self.protocol)),
        )?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        let bound = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("listener bound to a non-IP address"))?;
        self.listeners.push(Listener {
            requested: addr,
            bound,
            refs: 1,
            _socket: socket,
        });
        Ok(bound)
    }

    /// Drops a reference (by the bound address, or the one asked for); the socket closes
    /// with the last one. `NotFound` if there is no such listener.
    pub fn close(&mut self, addr: SocketAddr) -> io::Result<()> {
        let at = self
            .listeners
            .iter()
            .position(|l| l.bound == addr || l.requested == addr)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such listener"))?;
        let listener = &mut self.listeners[at];
        listener.refs -= 1;
        if listener.refs == 0 {
            self.listeners.swap_remove(at);
        }
        Ok(())
    }

    /// The bound addresses and their references.
    #[must_use]
    pub fn listening(&self) -> Vec<(SocketAddr, usize)> {
        self.listeners.iter().map(|l| (l.bound, l.refs)).collect()
    }

    /// Closes every listener.
    pub fn clear(&mut self) {
        self.listeners.clear();
    }

    fn find_mut(&mut self, addr: SocketAddr) -> Option<&mut Listener> {
        self.listeners
            .iter_mut()
            .find(|l| l.requested == addr || (addr.port() != 0 && l.bound == addr))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, TcpStream};

    use socket2::{Domain, Protocol, Socket, Type};

    use super::{IPPROTO_MPTCP, ListenerManager};

    fn sock(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn refcounted_per_address_and_port() {
        let mut lm = ListenerManager::with_protocol(libc::IPPROTO_TCP);
        let a = lm.listen(sock("127.0.0.1:0")).expect("listen");
        assert_ne!(a.port(), 0, "an ephemeral port is written back");
        assert_eq!(lm.listen(sock("127.0.0.1:0")).unwrap(), a, "port 0 shares");
        assert_eq!(lm.listen(a).unwrap(), a, "the bound port too");
        assert_eq!(lm.listening(), [(a, 3)]);
        TcpStream::connect(a).expect("it listens");
        lm.close(a).unwrap();
        lm.close(sock("127.0.0.1:0")).unwrap();
        assert_eq!(lm.listening(), [(a, 1)]);
        lm.close(a).unwrap();
        assert_eq!(lm.listening(), []);
        assert!(
            TcpStream::connect(a).is_err(),
            "closed with the last reference"
        );
        assert!(lm.close(a).is_err(), "unknown listener");
    }

    #[test]
    fn wildcards_are_refused() {
        let mut lm = ListenerManager::with_protocol(libc::IPPROTO_TCP);
        for addr in ["0.0.0.0:0", "255.255.255.255:1", "[::]:0"] {
            assert!(lm.listen(sock(addr)).is_err(), "{addr}");
        }
    }

    #[test]
    fn mptcp_listener_when_the_kernel_has_mptcp() {
        const TEST: &str = "mptcp_listener_when_the_kernel_has_mptcp";
        // Without MPTCP sockets here (no kernel support, or disabled) there is nothing to test;
        // with them, the listener must work.
        let mptcp = Protocol::from(IPPROTO_MPTCP);
        if let Err(e) = Socket::new(Domain::IPV4, Type::STREAM, Some(mptcp)) {
            mptcpd_test_skip::skip(TEST, &format!("no MPTCP sockets here: {e}"));
            return;
        }
        let mut lm = ListenerManager::new();
        let bound = lm.listen(sock("127.0.0.1:0")).expect("an MPTCP listener");
        drop(TcpStream::connect(bound).expect("connect"));
    }
}
