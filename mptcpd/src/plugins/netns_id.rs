//! What tells one network namespace from another, in this boot and across reboots: the
//! namespace's inode (names the files, but inodes are reused once a namespace is gone), its
//! cookie (`SO_NETNS_COOKIE`, Linux 5.14+, never reused within a boot) and the boot id.

use std::{fs, io, os::unix::fs::MetadataExt as _, path::Path};

/// The namespace of the calling thread (`thread-self`: a thread may have entered another one).
const NETNS: &str = "/proc/thread-self/ns/net";
/// A fresh UUID at each boot.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// A network namespace, as the state file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsId {
    /// The inode of `/proc/thread-self/ns/net`.
    pub inode: u64,
    /// `SO_NETNS_COOKIE`; `None` where the kernel has none (before 5.14).
    pub cookie: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
}

impl NetnsId {
    /// The calling thread's namespace. An error when it cannot be identified (no `/proc`).
    pub fn current() -> io::Result<Self> {
        Self::read(Path::new(NETNS), Path::new(BOOT_ID))
    }

    fn read(netns: &Path, boot_id: &Path) -> io::Result<Self> {
        let with_path = |path: &Path, e: io::Error| {
            io::Error::new(e.kind(), format!("{}: {e}", path.display()))
        };
        let inode = fs::metadata(netns).map_err(|e| with_path(netns, e))?.ino();
        let boot_id = fs::read_to_string(boot_id)
            .map_err(|e| with_path(boot_id, e))?
            .trim()
            .to_owned();
        if boot_id.is_empty() || boot_id.contains(char::is_whitespace) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{BOOT_ID}: not a boot id: {boot_id:?}"),
            ));
        }
        Ok(Self {
            inode,
            cookie: mptcpd_bpf::netns_cookie()?,
            boot_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::NetnsId;

    #[test]
    fn this_namespace_is_identified_and_stays_the_same() {
        let id = NetnsId::current().unwrap();
        assert_ne!(id.inode, 0);
        assert_eq!(id.boot_id.len(), 36, "{id:?}");
        assert_eq!(NetnsId::current().unwrap(), id);
    }

    #[test]
    fn without_proc_it_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("net");
        let err = NetnsId::read(&missing, &dir.path().join("boot_id")).unwrap_err();
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );
        let boot_id = dir.path().join("boot_id");
        std::fs::write(&boot_id, "\n").unwrap();
        let err = NetnsId::read(dir.path(), &boot_id).unwrap_err();
        assert!(err.to_string().contains("not a boot id"), "{err}");
    }
}
