//! The failover benchmark's traffic. On the client (processes started in the observed cgroup,
//! since cgroup membership is per process): `failover-send` sends for a while, `failover-echo`
//! makes 1 KiB request/response exchanges on a connection of its own and reports their p99.
//! On the server (threads of the benchmark in the server's namespace): the receiver notes
//! when each read came, the echo server answers, the sampler reads the links' counters.

use std::{
    io::{self, Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mptcpd_tests::sockets::mptcp;

/// Size of one request and of one response.
const EXCHANGE: usize = 1024;
/// How long one blocked write or read may take before the clients look at the clock again.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// A bound on one exchange or on the final drain (a hang, not a figure).
const HANG: Duration = Duration::from_secs(60);

/// Connects over MPTCP, exchanges `first` (data must flow before the path manager adds
/// subflows), waits for `extra` subflows and prints `ready`.
fn connect_ready(
    connect: SocketAddr,
    extra: u8,
    first: impl FnOnce(&mut TcpStream) -> io::Result<()>,
) -> anyhow::Result<TcpStream> {
    let mut stream = mptcp::connect(connect).with_context(|| format!("connecting {connect}"))?;
    first(&mut stream)?;
    if extra > 0 {
        let info = mptcp::wait_extra_subflows(&stream, extra, Duration::from_secs(15))?;
        if info.extra_subflows < extra {
            bail!("no extra subflow within 15 s");
        }
    }
    println!("ready");
    io::stdout().flush()?;
    Ok(stream)
}

/// `failover-send`: sends for `secs` seconds, half-closes, waits for the receiver to close.
pub(crate) fn send(connect: SocketAddr, secs: f64, extra: u8) -> anyhow::Result<()> {
    let chunk = vec![0x5a_u8; 1 << 16];
    let mut stream = connect_ready(connect, extra, |s| s.write_all(&chunk))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    while Instant::now() < until {
        match stream.write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(HANG))?;
    stream.read_to_end(&mut Vec::new())?;
    println!("sent {sent}");
    Ok(())
}

/// `failover-echo`: 1 KiB exchanges back to back for `secs` seconds; prints
/// `exchanges N p99_us P`.
pub(crate) fn echo(connect: SocketAddr, secs: f64, extra: u8) -> anyhow::Result<()> {
    let mut request = [0x33_u8; EXCHANGE];
    let mut stream = connect_ready(connect, extra, |s| exchange(s, &mut request))?;
    stream.set_read_timeout(Some(HANG))?;
    stream.set_write_timeout(Some(HANG))?;
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        exchange(&mut stream, &mut request)?;
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
    }
    stream.shutdown(Shutdown::Write)?;
    let p99 = super::figures::percentile(&mut latencies, 99.0);
    println!("exchanges {} p99_us {p99:.0}", latencies.len());
    Ok(())
}

fn exchange(stream: &mut TcpStream, buf: &mut [u8; EXCHANGE]) -> io::Result<()> {
    stream.write_all(buf)?;
    stream.read_exact(buf)
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// What the receiver saw: each read's time (since `start`) and size.
#[derive(Debug, Default)]
pub(crate) struct Received {
    pub(crate) reads: Vec<(Duration, u64)>,
}

/// Accepts one connection on `listener` and reads it to the end, noting each read against
/// `start`. Gives up when `stop` is set (the run failed elsewhere).
pub(crate) fn receive(
    listener: &TcpListener,
    start: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<Received> {
    let mut conn = accept(listener, stop)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut buf = vec![0_u8; 1 << 16];
    let mut received = Received::default();
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Ok(received),
            Ok(n) => received.reads.push((start.elapsed(), n as u64)),
            Err(e) if timed_out(&e) && !stop.load(Ordering::Relaxed) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Accepts one connection and answers each 1 KiB request with 1 KiB until the client closes.
pub(crate) fn echo_server(listener: &TcpListener, stop: &AtomicBool) -> anyhow::Result<()> {
    let mut conn = accept(listener, stop)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut buf = [0_u8; EXCHANGE];
    let mut have = 0;
    loop {
        match conn.read(&mut buf[have..]) {
            Ok(0) => return Ok(()),
            Ok(n) => have += n,
            Err(e) if timed_out(&e) && !stop.load(Ordering::Relaxed) => continue,
            Err(e) => return Err(e.into()),
        }
        if have == EXCHANGE {
            conn.write_all(&buf)?;
            have = 0;
        }
    }
}

/// `accept` that notices `stop` (the listener is polled, not blocked on).
fn accept(listener: &TcpListener, stop: &AtomicBool) -> anyhow::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((conn, _peer)) => {
                conn.set_nonblocking(false)?;
                return Ok(conn);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Relaxed) {
                    bail!("stopped before a connection came");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// One reading of the server's links: when (since the run's start) and bytes received on
/// path A's and path B's link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub(crate) at: Duration,
    pub(crate) rx: [u64; 2],
}

/// Reads `devs`' received bytes every `every` until `stop` (the calling thread must be in
/// the namespace: `/proc/thread-self/net/dev` is that thread's namespace's).
pub(crate) fn sample_links(
    devs: [&str; 2],
    start: Instant,
    every: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let text = std::fs::read_to_string("/proc/thread-self/net/dev")?;
        let at = start.elapsed();
        let mut rx = [0; 2];
        for (dev, slot) in devs.iter().zip(&mut rx) {
            *slot = rx_bytes(&text, dev).with_context(|| format!("no {dev} in net/dev"))?;
        }
        samples.push(Sample { at, rx });
        std::thread::sleep(every);
    }
    Ok(samples)
}

/// The received-bytes column of `dev`'s line in `/proc/net/dev`.
fn rx_bytes(net_dev: &str, dev: &str) -> Option<u64> {
    net_dev.lines().find_map(|line| {
        let (name, figures) = line.split_once(':')?;
        (name.trim() == dev).then(|| figures.split_whitespace().next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_links_received_bytes() {
        let text = "Inter-|   Receive\n face |bytes    packets\n    s1: 1234 5 0 0\n  s2:99 1 0\n";
        assert_eq!(super::rx_bytes(text, "s1"), Some(1234));
        assert_eq!(super::rx_bytes(text, "s2"), Some(99));
        assert_eq!(super::rx_bytes(text, "s3"), None);
    }
}
