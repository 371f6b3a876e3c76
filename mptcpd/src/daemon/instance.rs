//! One daemon per network namespace: endpoints and the state file are per namespace, and two
//! daemons would remove each other's endpoints. A daemon takes an exclusive lock,
//! `STATE_DIR/mptcpd.netINODE.lock`, which holds its pid, before it does anything. The kernel
//! drops the lock when the process dies, however it dies (`kill -9` included), so a crash
//! never blocks the restart.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use super::DaemonError;
use crate::plugins::NetnsId;

/// This daemon's claim on its network namespace; released when dropped or when it dies.
#[derive(Debug)]
pub(super) struct Instance {
    state_dir: PathBuf,
    netns: NetnsId,
    _lock: File,
}

impl Instance {
    /// Identifies the namespace and takes its lock in `state_dir` (created if missing).
    pub(super) fn claim(state_dir: &Path) -> Result<Self, DaemonError> {
        let netns = NetnsId::current().map_err(DaemonError::NetnsUnknown)?;
        let dir_error = |source| DaemonError::StateDir {
            path: state_dir.to_owned(),
            source,
        };
        fs::create_dir_all(state_dir).map_err(dir_error)?;
        let path = state_dir.join(format!("mptcpd.net{}.lock", netns.inode));
        let lock_error = |source| DaemonError::StateDir {
            path: path.clone(),
            source,
        };
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(lock_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(DaemonError::AlreadyRunning {
                    pid: holder(&path),
                    lock: path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(lock_error(e)),
        }
        lock.set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .map_err(lock_error)?;
        Ok(Self {
            state_dir: state_dir.to_owned(),
            netns,
            _lock: lock,
        })
    }

    /// Where this namespace's endpoints are remembered.
    pub(super) fn state_file(&self) -> PathBuf {
        self.state_dir
            .join(format!("endpoints.net{}", self.netns.inode))
    }
}

/// The pid the lock's holder wrote, if it did already.
fn holder(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{DaemonError, Instance};

    #[test]
    fn a_second_claim_in_the_same_namespace_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = Instance::claim(&dir.path().join("state")).unwrap();
        let err = Instance::claim(&dir.path().join("state")).unwrap_err();
        let DaemonError::AlreadyRunning { pid, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(*pid, Some(std::process::id()));
        let line = err.to_string();
        assert!(
            line.contains(&format!("pid {}", std::process::id())) && !line.contains('\n'),
            "{line}"
        );
        drop(first);
        let again = Instance::claim(&dir.path().join("state")).unwrap();
        let file = again.state_file().display().to_string();
        let prefix = dir.path().join("state/endpoints.net").display().to_string();
        assert!(file.starts_with(&prefix), "{file}");
    }

    #[test]
    fn an_unusable_state_dir_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = Instance::claim(&file).unwrap_err();
        assert!(matches!(err, DaemonError::StateDir { .. }), "{err}");
        assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
    }
}
