//! Helpers for tests against the real kernel: privilege check, throw-away network namespaces,
//! MPTCP sockets.

use std::{
    fs::File,
    io::{self, Write as _},
    net::SocketAddr,
    os::fd::{AsRawFd, OwnedFd},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};

const IPPROTO_MPTCP: i32 = 262;

/// Whether the test can run: root, a kernel with MPTCP and `ip`. Otherwise prints
/// `skipped: TEST: REASON` and returns false, except under `CI=true`, where it panics.
pub(crate) fn privileged(test: &str) -> bool {
    // SAFETY: geteuid() has no preconditions.
    let reason = if unsafe { libc::geteuid() } != 0 {
        Some("not root")
    } else if !std::path::Path::new("/proc/sys/net/mptcp/enabled").exists() {
        Some("kernel without MPTCP")
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("no `ip` command")
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: {reason} (CI=true: live tests must run)")
        }
        Some(reason) => {
            // Straight to fd 2: libtest captures eprintln!, and a skip must be visible.
            let _ignored = writeln!(io::stderr(), "skipped: {test}: {reason}");
            false
        }
    }
}

/// A network namespace created for one test and deleted on drop (also on panic).
#[derive(Debug)]
pub(crate) struct Netns {
    name: String,
}

/// While alive, the current thread is in the namespace; on drop it goes back.
#[derive(Debug)]
pub(crate) struct Entered<'a> {
    _ns: &'a Netns,
    original: OwnedFd,
}

impl Netns {
    /// `ip netns add mptcpd-test-TAG-PID-N`, with `lo` up.
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("mptcpd-test-{tag}-{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Moves the current thread into the namespace until the guard is dropped. Sockets
    /// opened meanwhile stay in it. Tests run on a current-thread runtime, so every task
    /// they spawn runs on this thread.
    pub(crate) fn enter(&self) -> Entered<'_> {
        let original = File::open("/proc/thread-self/ns/net")
            .expect("current netns")
            .into();
        let target = File::open(format!("/run/netns/{}", self.name)).expect("test netns");
        setns(&target).expect("setns into the test netns");
        Entered {
            _ns: self,
            original,
        }
    }

    /// `ip -n NAME ARGS...`, which must succeed.
    pub(crate) fn ip(&self, args: &[&str]) {
        run(Command::new("ip").args(["-n", &self.name]).args(args));
    }

    /// A sysctl inside the namespace only.
    pub(crate) fn sysctl(&self, key: &str, value: &str) {
        let setting = format!("{key}={value}");
        run(Command::new("ip").args(["netns", "exec", &self.name, "sysctl", "-qw", &setting]));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("could not delete netns {}: {status:?}", self.name);
        }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Err(err) = setns(&self.original) {
            // Continuing in the wrong namespace would corrupt the next test on this thread.
            eprintln!("setns back to the original netns: {err}");
            std::process::abort();
        }
    }
}

fn setns(fd: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: the descriptor is an open netns file for the duration of the call.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn mptcp_socket(addr: SocketAddr) -> Socket {
    Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(Protocol::from(IPPROTO_MPTCP)),
    )
    .expect("an MPTCP socket")
}

/// An MPTCP listener (in the current namespace).
pub(crate) fn mptcp_listener(addr: SocketAddr) -> tokio::net::TcpListener {
    let socket = mptcp_socket(addr);
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    socket.bind(&addr.into()).expect("bind");
    socket.listen(16).expect("listen");
    socket.set_nonblocking(true).expect("non-blocking");
    tokio::net::TcpListener::from_std(socket.into()).expect("a tokio listener")
}

/// An MPTCP connection (in the current namespace); the handshake to a local or veth peer
/// completes at once, so the blocking connect is brief.
pub(crate) fn mptcp_connect(addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = mptcp_socket(addr);
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .expect("connect");
    socket.set_nonblocking(true).expect("non-blocking");
    tokio::net::TcpStream::from_std(socket.into()).expect("a tokio stream")
}

/// Writes all of `data` (MPTCP becomes fully established, and subflows open, once data flows).
pub(crate) async fn send(stream: &tokio::net::TcpStream, mut data: &[u8]) {
    while !data.is_empty() {
        stream.writable().await.expect("writable");
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => panic!("write: {err}"),
        }
    }
}

/// Reads until the peer closes.
pub(crate) async fn read_to_end(stream: &tokio::net::TcpStream) {
    let mut buf = [0_u8; 4096];
    loop {
        stream.readable().await.expect("readable");
        match stream.try_read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => panic!("read: {err}"),
        }
    }
}
