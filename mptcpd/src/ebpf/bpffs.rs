//! The daemon's directory on bpffs, where maps and links outlive a process.

use std::{
    ffi::CString,
    fs, io,
    os::unix::ffi::OsStrExt as _,
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
    /// Opens `dir`, creating it (and mounting bpffs at `/sys/fs/bpf` if nothing is mounted
    /// there, as bpftool does) when needed.
    pub fn open(dir: &Path) -> Result<Self, EbpfError> {
        let bpffs_err = |path: &Path, source| EbpfError::Bpffs {
            path: path.to_owned(),
            source,
        };
        let root = Path::new(BPFFS_ROOT);
        if dir.starts_with(root) && !is_bpffs(root).map_err(|e| bpffs_err(root, e))? {
            mount_bpffs(root).map_err(|e| bpffs_err(root, e))?;
            tracing::info!("mounted bpffs at {BPFFS_ROOT}");
        }
        let created = match fs::create_dir(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(bpffs_err(dir, e)),
        };
        if !is_bpffs(dir).map_err(|e| bpffs_err(dir, e))? {
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

fn is_bpffs(path: &Path) -> io::Result<bool> {
    let c_path = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `statfs` is plain data, valid when zeroed.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a valid out-pointer.
    if unsafe { libc::statfs(c_path.as_ptr(), &raw mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // f_type's width and sign vary by libc; the magic fits in 32 bits.
    #[expect(
        clippy::cast_sign_loss,
        clippy::cast_possible_truncation,
        reason = "magic is u32"
    )]
    Ok(st.f_type as u32 == BPF_FS_MAGIC)
}

fn mount_bpffs(target: &Path) -> io::Result<()> {
    let target = CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: valid C strings; no mount data.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
