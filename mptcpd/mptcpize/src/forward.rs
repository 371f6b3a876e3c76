//! Waiting for `run`'s command while passing on the signals meant for it: `SIGTERM`, `SIGHUP`,
//! `SIGINT` and `SIGQUIT` sent to `mptcpize` (by `kill`, systemd, a supervisor) go to the command,
//! and `mptcpize` stays to clean up after it. A terminal's `^C` or `^\` already reaches the
//! whole foreground process group, the command included, and is not sent twice.

use std::{
    io,
    mem::MaybeUninit,
    os::unix::process::CommandExt as _,
    process::{Child, Command, ExitStatus},
};

/// Signals passed on to the command.
const FORWARDED: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT];

/// While alive, the forwarded signals and `SIGCHLD` are blocked in this thread (so they stay
/// pending for [`wait`]); dropping it restores the previous mask. Made before the command's
/// cgroup, so a signal that comes before the command starts is passed on once it runs.
pub(super) struct Blocked {
    set: libc::sigset_t,
    previous: libc::sigset_t,
}

impl Blocked {
    pub(super) fn new() -> io::Result<Self> {
        // SAFETY: sigemptyset/sigaddset initialise the set; pthread_sigmask writes `previous`.
        unsafe {
            let mut set = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
            libc::sigemptyset(&raw mut set);
            for sig in FORWARDED.into_iter().chain([libc::SIGCHLD]) {
                libc::sigaddset(&raw mut set, sig);
            }
            // An inherited SIG_IGN would reap the child before it can be waited for.
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            let mut previous = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, &raw mut previous);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(Self { set, previous })
        }
    }

    /// Makes `cmd`'s process start with the mask this one had before [`Blocked::new`]: a
    /// command with `SIGTERM` blocked could not be ended by passing it on.
    pub(super) fn unblock_on_spawn(&self, cmd: &mut Command) {
        let previous = self.previous;
        // SAFETY: the closure only calls pthread_sigmask, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                match libc::pthread_sigmask(
                    libc::SIG_SETMASK,
                    &raw const previous,
                    std::ptr::null_mut(),
                ) {
                    0 => Ok(()),
                    rc => Err(io::Error::from_raw_os_error(rc)),
                }
            })
        };
    }

    /// Waits for `child` (spawned with [`Blocked::unblock_on_spawn`]), passing on the signals
    /// meant for it.
    pub(super) fn wait(&self, child: &mut Child) -> io::Result<ExitStatus> {
        let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            // A SIGCHLD may go to another thread where this one is not alone (unit tests):
            // look at the child again each second too.
            let period = libc::timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            // SAFETY: `info` is written by sigtimedwait before it is read.
            let (sig, info) = unsafe {
                let mut info = MaybeUninit::<libc::siginfo_t>::zeroed().assume_init();
                let sig = libc::sigtimedwait(&raw const self.set, &raw mut info, &raw const period);
                (sig, info)
            };
            if sig < 0 {
                let e = io::Error::last_os_error();
                if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) {
                    continue;
                }
                return Err(e);
            }
            if should_forward(sig, info.si_code) {
                // SAFETY: kill(2) on the child's pid, which is not reaped (and so not reused)
                // until try_wait above returns its status.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved in `new`.
        unsafe {
            libc::pthread_sigmask(
                libc::SIG_SETMASK,
                &raw const self.previous,
                std::ptr::null_mut(),
            )
        };
    }
}

/// Whether a signal `mptcpize` received is passed on: the forwarded ones when a process sent
/// them (`si_code` of `kill`, `sigqueue`, `tgkill`: zero or less); the kernel's (a terminal's
/// `^C` to the foreground process group) already reached the command.
const fn should_forward(sig: libc::c_int, si_code: libc::c_int) -> bool {
    let forwarded = matches!(
        sig,
        libc::SIGTERM | libc::SIGHUP | libc::SIGINT | libc::SIGQUIT
    );
    forwarded && si_code <= 0
}

#[cfg(test)]
mod tests {
    use std::{os::unix::process::ExitStatusExt as _, process::Command};

    use super::{Blocked, should_forward};

    #[test]
    fn a_sigterm_sent_to_this_thread_ends_the_command_and_the_wait() {
        let blocked = Blocked::new().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("1000");
        blocked.unblock_on_spawn(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        // spawn returns once the command runs: its mask must let SIGTERM in.
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let blocked_mask = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap();
        if blocked_mask & (1 << (libc::SIGTERM - 1)) != 0 {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the command starts with SIGTERM blocked (SigBlk {blocked_mask:x})");
        }
        // Directed at this thread (the harness runs others), where it is blocked: it waits
        // pending for `wait`, like a SIGTERM to a single-threaded mptcpize.
        // SAFETY: pthread_kill on the calling thread.
        let sent = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGTERM) };
        assert_eq!(sent, 0);
        let status = blocked.wait(&mut child).unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn signals_sent_by_processes_are_forwarded_the_terminals_are_not() {
        for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
            assert!(should_forward(sig, libc::SI_USER));
            assert!(should_forward(sig, libc::SI_QUEUE));
            assert!(should_forward(sig, libc::SI_TKILL));
            assert!(!should_forward(sig, libc::SI_KERNEL));
        }
        assert!(!should_forward(libc::SIGCHLD, libc::SI_USER));
    }
}
