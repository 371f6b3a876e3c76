//! The daemon's directory on bpffs, where maps and links outlive a process.

use std::{
    ffi::CString,
    fs, io,
    os::{
        fd::{AsRawFd as _, OwnedFd},
        unix::{
            ffi::OsStrExt as _,
            fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _},
        },
    },
    path::{Path, PathBuf},
};

use super::EbpfError;

/// Where mptcpd pins its BPF objects unless told otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/mptcpd";
/// Where systemd and libbpf expect bpffs.
const BPFFS_ROOT: &str = "/sys/fs/bpf";
/// `BPF_FS_MAGIC` from `linux/magic.h`.
const BPF_FS_MAGIC: u32 = 0xcafe_4a11;

/// A directory on bpffs that removes, on drop, what this process pinned in it (and the
/// directory itself if this process created it and it is then empty).
#[derive(Debug)]
pub struct PinDir {
    dir: PathBuf,
    created: bool,
    pinned: Vec<PathBuf>,
}

impl PinDir {
    /// Opens `dir`, creating it 0700 (and mounting bpffs at `/sys/fs/bpf`, mode 0700, if
    /// nothing is mounted there, as bpftool does) when needed. An existing directory must pass
    /// `check_pin_dir`.
    pub fn open(dir: &Path) -> Result<Self, EbpfError> {
        let bpffs_err = |path: &Path, source| EbpfError::Bpffs {
            path: path.to_owned(),
            source,
        };
        let root = Path::new(BPFFS_ROOT);
        if dir.starts_with(root) && !is_bpffs_path(root).map_err(|e| bpffs_err(root, e))? {
            mount_bpffs(root).map_err(|e| bpffs_err(root, e))?;
            tracing::info!("mounted bpffs at {BPFFS_ROOT}");
        }
        let created = match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(bpffs_err(dir, e)),
        };
        let fd = check_pin_dir(dir)?;
        if !is_bpffs(&fd).map_err(|e| bpffs_err(dir, e))? {
            return Err(bpffs_err(
                dir,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not on a bpffs (mount -t bpf bpf /sys/fs/bpf)",
                ),
            ));
        }
        Ok(Self {
            dir: dir.to_owned(),
            created,
            pinned: Vec::new(),
        })
    }

    /// Keeps the directory (and what was pinned) past this handle; whether this call made it.
    #[must_use]
    pub fn keep(mut self) -> bool {
        self.pinned.clear();
        std::mem::replace(&mut self.created, false)
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Pins an object as `name` with `pin`, replacing a stale pin left by a process that died,
    /// and remembers it for removal.
    pub fn pin<E>(
        &mut self,
        name: &str,
        pin: impl FnOnce(&Path) -> Result<(), E>,
        err: impl FnOnce(PathBuf, E) -> EbpfError,
    ) -> Result<PathBuf, EbpfError> {
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => tracing::debug!("replaced stale pin {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(EbpfError::Bpffs { path, source }),
        }
        pin(&path).map_err(|e| err(path.clone(), e))?;
        self.pinned.push(path.clone());
        Ok(path)
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        for path in self.pinned.drain(..) {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!("could not remove pin {}: {e}", path.display());
            }
        }
        if self.created
            && let Err(e) = fs::remove_dir(&self.dir)
            && e.kind() != io::ErrorKind::DirectoryNotEmpty
        {
            tracing::warn!("could not remove {}: {e}", self.dir.display());
        }
    }
}

/// Opens `dir` without following a symbolic link and checks, on that descriptor, that only
/// root (or this process's user) can change it: owned by one of them, not writable by group or
/// others. Anyone else could unlink or replace the pins in it.
pub(crate) fn check_pin_dir(dir: &Path) -> Result<OwnedFd, EbpfError> {
    let untrusted = |why: String| EbpfError::UntrustedPinDir {
        path: dir.to_owned(),
        why,
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| match e.raw_os_error() {
            // O_DIRECTORY is checked first: a link to a directory gives ENOTDIR.
            Some(libc::ELOOP | libc::ENOTDIR)
                if fs::symlink_metadata(dir).is_ok_and(|m| m.is_symlink()) =>
            {
                untrusted("it is a symbolic link".to_owned())
            }
            Some(libc::ENOTDIR) => untrusted("it is not a directory".to_owned()),
            _ => EbpfError::Bpffs {
                path: dir.to_owned(),
                source: e,
            },
        })?;
    let meta = file.metadata().map_err(|source| EbpfError::Bpffs {
        path: dir.to_owned(),
        source,
    })?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(untrusted(format!(
            "it is owned by uid {}, not root",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted(format!(
            "it is writable by others (mode {:o})",
            meta.mode() & 0o7777
        )));
    }
    Ok(file.into())
}

fn is_bpffs(fd: &OwnedFd) -> io::Result<bool> {
    // SAFETY: `statfs` is plain data, valid when zeroed.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: an open descriptor and a valid out-pointer.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &raw mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(has_bpffs_magic(&st))
}

fn is_bpffs_path(path: &Path) -> io::Result<bool> {
    let c_path = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `statfs` is plain data, valid when zeroed.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a valid out-pointer.
    if unsafe { libc::statfs(c_path.as_ptr(), &raw mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(has_bpffs_magic(&st))
}

fn has_bpffs_magic(st: &libc::statfs) -> bool {
    // f_type's width and sign vary by libc; the magic fits in 32 bits.
    #[expect(
        clippy::cast_sign_loss,
        clippy::cast_possible_truncation,
        reason = "magic is u32"
    )]
    let magic = st.f_type as u32;
    magic == BPF_FS_MAGIC
}

/// Mount data for bpffs: only root may enter it (the kernel's default is 1777, so any user
/// could otherwise make `/sys/fs/bpf/mptcpd` first).
const BPFFS_MOUNT_DATA: &std::ffi::CStr = c"mode=0700";

fn mount_bpffs(target: &Path) -> io::Result<()> {
    let target = CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: valid C strings.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            BPFFS_MOUNT_DATA.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
