//! Fault injection: a forced `mptcp_pm` event overrun under the userspace path manager.
//!
//! Our daemon (`sspi`, a small event buffer through the test-only `MPTCPD_TEST_EVENT_RCVBUF`)
//! is stopped (SIGSTOP) while a storm of MPTCP connections opens, and a random part of them
//! closes; then it continues. Its event socket overflowed, so it must resync from the kernel's
//! connection list: every connection still open gets its announcement at the peer (sspi's
//! `connection_established` ran for it), and once every connection is closed the daemon
//! tracks nothing (its debug line `tracking 0 connections, 0 listeners, 0 mapped subflows`).
//! Bounded: one round of 200 connections; soak: three rounds of 2000.
//!
//! Needs root (else it prints `skipped: TEST: REASON`, or panics under `CI=true`).

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mptcp_pm::{Event, EventItem, PmClient};
use mptcpd_tests::{
    daemon::{
        process::Daemon,
        sspi_pair::{Path, Side, SspiPair, v4},
    },
    faults::Faults,
    skip,
    sockets::{mptcp::IPPROTO_MPTCP, mptcp_tokio},
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

const NAME: &str = "overrun_storm_every_live_connection_gets_its_paths_and_nothing_stays";
/// A bound on a hang, not a performance expectation.
const HANG: Duration = Duration::from_secs(120);
/// The daemon's event buffer: a few events' worth.
const EVENT_BUFFER: &str = "65536";

/// What the peer's events said: its token per client port, and the tokens announced to.
#[derive(Debug, Default)]
struct PeerSeen {
    token_of_port: HashMap<u16, u32>,
    announced: HashSet<u32>,
    overruns: usize,
}

/// Records the peer's events until the test ends.
fn record_peer_events(mut events: mptcp_pm::EventStream) -> Arc<Mutex<PeerSeen>> {
    let seen = Arc::new(Mutex::new(PeerSeen::default()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok(item) = events.recv().await {
            let mut seen = record.lock().unwrap();
            match item {
                EventItem::Event(Event::Created(c)) => {
                    seen.token_of_port.insert(c.remote.port(), c.token);
                }
                EventItem::Event(Event::Announced(a)) => {
                    seen.announced.insert(a.token);
                }
                EventItem::Overrun => seen.overruns += 1,
                EventItem::Event(_) | EventItem::Malformed(_) => {}
            }
        }
    });
    seen
}

/// The peer's server: one byte back for the first, then waits for the client's close.
fn serve(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_byte(&stream).await {
                    let _sent = mptcp_tokio::send(&stream, b"y").await;
                    let _read = mptcp_tokio::read_to_end(&stream).await;
                }
            });
        }
    });
}

/// Reads one byte; false at the end of the stream or on an error.
async fn read_byte(stream: &TcpStream) -> bool {
    let mut byte = [0_u8; 1];
    loop {
        if stream.readable().await.is_err() {
            return false;
        }
        match stream.try_read(&mut byte) {
            Ok(n) => return n == 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
}

/// A listener with room for the whole storm in its accept queue.
fn listener(addr: SocketAddr) -> TcpListener {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(Protocol::from(IPPROTO_MPTCP)),
    )
    .expect("an MPTCP socket");
    socket.bind(&addr.into()).expect("bind");
    socket.listen(4096).expect("listen");
    socket.set_nonblocking(true).expect("non-blocking");
    TcpListener::from_std(socket.into()).expect("a tokio listener")
}

/// A non-blocking MPTCP connect, created in the calling thread's namespace.
async fn connect(to: SocketAddr) -> TcpStream {
    let socket = Socket::new(
        Domain::for_address(to),
        Type::STREAM.nonblocking(),
        Some(Protocol::from(IPPROTO_MPTCP)),
    )
    .expect("an MPTCP socket");
    match socket.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => panic!("connect to {to}: {e}"),
    }
    let stream = TcpStream::from_std(socket.into()).expect("a tokio stream");
    stream.writable().await.expect("writable");
    if let Some(e) = stream.take_error().expect("SO_ERROR") {
        panic!("connect to {to}: {e}");
    }
    stream
}

/// The highest overrun count the daemon logged.
fn overruns(log: &str) -> u64 {
    log.lines()
        .filter_map(|line| {
            let rest = line.split("receive buffer overrun ").nth(1)?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

/// The daemon's last `tracking ...` line.
fn last_tracking(log: &str) -> Option<&str> {
    log.lines()
        .rev()
        .find_map(|line| line.split("tracking ").nth(1))
}

/// Polls `done` (bounded by [`HANG`]) while the runtime runs the other tasks.
async fn until(what: &str, daemon: &Daemon, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; daemon log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn overrun_storm_every_live_connection_gets_its_paths_and_nothing_stays() {
    if !skip::require_root(NAME) {
        return;
    }
    let faults = Faults::new(NAME);
    let mut rng = faults.rng();
    let (rounds, storm) = if faults.soak() { (3, 2000) } else { (1, 200) };
    let pair = SspiPair::new("mptcpd-t-fov").unwrap();
    let daemon = pair
        .start_daemon(&[("MPTCPD_TEST_EVENT_RCVBUF", EVENT_BUFFER)])
        .unwrap();
    let server = SocketAddr::new(v4(Path::A, Side::Peer), 5201);
    let peer = {
        let _in = pair.peer.enter().unwrap();
        let pm = PmClient::connect().await.expect("mptcp_pm");
        let events = pm.subscribe().expect("subscribe");
        // Room for every event of a soak storm: the peer must not lose any.
        events.set_receive_buffer(64 << 20).expect("receive buffer");
        serve(listener(server));
        record_peer_events(events)
    };

    for round in 1..=rounds {
        let before = overruns(&daemon.log());
        daemon.signal(libc::SIGSTOP).unwrap();
        let mut streams = Vec::with_capacity(storm);
        {
            let _in = pair.daemon.enter().unwrap();
            for _ in 0..storm {
                streams.push(connect(server).await);
            }
        }
        for stream in &streams {
            mptcp_tokio::send(stream, b"x").await.unwrap();
        }
        for stream in &streams {
            assert!(read_byte(stream).await, "the peer's byte");
        }
        // A random part closes while the daemon cannot see it.
        let (closed, live): (Vec<TcpStream>, Vec<TcpStream>) =
            streams.into_iter().partition(|_| rng.bool());
        drop(closed);
        daemon.signal(libc::SIGCONT).unwrap();

        until("the daemon to see the overrun", &daemon, || {
            overruns(&daemon.log()) > before
        })
        .await;
        let ports: Vec<u16> = live
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        until("an announcement for every live connection", &daemon, || {
            let seen = peer.lock().unwrap();
            ports.iter().all(|port| {
                seen.token_of_port
                    .get(port)
                    .is_some_and(|token| seen.announced.contains(token))
            })
        })
        .await;

        drop(live);
        until("the daemon to track nothing", &daemon, || {
            last_tracking(&daemon.log()) == Some("0 connections, 0 listeners, 0 mapped subflows")
        })
        .await;
        let log = daemon.log();
        let resyncs: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split("resynced with the kernel's connections ").nth(1))
            .collect();
        eprintln!(
            "round {round}: {storm} connections, {} live, {} overruns so far; resyncs: {}",
            ports.len(),
            overruns(&log),
            resyncs.join("; ")
        );
    }
    assert_eq!(peer.lock().unwrap().overruns, 0, "the peer lost events");
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}
