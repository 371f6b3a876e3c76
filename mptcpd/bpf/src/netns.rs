//! Network namespaces as the upgrade's allow-list names them: by cookie (`SO_NETNS_COOKIE`,
//! Linux 5.14+, never reused within a boot, unlike the namespace's inode), with whether MPTCP
//! is on there (`net.mptcp.enabled`).

use std::{
    fs, io,
    os::fd::{AsRawFd as _, OwnedFd},
    path::Path,
};

/// `net.mptcp.enabled` of the namespace of the task that opens it.
const MPTCP_ENABLED: &str = "/proc/sys/net/mptcp/enabled";

/// One network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netns {
    /// Its cookie.
    pub cookie: u64,
    /// `net.mptcp.enabled` there: `None` where the kernel has no MPTCP.
    pub mptcp_enabled: Option<bool>,
}

impl Netns {
    /// The calling thread's namespace.
    pub fn current() -> io::Result<Self> {
        let cookie = cookie()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "this kernel has no SO_NETNS_COOKIE (Linux 5.14+)",
            )
        })?;
        let mptcp_enabled = match fs::read_to_string(MPTCP_ENABLED) {
            Ok(value) => Some(value.trim() != "0"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Self {
            cookie,
            mptcp_enabled,
        })
    }

    /// The namespace of `path` (`/run/netns/NAME`, `/proc/PID/ns/net`), seen from a thread
    /// that enters it.
    pub fn at(path: &Path) -> io::Result<Self> {
        let fd: OwnedFd = fs::File::open(path)?.into();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns on a descriptor kept open for the thread's life; only this
                    // thread moves.
                    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        let e = io::Error::last_os_error();
                        return Err(if e.raw_os_error() == Some(libc::EINVAL) {
                            io::Error::new(e.kind(), "not a network namespace")
                        } else {
                            e
                        });
                    }
                    Self::current()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the thread that entered it panicked")))
        })
    }
}

/// `SO_NETNS_COOKIE` of a socket made in the calling thread's namespace; `None` where the
/// kernel has none (before 5.14).
pub fn cookie() -> io::Result<Option<u64>> {
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::DGRAM, None)?;
    let mut value: u64 = 0;
    let mut len = libc::socklen_t::try_from(size_of::<u64>()).unwrap_or(8);
    // SAFETY: getsockopt writes at most `len` bytes into `value`, which is that large.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        return Ok(Some(value));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOPROTOOPT) {
        Ok(None)
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::Netns;

    #[test]
    fn a_namespace_file_names_the_namespace_and_other_files_do_not() {
        let here = Netns::current().unwrap();
        assert_eq!(Netns::at("/proc/self/ns/net".as_ref()).unwrap(), here);
        let err = Netns::at("/proc/self/ns/uts".as_ref()).unwrap_err();
        assert!(err.to_string().contains("not a network namespace"), "{err}");
        assert!(Netns::at("/nonexistent".as_ref()).is_err());
    }
}
