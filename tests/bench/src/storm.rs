//! A connection storm: many short MPTCP (or TCP) connections from the client to the server of
//! [`TwoHosts`], each echoing one byte and closing gracefully on both sides.

use std::{
    io::{self, Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::Context as _;

use mptcpd_tests::{net::two_hosts::TwoHosts, sockets::mptcp};

/// Client threads that connect at the same time.
const CLIENT_THREADS: usize = 4;

/// The server's listener, made once and reused by every storm.
#[derive(Debug)]
pub(crate) struct StormServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl StormServer {
    /// Listens on `addr` in the server's namespace.
    pub(crate) fn new(hosts: &TwoHosts, addr: SocketAddr) -> anyhow::Result<Self> {
        Self::with_protocol(hosts, addr, Proto::Mptcp)
    }

    /// Listens on `addr` in the server's namespace with `proto`.
    pub(crate) fn with_protocol(
        hosts: &TwoHosts,
        addr: SocketAddr,
        proto: Proto,
    ) -> anyhow::Result<Self> {
        let listener = hosts.server.run(|| match proto {
            Proto::Mptcp => mptcp::listen(addr),
            Proto::Tcp => TcpListener::bind(addr),
        })??;
        // Non-blocking, so the acceptor can notice when the clients gave up.
        listener.set_nonblocking(true)?;
        Ok(Self { listener, addr })
    }

    /// Makes `connections` connections, [`CLIENT_THREADS`] at a time, and returns once every
    /// one was closed on both sides.
    pub(crate) fn storm(&self, hosts: &TwoHosts, connections: usize) -> anyhow::Result<()> {
        let addr = self.addr;
        self.serve_while(connections, || {
            hosts
                .client
                .run(|| clients(addr, connections, Proto::Mptcp))?
                .context("client")
        })
    }

    /// Serves `connections` connections while `clients` (which makes them, in this process
    /// or another) runs; returns what `clients` returned once both are done.
    pub(crate) fn serve_while<T>(
        &self,
        connections: usize,
        clients: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let clients_done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let acceptor = scope.spawn(|| self.accept(connections, &clients_done));
            let made = clients();
            clients_done.store(true, Ordering::Relaxed);
            let served = acceptor
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("server thread panicked")));
            let made = made?;
            served.context("server")?;
            Ok(made)
        })
    }

    /// Accepts `connections` connections (or stops when the clients are done) and serves each:
    /// reads to the end, then closes.
    fn accept(&self, connections: usize, clients_done: &AtomicBool) -> io::Result<()> {
        let mut served = 0;
        while served < connections {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false)?;
                    // Echo the byte: data both ways makes the connection fully established,
                    // and the client's PM then opens its extra subflow.
                    let mut byte = [0_u8; 1];
                    stream.read_exact(&mut byte)?;
                    stream.write_all(&byte)?;
                    io::copy(&mut stream, &mut io::sink())?;
                    served += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if clients_done.load(Ordering::Relaxed) {
                        return Err(io::Error::other(format!(
                            "the clients stopped after {served} connections"
                        )));
                    }
                    wait_readable(&self.listener, 100)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The protocol of a storm's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Proto {
    /// Plain TCP.
    Tcp,
    /// MPTCP.
    Mptcp,
}

/// Makes `connections` connections to `addr`, [`CLIENT_THREADS`] at a time (from the calling
/// thread's namespace).
pub(crate) fn clients(addr: SocketAddr, connections: usize, proto: Proto) -> io::Result<()> {
    std::thread::scope(|threads| {
        let handles: Vec<_> = (0..CLIENT_THREADS)
            .map(|t| {
                let share = (connections + CLIENT_THREADS - 1 - t) / CLIENT_THREADS;
                threads.spawn(move || -> io::Result<()> {
                    for _ in 0..share {
                        one_connection(addr, proto)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("client thread panicked")))
        })
    })
}

/// Connects, sends a byte and reads it back, half-closes, reads until the server closes,
/// closes.
fn one_connection(addr: SocketAddr, proto: Proto) -> io::Result<()> {
    let mut stream: TcpStream = match proto {
        Proto::Mptcp => mptcp::connect(addr)?,
        Proto::Tcp => TcpStream::connect(addr)?,
    };
    stream.write_all(b"x")?;
    stream.read_exact(&mut [0_u8; 1])?;
    stream.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    Ok(())
}

/// Waits up to `ms` milliseconds for a connection to accept.
fn wait_readable(listener: &TcpListener, ms: i32) -> io::Result<()> {
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    if unsafe { libc::poll(&raw mut fd, 1, ms) } < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}
