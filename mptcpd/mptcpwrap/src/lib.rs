//! `libmptcpwrap.so`: preloaded into a dynamically linked program (`LD_PRELOAD`), its
//! `socket()` creates MPTCP sockets where the program asked for TCP: `AF_INET`/`AF_INET6`,
//! `(type & 0xf) == SOCK_STREAM` (so `SOCK_NONBLOCK` and `SOCK_CLOEXEC` are allowed) and
//! protocol 0 or `IPPROTO_TCP`: the rule of mptcpd's eBPF upgrade, written once in
//! `mptcpd_common::upgrades_to_mptcp`.
//!
//! Unlike the C library, if the kernel refuses MPTCP (disabled in this namespace, built
//! without it, or a security policy such as seccomp or an LSM forbids protocol 262) the socket
//! is created as the program asked, so the program still works.
//! `MPTCPWRAP_DEBUG` set: one line on stderr per socket changed.
//!
//! `socket()` must stay async-signal-safe, as libc's is: programs call it from signal handlers
//! and between `fork()` and `exec()` of a threaded parent. So nothing on its path allocates or
//! takes a lock: settings are read once by a constructor before `main`, and the debug line is
//! formatted on the stack and written with `write(2)`.

use std::{
    ffi::c_int,
    fmt::Write as _,
    sync::atomic::{AtomicBool, Ordering},
};

const IPPROTO_MPTCP: c_int = 262;

/// Whether a `socket(family, type, protocol)` call gets MPTCP.
#[must_use]
pub const fn upgrades(family: c_int, sock_type: c_int, protocol: c_int) -> bool {
    mptcpd_common::upgrades_to_mptcp(
        family.cast_unsigned(),
        sock_type.cast_unsigned(),
        protocol.cast_unsigned(),
    )
}

/// Whether a refusal of MPTCP means "ask for what the program asked for": MPTCP off
/// (`ENOPROTOOPT`), not built in (`EPROTONOSUPPORT`, `EINVAL`), or forbidden by seccomp or an
/// LSM (`EPERM`, `EACCES`), which then decides about TCP itself.
#[must_use]
pub const fn falls_back(errno: c_int) -> bool {
    matches!(
        errno,
        libc::ENOPROTOOPT | libc::EPROTONOSUPPORT | libc::EINVAL | libc::EPERM | libc::EACCES
    )
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
        if DEBUG.load(Ordering::Relaxed) {
            debug(family, sock_type, protocol, fd);
        }
        return fd;
    }
    // SAFETY: errno is this thread's.
    let errno = unsafe { *libc::__errno_location() };
    if falls_back(errno) {
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

/// `MPTCPWRAP_DEBUG` was set when the library was loaded.
static DEBUG: AtomicBool = AtomicBool::new(false);

/// Reads the settings once, when the dynamic loader runs the library's constructors (before
/// the program's `main`, single-threaded): `getenv` neither allocates nor locks here.
extern "C" fn init() {
    // SAFETY: a NUL-terminated name; the environment is not being changed while constructors
    // run.
    let set = unsafe { !libc::getenv(c"MPTCPWRAP_DEBUG".as_ptr()).is_null() };
    DEBUG.store(set, Ordering::Relaxed);
}

/// The constructor, run by the dynamic loader (`DT_INIT_ARRAY`).
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;

/// A line built on the stack; what does not fit is cut.
struct StackLine {
    buf: [u8; 160],
    len: usize,
}

impl std::fmt::Write for StackLine {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn debug(family: c_int, sock_type: c_int, protocol: c_int, fd: c_int) {
    let mut line = StackLine {
        buf: [0; 160],
        len: 0,
    };
    let _cut = writeln!(
        line,
        "mptcpwrap: socket(family {family}, type {sock_type:#x}, protocol {protocol}) -> MPTCP, \
         fd {fd}"
    );
    // SAFETY: errno is this thread's; it is kept for the caller across the write.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: a valid buffer of `len` bytes; stderr may be closed, which is ignored.
    let _written = unsafe { libc::write(libc::STDERR_FILENO, line.buf.as_ptr().cast(), line.len) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

#[cfg(test)]
mod tests {
    use super::{falls_back, upgrades};

    #[test]
    fn refusals_of_mptcp_fall_back_to_what_was_asked() {
        for errno in [
            libc::ENOPROTOOPT,
            libc::EPROTONOSUPPORT,
            libc::EINVAL,
            libc::EPERM,
            libc::EACCES,
        ] {
            assert!(falls_back(errno), "{errno}");
        }
        // Out of descriptors or memory: TCP would fail the same way.
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(!falls_back(errno), "{errno}");
        }
    }

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
