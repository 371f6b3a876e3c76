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
/// A bound on the wait for a connection's second subflow: one left without it never gets it.
const JOIN_WAIT: Duration = Duration::from_secs(10);

/// What one side's events said: each connection's token by the client's port, the tokens
/// announced to (at the peer) and those that got a further subflow.
#[derive(Debug, Default)]
struct Seen {
    token_of_port: HashMap<u16, u32>,
    announced: HashSet<u32>,
    joined: HashSet<u32>,
    overruns: usize,
}

/// Records the events of `events` until the test ends; `client`: of the client's side.
fn record_events(mut events: mptcp_pm::EventStream, client: bool) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok(item) = events.recv().await {
            let mut seen = record.lock().unwrap();
            match item {
                EventItem::Event(Event::Created(c)) => {
                    let port = if client { c.local } else { c.remote }.port();
                    seen.token_of_port.insert(port, c.token);
                }
                EventItem::Event(Event::Announced(a)) => {
                    seen.announced.insert(a.token);
                }
                EventItem::Event(Event::SubflowEstablished(s)) => {
                    seen.joined.insert(s.token);
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
    let stream = connect_pending(to);
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
        record_events(events, false)
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
        eprintln!(
            "round {round}: {storm} connections, {} live, {} overruns so far; resyncs: {}",
            ports.len(),
            overruns(&log),
            resync_lines(&log)
        );
    }
    assert_eq!(peer.lock().unwrap().overruns, 0, "the peer lost events");
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

/// How many subflows `mesh` asked for, created or refused.
fn attempts(log: &str) -> usize {
    log.matches("subflow created").count() + log.matches("creating subflow").count()
}

/// How many resyncs the daemon logged.
fn resyncs(log: &str) -> usize {
    log.matches("resynced with the kernel's connections")
        .count()
}

/// What the daemon's resyncs logged.
fn resync_lines(log: &str) -> String {
    log.lines()
        .filter_map(|l| l.split("resynced with the kernel's connections ").nth(1))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The peer's server, accepting joins (the in-kernel PM's limits raised).
async fn serve_joins(pair: &SspiPair, server: SocketAddr) {
    let server_listener = {
        let _in = pair.peer.enter().unwrap();
        let pm = PmClient::connect().await.expect("mptcp_pm");
        let limits = mptcp_pm::Limits {
            add_addr_accepted: 8,
            subflows: 8,
        };
        pm.set_limits(limits).await.expect("the peer's limits");
        listener(server)
    };
    serve(server_listener);
}

/// A byte each way on each of `streams`: the peer's makes the client fully established.
async fn exchange(streams: &[TcpStream]) {
    for stream in streams {
        mptcp_tokio::send(stream, b"x").await.unwrap();
        assert!(read_byte(stream).await, "the peer's byte");
    }
}

/// `nft` in the peer's namespace (its table goes with the namespace).
fn nft(pair: &SspiPair, args: &[&str]) -> anyhow::Result<()> {
    let out = pair.peer.command("nft")?.args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "nft {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The peer drops (`true`) or answers again the SYNs of new connections to port 5201.
fn drop_syns(pair: &SspiPair, drop: bool) -> anyhow::Result<()> {
    if !drop {
        return nft(pair, &["delete", "table", "inet", "fovm"]);
    }
    nft(pair, &["add", "table", "inet", "fovm"])?;
    let chain = "{ type filter hook input priority 0; }";
    nft(pair, &["add", "chain", "inet", "fovm", "input", chain])?;
    let syn = "tcp dport 5201 tcp flags & (syn | ack) == syn drop";
    nft(pair, &["add", "rule", "inet", "fovm", "input", syn])
}

/// A non-blocking MPTCP connect to `to`, its SYN sent, not waited for.
fn connect_pending(to: SocketAddr) -> TcpStream {
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
    TcpStream::from_std(socket.into()).expect("a tokio stream")
}

/// Connections from the daemon's namespace whose SYNs the peer drops until
/// `drop_syns(pair, false)`: `count` of them if `nft` could drop them (the first value).
fn connect_unanswered(pair: &SspiPair, server: SocketAddr, count: usize) -> (bool, Vec<TcpStream>) {
    // Without nft, only the part still connecting at the resync is skipped.
    let nft = drop_syns(pair, true)
        .inspect_err(|e| {
            let reason = format!("connections still connecting at the resync: no nft: {e:#}");
            skip::skip(MESH_NAME, &reason);
        })
        .is_ok();
    let _in = pair.daemon.enter().unwrap();
    let count = if nft { count } else { 0 };
    (nft, (0..count).map(|_| connect_pending(server)).collect())
}

/// How many of the connections from `ports` have no further subflow.
fn left_without(seen: &Seen, ports: &[u16]) -> usize {
    ports
        .iter()
        .filter(|port| {
            !seen
                .token_of_port
                .get(port)
                .is_some_and(|token| seen.joined.contains(token))
        })
        .count()
}

const MESH_NAME: &str =
    "overrun_before_full_establishment_still_gives_every_connection_its_subflow";

/// `mesh` (userspace PM, small event buffer) is stopped while a burst of connections is made:
/// their CREATED events overflow its socket. A random part exchanges its first bytes while it
/// is stopped (fully established: ESTABLISHED lost as well), the rest only after its resync:
/// a client has the peer's key from the SYN-ACK, but the kernel refuses subflows
/// (`ENOTCONN`) until the peer's first DSS makes it fully established, when ESTABLISHED comes.
/// A few more are still connecting at the resync (the peer drops their SYNs until then, with
/// `nft`): adopted from the dump, their CREATED comes after it.
/// Every connection must get its second subflow.
#[tokio::test]
async fn overrun_before_full_establishment_still_gives_every_connection_its_subflow() {
    if !skip::require_root(MESH_NAME) {
        return;
    }
    let faults = Faults::new(MESH_NAME);
    let mut rng = faults.rng();
    let burst = faults.rounds(200, 2000);
    let pair = SspiPair::new("mptcpd-t-fovm").unwrap();
    let server = SocketAddr::new(v4(Path::A, Side::Peer), 5201);
    serve_joins(&pair, server).await;
    let client = {
        let events = pair.daemon_events().await;
        // Room for every event of the burst: the test must not lose any.
        events.set_receive_buffer(64 << 20).expect("receive buffer");
        record_events(events, true)
    };
    let mut daemon = pair
        .start_plugin("mesh", &[], &[("MPTCPD_TEST_EVENT_RCVBUF", EVENT_BUFFER)])
        .unwrap();

    let before = resyncs(&daemon.log());
    daemon.freeze().unwrap();
    let mut streams = Vec::with_capacity(burst);
    {
        let _in = pair.daemon.enter().unwrap();
        for _ in 0..burst {
            streams.push(connect(server).await);
        }
    }
    let (early, late): (Vec<TcpStream>, Vec<TcpStream>) =
        streams.into_iter().partition(|_| rng.bool());
    let (nft, connecting) = connect_unanswered(&pair, server, burst / 20);
    exchange(&early).await;
    daemon.signal(libc::SIGCONT).unwrap();
    // The late ones wait until the daemon has resynced and acted on the early ones (each
    // `mesh` subflow attempt is logged, made or refused): before the fix, the resync handed
    // the late ones over as established too, and their creates were refused.
    until(
        "the daemon's resync and the early ones' subflows",
        &daemon,
        || {
            let log = daemon.log();
            resyncs(&log) > before && attempts(&log) >= early.len()
        },
    )
    .await;
    if nft {
        drop_syns(&pair, false).unwrap();
    }
    for stream in &connecting {
        // The SYN's retransmission (after a second) is answered.
        stream.writable().await.expect("writable");
        assert!(
            stream.take_error().expect("SO_ERROR").is_none(),
            "connected"
        );
    }
    exchange(&late).await;
    exchange(&connecting).await;

    let ports: Vec<u16> = early
        .iter()
        .chain(&late)
        .chain(&connecting)
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    let missing = || left_without(&client.lock().unwrap(), &ports);
    // Bounded: a connection left without its subflow never gets it.
    let deadline = Instant::now() + JOIN_WAIT;
    while missing() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = daemon.log();
    eprintln!(
        "{burst} connections ({} exchanged while the daemon was stopped) and {} connecting at \
         its resync, {} overruns, resyncs: {}",
        early.len(),
        connecting.len(),
        overruns(&log),
        resync_lines(&log)
    );
    assert!(overruns(&log) > 0, "no overrun forced:\n{log}");
    let missing = missing();
    assert_eq!(
        missing,
        0,
        "{missing} of {} connections left without their second subflow; refused creates and \
         subflows to no address:\n{}",
        ports.len(),
        log.lines()
            .filter(|l| l.contains("creating subflow") || l.contains("remote=0.0.0.0:0"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(client.lock().unwrap().overruns, 0, "the test lost events");
    drop((early, late, connecting));
    daemon.check_running().unwrap();
}
