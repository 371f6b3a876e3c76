//! cgroup v2 directories that tests create, and processes started inside them.

use std::{
    fs::{self, File, OpenOptions},
    os::{
        fd::{AsRawFd as _, OwnedFd},
        unix::process::CommandExt as _,
    },
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use anyhow::Context as _;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A child of the cgroup v2 root; on drop its processes are killed and it is removed.
#[derive(Debug)]
pub struct TestCgroup {
    path: PathBuf,
    procs: File,
}

impl TestCgroup {
    /// Creates `ROOT/PREFIX-PID-N`.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        Self::new_in(&mptcpd_bpf::cgroup::cgroup2_root()?, prefix)
    }

    /// Creates `PARENT/PREFIX-PID-N` below this one; drop it before this one.
    pub fn child(&self, prefix: &str) -> anyhow::Result<Self> {
        Self::new_in(&self.path, prefix)
    }

    fn new_in(root: &Path, prefix: &str) -> anyhow::Result<Self> {
        let path = root.join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        let procs = OpenOptions::new()
            .write(true)
            .open(path.join("cgroup.procs"));
        let procs = match procs {
            Ok(file) => file,
            Err(e) => {
                let _removed = fs::remove_dir(&path);
                return Err(e).context("opening cgroup.procs");
            }
        };
        Ok(Self { path, procs })
    }

    /// The cgroup's directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id BPF programs see for it.
    pub fn id(&self) -> anyhow::Result<u64> {
        Ok(mptcpd_bpf::cgroup::cgroup_id(&self.path)?)
    }

    /// Makes `cmd` join this cgroup between fork and exec, so that everything the program does
    /// is accounted here.
    pub fn join_on_spawn(&self, cmd: &mut Command) -> anyhow::Result<()> {
        let fd: OwnedFd = self.procs.try_clone()?.into();
        // SAFETY: the closure only calls write(2), which is async-signal-safe; it owns `fd`.
        unsafe {
            cmd.pre_exec(move || {
                // "0" moves the writing process.
                if libc::write(fd.as_raw_fd(), c"0".as_ptr().cast(), 1) == 1 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
        Ok(())
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // cgroup.kill (5.14+) ends whatever a failed test left running in here.
        let _killed = fs::write(self.path.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    eprintln!("harness: could not remove {}: {e}", self.path.display());
                    return;
                }
            }
        }
    }
}
