//! Receive buffers of the netlink sockets that must not overrun (path-manager events, link and
//! address notifications): asked for past `net.core.rmem_max` when privileged. One copy for the
//! `mptcp_pm` event socket (crate `mptcp-pm`) and the network monitor (crate `mptcpd-netmon`).

use std::{io, os::fd::AsFd};

use nix::sys::socket::{getsockopt, setsockopt, sockopt};

/// Sets the receive buffer to `bytes` (the kernel doubles it for its bookkeeping):
/// `SO_RCVBUFFORCE`, which ignores `net.core.rmem_max` but needs `CAP_NET_ADMIN`, else
/// `SO_RCVBUF`, which the kernel caps at `rmem_max` (208 KiB by default).
pub fn set_receive_buffer(fd: impl AsFd, bytes: usize) -> io::Result<()> {
    setsockopt(&fd, sockopt::RcvBufForce, &bytes)
        .or_else(|_| setsockopt(&fd, sockopt::RcvBuf, &bytes))
        .map_err(io::Error::from)
}

/// The receive buffer the kernel granted (`SO_RCVBUF`: twice what was asked, within limits).
pub fn receive_buffer(fd: impl AsFd) -> io::Result<usize> {
    getsockopt(&fd, sockopt::RcvBuf).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::{receive_buffer, set_receive_buffer};

    #[test]
    fn the_kernel_grants_twice_what_was_asked_within_rmem_max() {
        let (socket, _peer) = UnixDatagram::pair().unwrap();
        // Small enough to be under any rmem_max, large enough to be over the minimum.
        set_receive_buffer(&socket, 64 * 1024).unwrap();
        assert_eq!(receive_buffer(&socket).unwrap(), 128 * 1024);
    }
}
