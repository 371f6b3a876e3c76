//! The processes the telemetry benchmark starts inside the observed cgroup (cgroup membership
//! is per process, so the observer cannot make the connections itself): `mptcpd-bench` run
//! again with a hidden subcommand. `telemetry-send` sends over MPTCP and answers `info` on
//! stdin with its subflows' `MPTCP_FULL_INFO`; `connect-storm` makes short connections.

use std::{
    fmt::Write as _,
    io::{self, BufRead as _, BufReader, Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpListener},
    os::{fd::AsRawFd as _, unix::process::ExitStatusExt as _},
    process::{Child, ChildStdin, ChildStdout, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mptcpd_tests::{ebpf::cgroup::TestCgroup, net::netns::NetNs, sockets::mptcp};

use crate::storm::{self, Proto};

/// `telemetry-send`: connects over MPTCP, waits for the extra subflow, prints `ready`, then
/// sends `bytes` while answering each `info` line on stdin; half-closes and prints `done`.
pub(crate) fn send(connect: SocketAddr, bytes: u64) -> anyhow::Result<()> {
    let mut stream = mptcp::connect(connect).with_context(|| format!("connecting {connect}"))?;
    let chunk = vec![0x5a_u8; 1 << 16];
    // The path manager adds the subflow once the connection is fully established: data first.
    stream.write_all(&chunk)?;
    let _info = mptcp::wait_extra_subflows(&stream, 1, Duration::from_secs(10))?;
    let info_stream = stream.try_clone()?;
    std::thread::spawn(move || answer_info(&info_stream));
    println!("ready");
    io::stdout().flush()?;
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64))?;
        stream.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    stream.read_to_end(&mut Vec::new())?;
    println!("done");
    Ok(())
}

