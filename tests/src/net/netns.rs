//! Network namespaces that tests create and always remove.

use std::{
    fs::File,
    os::{
        fd::{AsRawFd as _, OwnedFd},
        unix::process::CommandExt as _,
    },
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::Context as _;

use crate::net::ip;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named network namespace (`ip netns add`), deleted on drop with everything in it.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    file: File,
}

impl NetNs {
    /// Creates `PREFIX-PID-N` with its loopback up.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip::ip(&["netns", "add", &name])?;
        // From here on the namespace exists: build the guard before anything else can fail.
        let opened = File::open(format!("/run/netns/{name}"));
        let file = match opened {
            Ok(file) => file,
            Err(e) => {
                let _removed = ip::ip(&["netns", "del", &name]);
                return Err(e).context(format!("opening netns {name}"));
            }
        };
        let netns = Self { name, file };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// The namespace's name, for `ip -n`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...`.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        ip::ip_in(&self.name, args)
    }

    /// Runs `f` on a thread that has entered this namespace (sockets it creates live here).
    ///
    /// # Panics
    /// Re-raises a panic of `f`.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        let fd = self.file.as_raw_fd();
        std::thread::scope(|scope| {
            let thread = scope.spawn(move || -> std::io::Result<T> {
                // SAFETY: `fd` is a netns file kept open by `self` for the whole scope.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(f())
            });
            match thread.join() {
                Ok(result) => result.with_context(|| format!("entering netns {}", self.name)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Moves the calling thread into this namespace until the guard drops (for async tests whose
    /// runtime runs on the test thread); [`Self::run`] is simpler where it fits.
    pub fn enter(&self) -> anyhow::Result<Entered<'_>> {
        let original: OwnedFd = File::open("/proc/thread-self/ns/net")?.into();
        setns(self.file.as_raw_fd()).with_context(|| format!("entering netns {}", self.name))?;
        Ok(Entered {
            _netns: self,
            original,
        })
    }

    /// A command that runs inside this namespace (without `ip netns exec`, which remounts
    /// `/sys` and so hides the cgroup and bpffs mounts).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> anyhow::Result<Command> {
        let mut cmd = Command::new(program);
        self.enter_on_spawn(&mut cmd)?;
        Ok(cmd)
    }

    /// Makes `cmd` enter this namespace between fork and exec.
    pub fn enter_on_spawn(&self, cmd: &mut Command) -> anyhow::Result<()> {
        let fd: OwnedFd = self.file.try_clone()?.into();
        // SAFETY: the closure only calls setns, which is async-signal-safe; it owns `fd`.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
        Ok(())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = ip::ip(&["netns", "del", &self.name]) {
            eprintln!("harness: could not delete netns {}: {e:#}", self.name);
        }
    }
}

/// The calling thread's stay in a namespace: on drop it returns to where it was.
#[derive(Debug)]
pub struct Entered<'a> {
    _netns: &'a NetNs,
    original: OwnedFd,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Err(e) = setns(self.original.as_raw_fd()) {
            // A thread stuck in a deleted namespace would corrupt every later test.
            eprintln!("harness: cannot return to the original netns: {e}");
            std::process::abort();
        }
    }
}

fn setns(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: setns on a descriptor the caller keeps open.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether a namespace of this name exists (`ip netns list`).
pub fn exists(name: &str) -> anyhow::Result<bool> {
    Ok(ip::ip(&["netns", "list"])?
        .lines()
        .any(|line| line.split_whitespace().next() == Some(name)))
}
