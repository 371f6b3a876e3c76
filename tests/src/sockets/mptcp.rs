//! MPTCP sockets for tests: listeners and connections with `IPPROTO_MPTCP`, and their state.

use std::{
    io,
    net::{SocketAddr, TcpListener, TcpStream},
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};

pub use super::sockopt::{
    FullInfo, IPPROTO_MPTCP, MptcpInfo, SubflowInfo, full_info, mptcp_info, socket_protocol,
};

fn socket_for(addr: &SocketAddr) -> io::Result<Socket> {
    Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::from(IPPROTO_MPTCP)),
    )
}

/// An MPTCP listener on `addr`.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket_for(&addr)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(16)?;
    Ok(socket.into())
}

/// An MPTCP connection to `addr`.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = socket_for(&addr)?;
    socket.connect(&addr.into())?;
    Ok(socket.into())
}

/// Polls `MPTCP_INFO` until the connection has `extra` subflows beyond the initial one, or
/// `limit` passes (a bound on a hang; the result says what was reached).
pub fn wait_extra_subflows(
    stream: &TcpStream,
    extra: u8,
    limit: Duration,
) -> io::Result<MptcpInfo> {
    let deadline = Instant::now() + limit;
    loop {
        let info = mptcp_info(stream)?;
        if info.extra_subflows >= extra || Instant::now() > deadline {
            return Ok(info);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `mptcp-xfer socket PROTO` (`tcp`: protocol 0; `mptcp`) as a new process inside `cgroup`
/// and, if given, `netns`: the protocol the kernel gave its socket (`SO_PROTOCOL`).
pub fn new_process_socket(
    cgroup: &crate::ebpf::cgroup::TestCgroup,
    netns: Option<&crate::net::netns::NetNs>,
    proto: &str,
) -> anyhow::Result<i32> {
    let mut cmd = std::process::Command::new(crate::bins::path("mptcp-xfer")?);
    cmd.args(["socket", proto]);
    if let Some(netns) = netns {
        netns.enter_on_spawn(&mut cmd)?;
    }
    cgroup.join_on_spawn(&mut cmd)?;
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "mptcp-xfer socket {proto}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    crate::ebpf::mptcpize::printed_protocol(&out)
        .ok_or_else(|| anyhow::anyhow!("mptcp-xfer printed no protocol"))
}
