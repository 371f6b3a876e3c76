//! `mptcpize run CMD`: in a transient enabled cgroup below the caller's when the eBPF upgrade
//! runs here (static and setuid programs included), else with the wrapper preloaded.

use mptcpd_common::Chain;
use std::{
    ffi::OsString,
    io,
    os::{
        fd::AsRawFd as _,
        unix::process::{CommandExt as _, ExitStatusExt as _},
    },
    path::Path,
    process::Command,
};

use super::{Mechanism, MptcpizeError, forward, preload, transient::Transient};

/// Runs `command`; returns its exit code (128 + signal if a signal ended it).
pub(super) fn run(pin_dir: &Path, debug: bool, command: &[OsString]) -> Result<i32, MptcpizeError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| spawn_err(&OsString::new(), io::ErrorKind::InvalidInput.into()))?;
    match Mechanism::choose(pin_dir)? {
        Mechanism::Ebpf { mut upgrade, .. } => {
            super::netns::recheck_current(&mut upgrade)?;
            let signals = forward::Blocked::new().map_err(|e| spawn_err(program, e))?;
            match Transient::create(&mut upgrade) {
                Ok(transient) => {
                    if debug {
                        eprintln!(
                            "mptcpize: eBPF upgrade (fmod_ret/update_socket_protocol): running {} in \
                         cgroup {}",
                            program.display(),
                            transient.dir.display()
                        );
                    }
                    run_in(transient, &signals, program, args)
                }
                // Falling back would move the command out of the caller's limits, or give
                // static programs TCP: say what to change instead.
                Err(e @ MptcpizeError::RunCgroup { .. }) => Err(e),
                Err(e) => {
                    drop(signals);
                    let why = format!("no transient cgroup: {}", Chain(&e));
                    preload_exec(&why, debug, program, args)
                }
            }
        }
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

/// Runs the command in `transient`, passing on the signals meant for it (`signals`, blocked
/// before the cgroup was made); the cgroup is disabled and removed on every way out.
fn run_in(
    transient: Transient<'_>,
    signals: &forward::Blocked,
    program: &OsString,
    args: &[OsString],
) -> Result<i32, MptcpizeError> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let procs = transient
        .procs
        .try_clone()
        .map_err(|e| spawn_err(program, e))?;
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
    signals.unblock_on_spawn(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| spawn_err(program, e))?;
    let status = signals
        .wait(&mut child)
        .map_err(|e| spawn_err(program, e))?;
    drop(transient);
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}

fn spawn_err(program: &OsString, source: io::Error) -> MptcpizeError {
    MptcpizeError::Spawn {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}
