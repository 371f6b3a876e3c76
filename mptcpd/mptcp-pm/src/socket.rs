//! A non-blocking netlink socket on tokio's reactor (`NETLINK_GENERIC` for `mptcp_pm`;
//! `NETLINK_SOCK_DIAG` for the daemon's connection dump, which shares it).

use std::{
    future, io,
    task::{Context, Poll, ready},
};

use netlink_sys::{
    Socket,
    protocols::{NETLINK_GENERIC, NETLINK_SOCK_DIAG},
};
use tokio::io::unix::AsyncFd;

/// Larger than any datagram the kernel builds for netlink (dumps stop at 32 KiB).
const DATAGRAM_CAPACITY: usize = 64 * 1024;

/// What one receive produced.
#[derive(Debug)]
pub enum Received<'a> {
    /// One datagram: one or more netlink messages.
    Datagram(&'a [u8]),
    /// Messages were dropped: the receive buffer overflowed (`ENOBUFS`), or a datagram did
    /// not fit the buffer and was cut.
    Lost,
}

/// A netlink socket registered with tokio, with its receive buffer.
#[derive(Debug)]
pub struct NlSocket {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
}

impl NlSocket {
    /// Opens a socket bound to a kernel-chosen port id, with extended acks on.
    ///
    /// The explicit bind matters for multicast: the kernel skips sockets whose port id is 0
    /// when it broadcasts, so a socket that joins a group unbound gets nothing.
    pub fn open() -> io::Result<Self> {
        Self::open_protocol(NETLINK_GENERIC)
    }

    /// A `NETLINK_SOCK_DIAG` socket, otherwise as [`Self::open`].
    pub fn open_sock_diag() -> io::Result<Self> {
        Self::open_protocol(NETLINK_SOCK_DIAG)
    }

    fn open_protocol(protocol: isize) -> io::Result<Self> {
        // Registering with the reactor would panic outside a runtime; say so instead.
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let mut socket = Socket::new(protocol)?;
        socket.set_non_blocking(true)?;
        socket.bind_auto()?;
        socket.set_ext_ack(true)?;
        // SAFETY: `Socket` owns its descriptor, closes it only on drop and always returns it
        // from `as_raw_fd()`; the `AsyncFd` owns the `Socket` and never hands out `&mut`.
        let fd = unsafe { AsyncFd::register(socket) }?;
        Ok(Self {
            fd,
            buf: Vec::with_capacity(DATAGRAM_CAPACITY),
        })
    }

    /// The socket itself.
    pub(crate) fn socket(&self) -> &Socket {
        self.fd.get_ref()
    }

    /// Sets `SO_RCVBUF`, bypassing `net.core.rmem_max` when privileged (`SO_RCVBUFFORCE`).
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<()> {
        mptcpd_common::rcvbuf::set_receive_buffer(self.socket(), bytes)
    }

    /// Sends one datagram, waiting while the socket is not writable.
    pub async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| fd.get_ref().send(bytes, 0)) {
                Ok(result) => return result.map(drop),
                Err(_would_block) => {}
            }
        }
    }

    /// Receives the next datagram.
    pub async fn recv(&mut self) -> io::Result<Received<'_>> {
        let lost = future::poll_fn(|cx| self.poll_fill(cx)).await?;
        Ok(self.received(lost))
    }

    /// Receives the next datagram, as a poll function.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Received<'_>>> {
        let lost = ready!(self.poll_fill(cx))?;
        Poll::Ready(Ok(self.received(lost)))
    }

    fn received(&self, lost: bool) -> Received<'_> {
        if lost {
            Received::Lost
        } else {
            Received::Datagram(&self.buf)
        }
    }

    /// A datagram already queued, without waiting; `Ok(None)` when there is none.
    pub fn try_recv(&mut self) -> io::Result<Option<Received<'_>>> {
        match recv_into(self.fd.get_ref(), &mut self.buf) {
            Ok(lost) => Ok(Some(self.received(lost))),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Receives the next datagram into the buffer; `Ok(true)` when messages were lost.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let Self { fd, buf } = self;
        loop {
            let mut guard = ready!(fd.poll_read_ready(cx))?;
            match guard.try_io(|fd| recv_into(fd.get_ref(), buf)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => {}
            }
        }
    }
}

/// One non-blocking receive into `buf`; `Ok(true)` when messages were lost.
fn recv_into(socket: &Socket, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    // MSG_TRUNC makes recv() return the datagram's real size, so a cut is visible.
    match socket.recv(buf, libc::MSG_TRUNC) {
        Ok(len) if len > buf.len() => {
            tracing::warn!(len, capacity = buf.capacity(), "netlink datagram truncated");
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(err) if err.raw_os_error() == Some(libc::ENOBUFS) => Ok(true),
        Err(err) => Err(err),
    }
}
