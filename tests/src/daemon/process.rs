//! Running a daemon under test: readiness through the systemd notify protocol (no sleeps),
//! its log collected, and the process always reaped. Our daemon gets a temporary state
//! directory unless the command names one (`--state-dir`): tests never touch the host's
//! `/run/mptcpd`.

use std::{
    ffi::OsStr,
    io::{BufRead as _, BufReader},
    os::unix::net::UnixDatagram,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::interrupt;

/// How long a daemon may take to become ready or to stop before the harness gives up: a bound
/// on a hang, not a performance expectation.
pub const LIVENESS: Duration = Duration::from_secs(30);

/// How long a dropped daemon gets to exit on SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// Resident memory of a daemon, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the resident peak so far.
    pub hwm_kib: u64,
    /// `RssAnon`: the resident anonymous part of `VmRSS` (heap, stacks, mmapped buffers); the
    /// rest is file pages (the binary, libraries) and shared memory.
    pub anon_kib: u64,
}

/// A running daemon; stopped and reaped on drop if still running.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    notify: UnixDatagram,
    _notify_dir: tempfile::TempDir,
}

impl Daemon {
    /// Spawns `cmd` (stderr captured, `NOTIFY_SOCKET` set) and waits until it sends
    /// `READY=1`.
    pub fn start(cmd: Command) -> anyhow::Result<Self> {
        let mut daemon = Self::spawn(cmd)?;
        daemon.wait_for_notify("READY=1")?;
        Ok(daemon)
    }

    /// Spawns `cmd` and waits until its log contains `ready_line`: for daemons without
    /// `sd_notify`, such as Debian's C mptcpd.
    pub fn start_logged(cmd: Command, ready_line: &str) -> anyhow::Result<Self> {
        let mut daemon = Self::spawn(cmd)?;
        daemon.wait_for_log(ready_line)?;
        Ok(daemon)
    }

    fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        let notify_dir = tempfile::Builder::new()
            .prefix("mptcpd-notify-")
            .tempdir()?;
        let socket_path = notify_dir.path().join("notify.sock");
        if is_ours(&cmd) && !names_state_dir(&cmd) {
            cmd.arg("--state-dir").arg(notify_dir.path().join("state"));
        }
        let notify = UnixDatagram::bind(&socket_path)?;
        notify.set_read_timeout(Some(Duration::from_millis(50)))?;
        cmd.env("NOTIFY_SOCKET", &socket_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", cmd.get_program().to_string_lossy()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let reader = child.stderr.take().map(|stderr| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        });
        Ok(Self {
            child,
            log,
            reader,
            notify,
            _notify_dir: notify_dir,
        })
    }

    /// The daemon's pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's resident memory now, at its peak and its anonymous part (`VmRSS`,
    /// `VmHWM`, `RssAnon`).
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib = |key: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {key} in /proc/{}/status", self.child.id()))
        };
        Ok(Memory {
            rss_kib: kib("VmRSS:")?,
            hwm_kib: kib("VmHWM:")?,
            anon_kib: kib("RssAnon:")?,
        })
    }

    /// What the harness has read of the daemon's log so far. A thread reads its stderr, so a
    /// line written before `READY=1` may still be in the pipe: [`Self::wait_for_log`] for it.
    #[must_use]
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&mut self, needle: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + LIVENESS;
        while !self.log().contains(needle) {
            self.check_alive()?;
            interrupt::check()?;
            if Instant::now() > deadline {
                bail!("no {needle:?} in the daemon's log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Sends SIGTERM, waits for the exit, and returns the exit status and the whole log.
    pub fn stop(mut self) -> anyhow::Result<(ExitStatus, String)> {
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + LIVENESS;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!("daemon did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(reader) = self.reader.take() {
            let _joined = reader.join();
        }
        Ok((status, self.log()))
    }

    /// `kill -9`: no clean-up by the daemon. Waits for the exit and returns the whole log.
    pub fn kill(mut self) -> anyhow::Result<String> {
        self.child.kill()?;
        self.child.wait()?;
        if let Some(reader) = self.reader.take() {
            let _joined = reader.join();
        }
        Ok(self.log())
    }

    /// `SIGSTOP`, and waits until every thread of the daemon is stopped: a signal takes
    /// effect asynchronously (the daemon may still run, or finish a system call, after
    /// `kill` returned), so what it did is only final then.
    pub fn freeze(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGSTOP)?;
        let tasks = format!("/proc/{}/task", self.child.id());
        let deadline = Instant::now() + LIVENESS;
        loop {
            let mut stopped = true;
            for task in std::fs::read_dir(&tasks)? {
                let stat = std::fs::read_to_string(task?.path().join("stat"))?;
                // The state follows the parenthesised command name.
                let state = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next());
                stopped &= state == Some("T");
            }
            if stopped {
                return Ok(());
            }
            interrupt::check()?;
            if Instant::now() > deadline {
                bail!("daemon did not stop on SIGSTOP:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: libc::c_int) -> anyhow::Result<()> {
        let pid = libc::pid_t::try_from(self.child.id())?;
        // SAFETY: kill(2) on our own child, which is not reaped yet.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    }

    /// Waits until the daemon sends a notify message with the line `state` (e.g. `READY=1`,
    /// `RELOADING=1`); messages before it are consumed.
    pub fn wait_for_notify(&mut self, state: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + LIVENESS;
        let mut buf = [0_u8; 4096];
        loop {
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let message = String::from_utf8_lossy(&buf[..n]);
                    if message.lines().any(|line| line == state) {
                        return Ok(());
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.into()),
            }
            self.check_alive()?;
            interrupt::check()?;
            if Instant::now() > deadline {
                bail!("daemon never sent {state}:\n{}", self.log());
            }
        }
    }

    /// Fails (with the log) if the daemon has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.check_alive()
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            if let Some(reader) = self.reader.take() {
                let _joined = reader.join();
            }
            bail!("daemon exited ({status}):\n{}", self.log());
        }
        Ok(())
    }
}

/// Whether `cmd` runs our daemon: any build of it (a benchmark's `--daemon NAME=PATH` too),
/// not the C peer, whose binary is called `mptcpd` as well but lives in an unpacked
/// `usr/libexec` and knows no `--state-dir`.
fn is_ours(cmd: &Command) -> bool {
    let program = Path::new(cmd.get_program());
    program.file_name() == Some(OsStr::new("mptcpd")) && !program.ends_with("usr/libexec/mptcpd")
}

fn names_state_dir(cmd: &Command) -> bool {
    cmd.get_args()
        .filter_map(OsStr::to_str)
        .any(|arg| arg == "--state-dir" || arg.starts_with("--state-dir="))
}

impl Drop for Daemon {
    /// Stops the daemon as systemd would: SIGTERM so that it cleans up after itself, SIGKILL
    /// if it has not exited within [`GRACE`].
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if self.signal(libc::SIGTERM).is_ok() {
            let deadline = Instant::now() + GRACE;
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::is_ours;

    #[test]
    fn any_build_of_our_daemon_is_ours_and_the_c_peer_is_not() {
        // A benchmark's other build got the host's /run/mptcpd when only target/debug counted.
        assert!(is_ours(&Command::new("/work/target/release/mptcpd")));
        assert!(is_ours(&Command::new("/tmp/feature-sets/no-dbus/mptcpd")));
        assert!(!is_ours(&Command::new(
            "/root/.cache/mptcpd-rs/c-mptcpd-0.12/usr/libexec/mptcpd"
        )));
        assert!(!is_ours(&Command::new("/usr/bin/ip")));
    }
}