/// Answers each `info` line with `subflow LOCAL RTT_US RTO_US BYTES_ACKED` per subflow, then
/// `end`.
fn answer_info(stream: &std::net::TcpStream) {
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        if line.trim() != "info" {
            continue;
        }
        let mut reply = String::new();
        match mptcp::full_info(stream) {
            Ok(full) => {
                for sf in &full.subflows {
                    if let Some(local) = sf.local {
                        let _infallible = writeln!(
                            reply,
                            "subflow {local} {} {} {}",
                            sf.tcp.rtt_us, sf.tcp.rto_us, sf.tcp.bytes_acked
                        );
                    }
                }
            }
            Err(e) => {
                let _infallible = writeln!(reply, "error {e}");
            }
        }
        reply.push_str("end\n");
        let mut out = io::stdout().lock();
        if out
            .write_all(reply.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

/// `connect-storm`: `connections` short connections to `connect`.
pub(crate) fn connect_storm(
    connect: SocketAddr,
    connections: usize,
    proto: Proto,
) -> anyhow::Result<()> {
    storm::clients(connect, connections, proto).context("connecting")
}

/// One subflow as the sender read it from `MPTCP_FULL_INFO`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubflowSample {
    pub(crate) local: SocketAddr,
    pub(crate) rtt_us: u32,
    pub(crate) rto_us: u32,
    pub(crate) bytes_acked: u64,
}

/// A running `telemetry-send`, in the client's namespace and the observed cgroup.
pub(crate) struct Sender {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Sender {
    /// Starts it and waits for `ready` (both subflows up).
    pub(crate) fn start(
        netns: &NetNs,
        cgroup: &TestCgroup,
        connect: SocketAddr,
        bytes: u64,
    ) -> anyhow::Result<Self> {
        let mut cmd = netns.command(std::env::current_exe()?)?;
        cmd.args(["telemetry-send", "--connect", &connect.to_string()])
            .args(["--bytes", &bytes.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        cgroup.join_on_spawn(&mut cmd)?;
        let mut child = cmd.spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("telemetry-send without pipes");
        };
        let mut sender = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let line = sender.line()?;
        if line != "ready" {
            bail!("telemetry-send said {line:?}, not ready");
        }
        Ok(sender)
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("telemetry-send ended");
        }
        Ok(line.trim().to_owned())
    }

    /// Its subflows, now.
    pub(crate) fn info(&mut self) -> anyhow::Result<Vec<SubflowSample>> {
        self.stdin.write_all(b"info\n")?;
        self.stdin.flush()?;
        let mut samples = Vec::new();
        loop {
            let line = self.line()?;
            if line == "end" {
                return Ok(samples);
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let ["subflow", local, rtt, rto, acked] = words.as_slice() else {
                bail!("telemetry-send said {line:?}");
            };
            samples.push(SubflowSample {
                local: local.parse()?,
                rtt_us: rtt.parse()?,
                rto_us: rto.parse()?,
                bytes_acked: acked.parse()?,
            });
        }
    }

    /// Polls until every subflow has carried `bytes` (at most 30 s).
    pub(crate) fn wait_all_carry(&mut self, bytes: u64) -> anyhow::Result<Vec<SubflowSample>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let samples = self.info()?;
            if samples.len() >= 2 && samples.iter().all(|s| s.bytes_acked >= bytes) {
                return Ok(samples);
            }
            if Instant::now() > deadline {
                bail!("not every subflow carried {bytes} bytes within 30 s: {samples:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for it to finish sending; its CPU time.
    pub(crate) fn finish(self) -> anyhow::Result<Duration> {
        let Self { child, stdin, .. } = self;
        drop(stdin);
        let (status, cpu) = wait_with_cpu(&child)?;
        if !status.success() {
            bail!("telemetry-send failed: {status}");
        }
        Ok(cpu)
    }

    /// Stops it at once.
    pub(crate) fn kill(mut self) {
        // Already gone is fine: the transfer only had to run until now.
        let _killed = self.child.kill();
        let _status = self.child.wait();
    }
}

/// Runs `connect-storm` in `netns` and `cgroup`; its CPU time.
pub(crate) fn run_connect_storm(
    netns: &NetNs,
    cgroup: &TestCgroup,
    connect: SocketAddr,
    connections: usize,
    proto: Proto,
) -> anyhow::Result<Duration> {
    let mut cmd = netns.command(std::env::current_exe()?)?;
    let proto = match proto {
        Proto::Tcp => "tcp",
        Proto::Mptcp => "mptcp",
    };
    cmd.args(["connect-storm", "--connect", &connect.to_string()])
        .args(["--connections", &connections.to_string(), "--proto", proto]);
    cgroup.join_on_spawn(&mut cmd)?;
    let child = cmd.spawn()?;
    let (status, cpu) = wait_with_cpu(&child)?;
    if !status.success() {
        bail!("connect-storm failed: {status}");
    }
    Ok(cpu)
}

/// Waits for `child` with `wait4`: its exit status and the CPU time (user + system) it used.
fn wait_with_cpu(child: &Child) -> anyhow::Result<(ExitStatus, Duration)> {
    let pid = i32::try_from(child.id())?;
    let mut status = 0;
    // SAFETY: plain struct of integers, filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers for the call; `pid` is our unwaited child.
        let got = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        if got == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    Ok((ExitStatus::from_raw(status), cpu_time(&usage)))
}

/// User plus system time of `usage`.
pub(crate) fn cpu_time(usage: &libc::rusage) -> Duration {
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.unsigned_abs())
            + Duration::from_micros(t.tv_usec.unsigned_abs())
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The calling thread's CPU time so far.
pub(crate) fn thread_cpu() -> Duration {
    // SAFETY: as in `wait_with_cpu`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer; RUSAGE_THREAD is Linux's.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &raw mut usage) };
    cpu_time(&usage)
}

/// The bulk receiver: accepts one connection (waiting at most 30 s), reads it to the end;
/// the bytes and the CPU time the reading thread used.
pub(crate) fn receive_one(listener: &TcpListener) -> io::Result<(u64, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    listener.set_nonblocking(true)?;
    let mut conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(io::Error::other("no connection within 30 s"));
                }
                let mut fd = libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the call.
                unsafe { libc::poll(&raw mut fd, 1, 100) };
            }
            Err(e) => return Err(e),
        }
    };
    conn.set_nonblocking(false)?;
    let started = thread_cpu();
    let mut buf = vec![0_u8; 1 << 18];
    let mut total = 0_u64;
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            // A killed sender resets the connection: what came is what counts.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    Ok((total, thread_cpu().saturating_sub(started)))
}
