//! `mptcpize run CMD`: in a transient enabled cgroup when the eBPF upgrade runs here (static
//! and setuid programs included), else with the wrapper preloaded.

use std::{
    ffi::OsString,
    fs::{self, OpenOptions},
    io,
    os::{
        fd::{AsRawFd as _, OwnedFd},
        unix::process::{CommandExt as _, ExitStatusExt as _},
    },
    path::{Path, PathBuf},
    process::Command,
};

use super::{Mechanism, MptcpizeError, preload};
use crate::{cgroup, ebpf::Upgrade};

/// Runs `command`; returns its exit code (128 + signal if a signal ended it).
pub(super) fn run(pin_dir: &Path, debug: bool, command: &[OsString]) -> Result<i32, MptcpizeError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| spawn_err(&OsString::new(), io::ErrorKind::InvalidInput.into()))?;
    match Mechanism::choose(pin_dir)? {
        Mechanism::Ebpf { mut upgrade, .. } => match Transient::create(&mut upgrade) {
            Ok(transient) => {
                if debug {
                    eprintln!(
                        "mptcpize: eBPF upgrade (fmod_ret/update_socket_protocol): running {} in \
                         cgroup {}",
                        program.display(),
                        transient.dir.display()
                    );
                }
                let status = transient.run(program, args);
                transient.remove(&mut upgrade);
                status
            }
            Err(e) => {
                let why = format!("no transient cgroup: {e}");
                preload_exec(&why, debug, program, args)
            }
        },
        Mechanism::Preload { why } => preload_exec(&why, debug, program, args),
    }
}

fn preload_exec(
    why: &str,
    debug: bool,
    program: &OsString,
    args: &[OsString],
) -> Result<i32, MptcpizeError> {
    let library = preload::find_library()?;
    eprintln!("mptcpize: eBPF upgrade not available ({why}); using LD_PRELOAD");
    if let Some(reason) = preload::unreachable_by_preload(program) {
        eprintln!(
            "mptcpize: warning: {} will keep using TCP: {reason} (only Go programs may still use \
             MPTCP, through GODEBUG={})",
            program.display(),
            preload::GODEBUG_MPTCP
        );
    }
    if debug {
        eprintln!("mptcpize: LD_PRELOAD of {}", library.display());
    }
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env(
            "LD_PRELOAD",
            preload::ld_preload(std::env::var_os("LD_PRELOAD").as_deref(), &library),
        )
        .env(
            "GODEBUG",
            preload::godebug(std::env::var_os("GODEBUG").as_deref()),
        );
    if debug {
        cmd.env("MPTCPWRAP_DEBUG", "1");
    }
    // exec only returns on failure.
    Err(spawn_err(program, cmd.exec()))
}

/// A cgroup made for one run, enabled for the upgrade.
struct Transient {
    dir: PathBuf,
    id: u64,
    procs: OwnedFd,
}

impl Transient {
    fn create(upgrade: &mut Upgrade) -> Result<Self, MptcpizeError> {
        let cg_err = |path: &Path, source| MptcpizeError::Cgroup {
            path: path.to_owned(),
            source,
        };
        let root = cgroup::cgroup2_root().map_err(|e| cg_err(Path::new("cgroup2"), e))?;
        let dir = root.join(format!("mptcpize-run-{}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| cg_err(&dir, e))?;
        let opened = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .and_then(|procs| Ok((cgroup::cgroup_id(&dir)?, procs)));
        let (id, procs) = match opened {
            Ok(found) => found,
            Err(e) => {
                let _removed = fs::remove_dir(&dir);
                return Err(cg_err(&dir, e));
            }
        };
        if let Err(e) = upgrade.enable(id) {
            let _removed = fs::remove_dir(&dir);
            return Err(e.into());
        }
        Ok(Self {
            dir,
            id,
            procs: procs.into(),
        })
    }

    fn run(&self, program: &OsString, args: &[OsString]) -> Result<i32, MptcpizeError> {
        let mut cmd = Command::new(program);
        cmd.args(args);
        let procs = self.procs.try_clone().map_err(|e| spawn_err(program, e))?;
        // SAFETY: the closure only calls write(2), which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                // "0": the writing process, that is the child, before it execs.
                if libc::write(procs.as_raw_fd(), c"0".as_ptr().cast(), 1) == 1 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            })
        };
        let mut child = cmd.spawn().map_err(|e| spawn_err(program, e))?;
        // Like system(3): a terminal's ^C is for the child; this process waits to clean up.
        let ignored = [libc::SIGINT, libc::SIGQUIT].map(|sig| {
            // SAFETY: setting a disposition; the previous one is restored below.
            (sig, unsafe { libc::signal(sig, libc::SIG_IGN) })
        });
        let status = child.wait();
        for (sig, previous) in ignored {
            // SAFETY: restoring the disposition saved above.
            unsafe { libc::signal(sig, previous) };
        }
        let status = status.map_err(|e| spawn_err(program, e))?;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(1))
    }

    /// Disables and removes the cgroup, unless processes the command left behind still run
    /// there: they keep MPTCP, and the cgroup stays enabled.
    fn remove(self, upgrade: &mut Upgrade) {
        match fs::remove_dir(&self.dir) {
            Ok(()) => {
                if let Err(e) = upgrade.disable(self.id) {
                    eprintln!("mptcpize: disabling cgroup id {}: {e}", self.id);
                }
            }
            Err(e) => eprintln!(
                "mptcpize: leaving {} enabled: {e} (processes started by the command still run \
                 there)",
                self.dir.display()
            ),
        }
    }
}

fn spawn_err(program: &OsString, source: io::Error) -> MptcpizeError {
    MptcpizeError::Spawn {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}
