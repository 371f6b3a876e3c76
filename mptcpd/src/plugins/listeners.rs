//! The listener manager: reference-counted MPTCP listening sockets per address and port, so
//! that joins to addresses announced under the userspace path manager are accepted.
//!
//! Joins never reach a listener's accept queue (the kernel attaches them to their
//! connection), but plain TCP and new MPTCP connections to the port do: a task accepts and
//! closes them, or a full queue would make the kernel drop every SYN to the port, joins
//! included.

use std::{
    io,
    net::{IpAddr, Shutdown, SocketAddr},
    time::Duration,
};

use libc::IPPROTO_MPTCP;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::task::AbortHandle;
use tracing::{debug, warn};

/// Backlog of each listener (joins are short-lived requests; the C daemon's 0 is too tight).
const BACKLOG: i32 = 16;
/// The drain's pause after an accept error that may last (no file descriptor left).
const DRAIN_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Debug)]
struct Listener {
    /// The address and port asked for (port 0: any).
    requested: SocketAddr,
    /// The address and port bound.
    bound: SocketAddr,
    refs: usize,
    socket: Socket,
    /// The task draining the accept queue (none without a tokio runtime).
    drain: Option<AbortHandle>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Stops listening now: the drain task holds a duplicate of the socket and ends later.
        if let Err(e) = self.socket.shutdown(Shutdown::Read) {
            debug!(bound = %self.bound, "stopping a listener: {e}");
        }
        if let Some(drain) = &self.drain {
            drain.abort();
        }
    }
}

/// Accepts and closes every connection that reaches the accept queue, until the listener
/// stops (`EINVAL` once it is shut down).
async fn drain(listener: tokio::net::TcpListener, bound: SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                debug!(%bound, %peer, "closing a connection to a listener for joins");
                drop(stream);
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => {
                warn!(%bound, "draining a listener: {e}");
                tokio::time::sleep(DRAIN_BACKOFF).await;
            }
        }
    }
}

/// Starts the drain of `socket` on the current tokio runtime, if there is one.
fn start_drain(socket: &Socket, bound: SocketAddr) -> io::Result<Option<AbortHandle>> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        debug!(%bound, "no runtime: the listener's accept queue is not drained");
        return Ok(None);
    };
    let duplicate = socket.try_clone()?;
    duplicate.set_nonblocking(true)?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(duplicate.into())?
    };
    Ok(Some(runtime.spawn(drain(listener, bound)).abort_handle()))
}

/// Listening sockets by address and port.
#[derive(Debug)]
pub(crate) struct ListenerManager {
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
    pub(crate) const fn new() -> Self {
        Self::with_protocol(IPPROTO_MPTCP)
    }

    /// A manager of listeners of another stream protocol (tests without MPTCP use TCP).
    #[must_use]
    pub(crate) const fn with_protocol(protocol: i32) -> Self {
        Self {
            protocol,
            listeners: Vec::new(),
        }
    }

    /// Takes a reference to a listener on `addr` and returns the address and port it is
    /// bound to. Port 0 binds an ephemeral port, shared by later requests for the same
    /// address with port 0. Unspecified and broadcast addresses are refused.
    pub(crate) fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
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
        let drain = start_drain(&socket, bound)?;
        self.listeners.push(Listener {
            requested: addr,
            bound,
            refs: 1,
            socket,
            drain,
        });
        Ok(bound)
    }

    /// Drops a reference (by the bound address, or the one asked for); the socket closes
    /// with the last one. `NotFound` if there is no such listener.
    pub(crate) fn close(&mut self, addr: SocketAddr) -> io::Result<()> {
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
    pub(crate) fn listening(&self) -> Vec<(SocketAddr, usize)> {
        self.listeners.iter().map(|l| (l.bound, l.refs)).collect()
    }

    /// Closes every listener.
    pub(crate) fn clear(&mut self) {
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
    use std::{
        net::{SocketAddr, TcpStream},
        time::Duration,
    };

    use socket2::{Domain, Protocol, Socket, Type};

    use super::{IPPROTO_MPTCP, ListenerManager};

    /// A bound on a hang, not a performance expectation.
    const HANG: Duration = Duration::from_secs(30);

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

    #[tokio::test]
    async fn plain_connections_are_drained_so_the_queue_never_fills() {
        let mut lm = ListenerManager::with_protocol(libc::IPPROTO_TCP);
        let bound = lm.listen(sock("127.0.0.1:0")).expect("listen");
        // Twice the backlog and more: without the drain the queue fills at 17 and the kernel
        // drops every later SYN, so the next connect hangs (bounded here).
        let mut streams = Vec::new();
        for n in 0..40 {
            let connect = tokio::net::TcpStream::connect(bound);
            let stream = tokio::time::timeout(HANG, connect)
                .await
                .unwrap_or_else(|_| panic!("connection {n} hangs: the accept queue is full"))
                .expect("connect");
            streams.push(stream);
        }
        lm.close(bound).unwrap();
        assert!(
            tokio::net::TcpStream::connect(bound).await.is_err(),
            "closed with the last reference, at once"
        );
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
