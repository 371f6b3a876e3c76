//! MPTCP socket options (`SOL_MPTCP`): per-connection and per-subflow state of a socket this
//! process holds, and `SO_PROTOCOL`. Decoding is pure and tested on bytes; the `getsockopt`
//! calls sit beside it. Only the tests hold the MPTCP sockets these read, so they live here;
//! the daemon sees other processes' connections through `sock_diag` (`mptcpd::diag`).
//!
//! Layouts follow `include/uapi/linux/mptcp.h` and `tcp.h`; the kernel writes only the prefix it
//! knows, so every field past what an old kernel fills reads as zero.

mod full_info;
mod mptcp_info;
mod sockaddr;
mod tcp_info;

use std::{
    io,
    os::fd::{AsFd, AsRawFd as _},
};

pub use full_info::{FullInfo, SubflowInfo, full_info};
pub use mptcp_info::{
    MPTCP_INFO_FLAG_FALLBACK, MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED, MptcpInfo, mptcp_info,
};
pub use sockaddr::parse_sockaddr;
pub use tcp_info::TcpInfo;

/// `SOL_MPTCP`.
pub const SOL_MPTCP: libc::c_int = 284;
/// `IPPROTO_MPTCP`.
pub const IPPROTO_MPTCP: libc::c_int = 262;

/// The socket's protocol as the kernel created it (`SO_PROTOCOL`): 6 for TCP, 262 for MPTCP.
pub fn socket_protocol(fd: impl AsFd) -> io::Result<libc::c_int> {
    let mut buf = [0_u8; size_of::<libc::c_int>()];
    let len = getsockopt(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL, &mut buf)?;
    let bytes = buf
        .get(..len)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "SO_PROTOCOL returned a short value",
            )
        })?;
    Ok(libc::c_int::from_ne_bytes(bytes))
}

/// `getsockopt` into `buf`, which may carry input for the kernel; returns the length written.
fn getsockopt(
    fd: impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "option buffer too large"))?;
    // SAFETY: `buf` is valid for writes of `len` bytes and `len` outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(usize::try_from(len).unwrap_or(usize::MAX).min(buf.len()))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Little helpers to read native-endian integers at fixed offsets; a short buffer reads as
/// zero, as the kernel's structs grow only at the end.
mod le {
    pub(super) fn u8_at(buf: &[u8], off: usize) -> u8 {
        buf.get(off).copied().unwrap_or(0)
    }

    pub(super) fn u32_at(buf: &[u8], off: usize) -> u32 {
        buf.get(off..off + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_ne_bytes)
    }

    pub(super) fn u64_at(buf: &[u8], off: usize) -> u64 {
        buf.get(off..off + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_ne_bytes)
    }
}
