//! `mptcp-xfer`: a small MPTCP client and server for the lab and the tests, and a one-socket
//! mode for the socket observer's tests.

use std::{
    io::{Read as _, Write as _},
    net::{Shutdown, SocketAddr},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use mptcpd_tests::sockets::mptcp;
use socket2::{Domain, Protocol, Socket, Type};

#[derive(Debug, Parser)]
#[command(name = "mptcp-xfer", about = "MPTCP test client and server")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Create one IPv4 stream socket of the given protocol, print its `SO_PROTOCOL`, exit.
    Socket {
        #[arg(value_enum)]
        protocol: Proto,
    },
    /// Accept one MPTCP connection, read it to the end, print how many bytes came.
    Server {
        #[arg(long)]
        listen: SocketAddr,
        /// Also send this many bytes to the client as soon as it connects.
        #[arg(long, default_value_t = 0)]
        reply: u64,
    },
    /// Connect over MPTCP, send BYTES, and print the connection's subflows with what each
    /// carried.
    Client {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long, default_value_t = 16 << 20)]
        bytes: u64,
        /// Wait (at most 10 s) for this many subflows beyond the first before sending.
        #[arg(long, default_value_t = 0)]
        wait_extra_subflows: u8,
        /// After printing the subflows, print `holding` and wait for a line (or end of input)
        /// on stdin before closing: the caller looks at the idle connection meanwhile.
        #[arg(long)]
        hold: bool,
        /// Read this many bytes from the server (its `--reply`) before printing the subflows.
        #[arg(long, default_value_t = 0)]
        reply: u64,
        /// Close with `SO_LINGER` 0 instead of shutting down (an abort: the kernel resets the
        /// subflows).
        #[arg(long)]
        abort: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Proto {
    /// Protocol 0 (the kernel picks TCP).
    Tcp,
    /// `IPPROTO_MPTCP`.
    Mptcp,
}

fn main() -> ExitCode {
    let Cli { mode } = Cli::parse();
    let result = match mode {
        Mode::Socket { protocol } => socket(protocol),
        Mode::Server { listen, reply } => server(listen, reply),
        Mode::Client {
            connect,
            bytes,
            wait_extra_subflows,
            hold,
            reply,
            abort,
        } => client(connect, bytes, wait_extra_subflows, hold, reply, abort),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mptcp-xfer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn socket(protocol: Proto) -> anyhow::Result<()> {
    let protocol = match protocol {
        Proto::Tcp => None,
        Proto::Mptcp => Some(Protocol::from(mptcp::IPPROTO_MPTCP)),
    };
    let socket = Socket::new(Domain::IPV4, Type::STREAM, protocol)?;
    println!("protocol {}", mptcp::socket_protocol(&socket)?);
    Ok(())
}

fn server(listen: SocketAddr, reply: u64) -> anyhow::Result<()> {
    let listener = mptcp::listen(listen).with_context(|| format!("listening on {listen}"))?;
    println!("listening {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let (mut conn, peer) = listener.accept()?;
    let mut writer = conn.try_clone()?;
    // The reply goes beside the read: neither side waits for the other to finish.
    let total = std::thread::scope(|scope| -> anyhow::Result<u64> {
        let replying =
            scope.spawn(move || std::io::copy(&mut std::io::repeat(0xa5).take(reply), &mut writer));
        let mut buf = vec![0_u8; 1 << 16];
        let mut total: u64 = 0;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += u64::try_from(n)?;
        }
        match replying.join() {
            Ok(sent) => sent.context("replying")?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        Ok(total)
    })?;
    println!("received {total} bytes from {peer}");
    Ok(())
}

fn client(
    connect: SocketAddr,
    bytes: u64,
    wait_extra: u8,
    hold: bool,
    reply: u64,
    abort: bool,
) -> anyhow::Result<()> {
    let mut stream = mptcp::connect(connect).with_context(|| format!("connecting {connect}"))?;
    println!(
        "connected {} -> {} (SO_PROTOCOL {})",
        stream.local_addr()?,
        stream.peer_addr()?,
        mptcp::socket_protocol(&stream)?
    );
    let chunk = vec![0x5a_u8; 1 << 16];
    let mut left = bytes;
    let mut send = |stream: &mut std::net::TcpStream, max: u64| -> anyhow::Result<()> {
        let mut budget = max.min(left);
        while budget > 0 {
            let n = usize::try_from(budget.min(chunk.len() as u64))?;
            stream.write_all(&chunk[..n])?;
            budget -= n as u64;
            left -= n as u64;
        }
        Ok(())
    };
    if wait_extra > 0 {
        // The path manager adds subflows once the connection is fully established, which
        // takes data from the client: send a first chunk, then wait.
        send(&mut stream, chunk.len() as u64)?;
        let started = Instant::now();
        let info = mptcp::wait_extra_subflows(&stream, wait_extra, Duration::from_secs(10))?;
        println!(
            "{} extra subflow(s) after {} ms",
            info.extra_subflows,
            started.elapsed().as_millis()
        );
    }
    send(&mut stream, u64::MAX)?;
    let got = std::io::copy(&mut (&stream).take(reply), &mut std::io::sink())?;
    if got < reply {
        bail!("the server replied {got} of {reply} bytes");
    }
    // Read the subflows once the peer has acknowledged everything, before closing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let full = loop {
        let full = mptcp::full_info(&stream)?;
        // Held connections are compared with telemetry: wait until no subflow has data in
        // flight (a reinjected copy may still be unacknowledged on one).
        let quiet = !hold
            || full
                .subflows
                .iter()
                .all(|sf| sf.tcp.bytes_acked + sf.tcp.bytes_retrans >= sf.tcp.bytes_sent);
        if (acked(&full) >= bytes && quiet) || Instant::now() > deadline {
            break full;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mptcp::FullInfo { info, subflows } = &full;
    println!(
        "connection token {:#010x}: {} subflows, bytes_sent={} bytes_acked={}",
        info.token,
        subflows.len(),
        info.bytes_sent,
        info.bytes_acked
    );
    for sf in subflows {
        let addr = |a: Option<SocketAddr>| a.map_or_else(|| "?".to_owned(), |a| a.to_string());
        println!(
            "subflow {}: {} -> {} bytes_sent={} bytes_acked={} bytes_received={}",
            sf.id,
            addr(sf.local),
            addr(sf.remote),
            sf.tcp.bytes_sent,
            sf.tcp.bytes_acked,
            sf.tcp.bytes_received
        );
    }
    if hold {
        println!("holding");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
    }
    if abort {
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
        drop(stream);
        return Ok(());
    }
    stream.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    let acked = acked(&full);
    if acked < bytes {
        bail!("only {acked} of {bytes} bytes acknowledged");
    }
    Ok(())
}

/// The connection's acknowledged bytes: `mptcpi_bytes_acked` (6.5+, with `mptcpi_bytes_sent`),
/// or on older kernels (6.1) the sum of the subflows' `tcpi_bytes_acked` (reinjected data
/// counts twice there: good enough for a test client's wait).
fn acked(full: &mptcp::FullInfo) -> u64 {
    if full.info.bytes_sent > 0 {
        full.info.bytes_acked
    } else {
        full.subflows.iter().map(|sf| sf.tcp.bytes_acked).sum()
    }
}
