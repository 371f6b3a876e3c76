//! Another process's sockets, duplicated into this one (`pidfd_getfd`, root), so that a test
//! reads their options as the kernel set them for that process.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};

use anyhow::Context as _;

/// `SOL_NETLINK` (linux/socket.h; not in libc).
const SOL_NETLINK: libc::c_int = 270;
/// `NETLINK_LIST_MEMBERSHIPS` (linux/netlink.h; not in libc).
const NETLINK_LIST_MEMBERSHIPS: libc::c_int = 9;

/// A netlink socket of another process.
#[derive(Debug)]
pub struct NetlinkSocket {
    /// Its descriptor number in that process.
    pub fd: RawFd,
    /// The duplicate in this one.
    pub dup: OwnedFd,
    /// The multicast groups it joined (1-based group numbers, such as `RTNLGRP_LINK` = 1).
    pub groups: Vec<u32>,
}

/// The netlink sockets of protocol `protocol` (`NETLINK_ROUTE` = 0) that `pid` holds.
pub fn netlink_sockets(pid: u32, protocol: libc::c_int) -> anyhow::Result<Vec<NetlinkSocket>> {
    let pidfd = syscall_fd(
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        unsafe { libc::syscall(libc::SYS_pidfd_open, libc::pid_t::try_from(pid)?, 0) },
    )
    .with_context(|| format!("pidfd_open({pid})"))?;
    let mut sockets = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let entry = entry?;
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: pidfd_getfd takes a pidfd, a descriptor number of that process and flags.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
        let Ok(dup) = syscall_fd(raw) else {
            continue; // closed meanwhile
        };
        if int_option(&dup, libc::SOL_SOCKET, libc::SO_DOMAIN)? != libc::AF_NETLINK
            || int_option(&dup, libc::SOL_SOCKET, libc::SO_PROTOCOL)? != protocol
        {
            continue;
        }
        let groups = memberships(&dup)?;
        sockets.push(NetlinkSocket { fd, dup, groups });
    }
    Ok(sockets)
}

fn syscall_fd(rc: libc::c_long) -> std::io::Result<OwnedFd> {
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = RawFd::try_from(rc).map_err(std::io::Error::other)?;
    // SAFETY: the syscall returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `int` socket option.
pub fn int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
) -> std::io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: value and len are live for the call and describe a c_int.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The groups a netlink socket joined, from its membership bitmap.
fn memberships(fd: &OwnedFd) -> std::io::Result<Vec<u32>> {
    let mut words = [0_u32; 8];
    let mut len = libc::socklen_t::try_from(size_of_val(&words)).unwrap_or(32);
    // SAFETY: words and len are live for the call and describe the buffer.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            SOL_NETLINK,
            NETLINK_LIST_MEMBERSHIPS,
            words.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut groups = Vec::new();
    for (i, word) in words.iter().enumerate() {
        for bit in 0..32 {
            if word & (1 << bit) != 0 {
                groups.push(u32::try_from(i).unwrap_or(0) * 32 + bit + 1);
            }
        }
    }
    Ok(groups)
}
