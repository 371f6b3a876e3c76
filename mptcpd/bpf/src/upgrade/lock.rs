//! The install lock: `flock` on the pin directory itself (bpffs holds no regular files), so
//! that the parallel `mptcpize enable --current-cgroup` of units starting at boot install one
//! program with one map.

use std::{
    fs, io,
    os::{
        fd::{AsRawFd as _, OwnedFd},
        unix::fs::MetadataExt as _,
    },
    path::{Path, PathBuf},
};

use crate::{EbpfError, PinDir, check_pin_dir};

/// Held while installing or removing the upgrade; released on drop.
#[derive(Debug)]
pub(super) struct InstallLock {
    dir: PathBuf,
    /// The locked directory (the lock goes with the descriptor).
    _fd: OwnedFd,
    created: bool,
}

impl InstallLock {
    /// Creates `dir` if needed (mounting bpffs, see [`PinDir::open`]) and locks it. A directory
    /// that a failed installer removed while this one waited is made anew.
    pub(super) fn acquire(dir: &Path) -> Result<Self, EbpfError> {
        let err = |source| EbpfError::Bpffs {
            path: dir.to_owned(),
            source,
        };
        loop {
            let created = PinDir::open(dir)?.keep();
            let fd = check_pin_dir(dir)?;
            // SAFETY: an open descriptor; flock has no memory arguments.
            if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(err(io::Error::last_os_error()));
            }
            let linked = fs::File::from(fd.try_clone().map_err(err)?)
                .metadata()
                .map_err(err)?
                .nlink()
                > 0;
            if linked {
                return Ok(Self {
                    dir: dir.to_owned(),
                    _fd: fd,
                    created,
                });
            }
        }
    }

    /// After a failed install: removes the directory if this call made it and it is empty,
    /// still under the lock (a waiting installer then sees it unlinked and makes a new one).
    pub(super) fn abandon(self) {
        if self.created
            && let Err(e) = fs::remove_dir(&self.dir)
            && e.kind() != io::ErrorKind::DirectoryNotEmpty
        {
            tracing::warn!("could not remove {}: {e}", self.dir.display());
        }
    }
}
