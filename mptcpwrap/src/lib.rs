//! `libmptcpwrap.so`: preloaded into a dynamically linked program (`LD_PRELOAD`), its
//! `socket()` creates MPTCP sockets where the program asked for TCP: `AF_INET`/`AF_INET6`,
//! `(type & 0xf) == SOCK_STREAM` (so `SOCK_NONBLOCK` and `SOCK_CLOEXEC` are allowed) and
//! protocol 0 or `IPPROTO_TCP`, the same rule as mptcpd's eBPF upgrade.
//!
//! Unlike the C library, if the kernel refuses MPTCP (disabled in this namespace, or built
//! without it) the socket is created as the program asked, so the program still works.
//! `MPTCPWRAP_DEBUG` set: one line on stderr per socket changed.

use std::{
    ffi::c_int,
    io::Write as _,
    sync::atomic::{AtomicU8, Ordering},
};

const IPPROTO_MPTCP: c_int = 262;
const SOCK_TYPE_MASK: c_int = 0xf;

/// Whether a `socket(family, type, protocol)` call gets MPTCP.
#[must_use]
pub const fn upgrades(family: c_int, sock_type: c_int, protocol: c_int) -> bool {
    (family == libc::AF_INET || family == libc::AF_INET6)
        && sock_type & SOCK_TYPE_MASK == libc::SOCK_STREAM
        && (protocol == 0 || protocol == libc::IPPROTO_TCP)
}

/// The `socket(2)` that programs call in place of libc's.
///
/// # Safety
/// None beyond the system call's: it takes no pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(family: c_int, sock_type: c_int, protocol: c_int) -> c_int {
    if !upgrades(family, sock_type, protocol) {
        return raw_socket(family, sock_type, protocol);
    }
    let fd = raw_socket(family, sock_type, IPPROTO_MPTCP);
    if fd >= 0 {
        debug(family, sock_type, protocol, fd);
        return fd;
    }
    // MPTCP off (ENOPROTOOPT), not built in (EPROTONOSUPPORT, EINVAL): what was asked for.
    // SAFETY: errno is this thread's.
    let errno = unsafe { *libc::__errno_location() };
    if matches!(
        errno,
        libc::ENOPROTOOPT | libc::EPROTONOSUPPORT | libc::EINVAL
    ) {
        raw_socket(family, sock_type, protocol)
    } else {
        fd
    }
}

fn raw_socket(family: c_int, sock_type: c_int, protocol: c_int) -> c_int {
    // SAFETY: socket(2) takes no pointers; errno is set on failure as for libc's socket().
    let ret = unsafe { libc::syscall(libc::SYS_socket, family, sock_type, protocol) };
    // A file descriptor or -1: both fit.
    c_int::try_from(ret).unwrap_or(-1)
}

/// 0: not read yet, 1: off, 2: on.
static DEBUG: AtomicU8 = AtomicU8::new(0);

fn debug(family: c_int, sock_type: c_int, protocol: c_int, fd: c_int) {
    let mut state = DEBUG.load(Ordering::Relaxed);
    if state == 0 {
        state = if std::env::var_os("MPTCPWRAP_DEBUG").is_some() {
            2
        } else {
            1
        };
        DEBUG.store(state, Ordering::Relaxed);
    }
    if state == 2 {
        let _ignored = writeln!(
            std::io::stderr(),
            "mptcpwrap: socket(family {family}, type {sock_type:#x}, protocol {protocol}) -> \
             MPTCP, fd {fd}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::upgrades;

    #[test]
    fn only_tcp_stream_sockets_of_inet_families_are_upgraded() {
        let stream_cloexec = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        assert!(upgrades(libc::AF_INET, libc::SOCK_STREAM, 0));
        assert!(upgrades(libc::AF_INET6, stream_cloexec, libc::IPPROTO_TCP));
        assert!(!upgrades(libc::AF_UNIX, libc::SOCK_STREAM, 0));
        assert!(!upgrades(libc::AF_INET, libc::SOCK_DGRAM, 0));
        assert!(!upgrades(
            libc::AF_INET,
            libc::SOCK_STREAM,
            libc::IPPROTO_SCTP
        ));
        assert!(!upgrades(libc::AF_INET, libc::SOCK_STREAM, 262));
    }
}
