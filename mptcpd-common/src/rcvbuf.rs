//! Receive buffers of the netlink sockets that must not overrun (path-manager events, link and
//! address notifications): asked for past `net.core.rmem_max` when privileged.

use std::{
    io,
    os::fd::{AsFd, AsRawFd as _},
};

/// Sets the receive buffer to `bytes` (the kernel doubles it for its bookkeeping):
/// `SO_RCVBUFFORCE`, which ignores `net.core.rmem_max` but needs `CAP_NET_ADMIN`, else
/// `SO_RCVBUF`, which the kernel caps at `rmem_max` (208 KiB by default).
pub fn set_receive_buffer(fd: impl AsFd, bytes: usize) -> io::Result<()> {
    let fd = fd.as_fd();
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |option| {
        // SAFETY: `fd` is borrowed for the call; the value pointer and length describe a live
        // c_int.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&raw const value).cast(),
                libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(4),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    set(libc::SO_RCVBUFFORCE).or_else(|_| set(libc::SO_RCVBUF))
}

/// The receive buffer the kernel granted (`SO_RCVBUF`: twice what was asked, within limits).
pub fn receive_buffer(fd: impl AsFd) -> io::Result<usize> {
    let mut buf = [0_u8; size_of::<libc::c_int>()];
    let len = super::getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &mut buf)?;
    let bytes = buf
        .get(..len)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short SO_RCVBUF"))?;
    Ok(usize::try_from(libc::c_int::from_ne_bytes(bytes)).unwrap_or(0))
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
