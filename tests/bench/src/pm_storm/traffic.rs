//! The storm's traffic: a client that opens connections as fast as it can (up to
//! [`IN_FLIGHT`] at once), each exchanging a byte each way, held until the listener says it
//! reached what the subject should give it, then closed; a server that answers and closes
//! on the client's close. Each runs on a thread of its own with a tokio runtime, so that its
//! CPU time is its thread's.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};

use mptcpd_tests::{
    interrupt,
    net::netns::NetNs,
    sockets::mptcp::{self, IPPROTO_MPTCP},
};

use super::listener::{Listener, Until};

/// Connections the client keeps open at once: a burst the path manager must keep up with,
/// within the server's accept backlog.
const IN_FLIGHT: usize = 256;
/// The server's accept backlog.
const BACKLOG: i32 = 4096;
/// How long a connection waits for what it is held for: a bound on a hang, past which it
/// counts as left without it.
pub(super) const HOLD_LIMIT: Duration = Duration::from_secs(10);

/// What the client saw.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ClientRun {
    /// Connections that had their second subflow by [`HOLD_LIMIT`] although the listener
    /// heard no `SUB_ESTABLISHED` (it lost events: `MPTCP_INFO` says so).
    pub(super) unheard: usize,
    /// Connections that did not reach it within [`HOLD_LIMIT`].
    pub(super) missed: usize,
    /// From the first connect to the last close.
    pub(super) wall: Duration,
    /// The client thread's CPU time.
    pub(super) cpu: Duration,
}

/// An MPTCP listener with a storm-sized backlog, in `ns`.
pub(super) fn listen(ns: &NetNs, addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let listener = ns.run(|| -> io::Result<std::net::TcpListener> {
        let socket = mptcp_socket(addr)?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    })??;
    Ok(listener)
}

fn mptcp_socket(addr: SocketAddr) -> io::Result<Socket> {
    Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(Protocol::from(IPPROTO_MPTCP)),
    )
}

/// Serves `connections` connections on `listener` (echoes the byte, reads to the end,
/// closes), or until `clients_done` is set and nothing is left to accept. Returns how many it
/// served and its thread's CPU time.
pub(super) fn serve(
    listener: &std::net::TcpListener,
    connections: usize,
    clients_done: &AtomicBool,
) -> anyhow::Result<(usize, Duration)> {
    let listener = listener.try_clone()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let served = rt.block_on(async {
        let listener = TcpListener::from_std(listener)?;
        let mut tasks = tokio::task::JoinSet::new();
        let mut accepted = 0;
        while accepted < connections {
            match tokio::time::timeout(Duration::from_millis(100), listener.accept()).await {
                Ok(stream) => {
                    let (stream, _) = stream?;
                    accepted += 1;
                    tasks.spawn(answer(stream));
                }
                Err(_elapsed) if clients_done.load(Ordering::Relaxed) => break,
                Err(_elapsed) => {}
            }
        }
        let mut served = 0;
        while let Some(done) = tasks.join_next().await {
            if matches!(done, Ok(Ok(()))) {
                served += 1;
            }
        }
        anyhow::Ok(served)
    })?;
    Ok((served, thread_cpu()?))
}

async fn answer(mut stream: TcpStream) -> io::Result<()> {
    let mut byte = [0_u8; 1];
    stream.read_exact(&mut byte).await?;
    stream.write_all(&byte).await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    Ok(())
}

/// Makes `connections` connections from the calling thread (already in the client's
/// namespace) to `to`, each held until `listener` says it reached `until`.
pub(super) fn clients(
    to: SocketAddr,
    connections: usize,
    listener: &Arc<Listener>,
    until: Until,
) -> anyhow::Result<ClientRun> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let (unheard, missed) = rt.block_on(async {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..connections {
            interrupt::check()?;
            let slot = Arc::clone(&slots).acquire_owned().await?;
            let listener = Arc::clone(listener);
            tasks.spawn(async move {
                let held = one(to, &listener, until).await;
                drop(slot);
                held
            });
        }
        let (mut unheard, mut missed) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            match done?? {
                Held::Reached => {}
                Held::Unheard => unheard += 1,
                Held::Missed => missed += 1,
            }
        }
        anyhow::Ok((unheard, missed))
    })?;
    Ok(ClientRun {
        unheard,
        missed,
        wall: started.elapsed(),
        cpu: thread_cpu()?,
    })
}

/// How a connection's hold ended.
enum Held {
    /// The listener heard what it was held for.
    Reached,
    /// The listener heard nothing, but the connection has its second subflow.
    Unheard,
    /// Neither, within [`HOLD_LIMIT`].
    Missed,
}

/// One connection: connects, a byte each way (MPTCP is then fully established), held until
/// `until` or [`HOLD_LIMIT`], closed.
async fn one(to: SocketAddr, listener: &Listener, until: Until) -> io::Result<Held> {
    let socket = mptcp_socket(to)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let mut stream = TcpStream::from_std(socket.into())?;
    stream.writable().await?;
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    let reached = listener.wait(stream.local_addr()?.port(), until);
    stream.write_all(b"x").await?;
    stream.read_exact(&mut [0_u8; 1]).await?;
    if matches!(tokio::time::timeout(HOLD_LIMIT, reached).await, Ok(Ok(()))) {
        return Ok(Held::Reached);
    }
    // Once, at the deadline: the listener may have lost the event in an overrun.
    let joined = until == Until::Joined && mptcp::mptcp_info(&stream)?.extra_subflows > 0;
    Ok(if joined { Held::Unheard } else { Held::Missed })
}

/// The calling thread's CPU time so far.
fn thread_cpu() -> io::Result<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: one valid timespec for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}
