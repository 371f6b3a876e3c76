//! The live MPTCP connections of the caller's network namespace, from `sock_diag`
//! (`mptcp_diag`, what `ss -M` reads): after lost `mptcp_pm` events, the only record of which
//! connections exist. Pure wire format in [`wire`]; the dump itself here.

pub mod wire;

use std::io;

pub use wire::{DiagWireError, InfoFlags, MptcpSocket, SubflowSocket};

use mptcp_pm::socket::{NlSocket, Received};

/// Why the connections could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    /// The `NETLINK_SOCK_DIAG` socket failed.
    #[error("sock_diag socket")]
    Io(#[from] io::Error),
    /// A reply could not be read, or the kernel refused the dump (no `mptcp_diag`).
    #[error("sock_diag dump")]
    Wire(#[from] DiagWireError),
    /// Part of the reply was lost (receive buffer overflow).
    #[error("sock_diag dump: replies lost")]
    Lost,
}

/// Address families dumped, in order, as `u8` (what the request carries).
const FAMILIES: [i32; 2] = [libc::AF_INET, libc::AF_INET6];

/// Lists the MPTCP connections (every state but `LISTEN`) of both address families, then
/// their subflows (a dump of the TCP sockets that can be subflows of them, neither
/// connecting nor in `TIME_WAIT`: its cost grows with the namespace's TCP connections, paid
/// after an event overrun only) for [`MptcpSocket::fully_established`]. If that second dump
/// fails (no `tcp_diag`: one warning) or carries no subflow info (no `CAP_NET_ADMIN`), the
/// field stays `None`. Needs a tokio runtime.
pub async fn connections() -> Result<Vec<MptcpSocket>, DiagError> {
    let mut socket = NlSocket::open_sock_diag()?;
    let mut live = dump(&mut socket, wire::dump_request, 1, sockets).await?;
    let subflows = dump(&mut socket, wire::subflow_dump_request, 3, |msgs| {
        msgs.iter().filter_map(wire::DiagMsg::subflow).collect()
    });
    match subflows.await {
        Ok(subflows) => mark_fully_established(&mut live, &subflows),
        Err(e) => tracing::warn!(
            "sock_diag: cannot list the MPTCP subflows ({}): connections with the peer's key \
             are taken as fully established",
            mptcpd_common::Chain(&e)
        ),
    }
    Ok(live)
}

/// One dump of `request` for each family (sequence numbers from `seq`), each datagram's
/// messages turned into what `keep` keeps of them (a TCP dump can list many sockets).
async fn dump<T>(
    socket: &mut NlSocket,
    request: fn(u8, u32) -> Vec<u8>,
    seq: u32,
    keep: impl Fn(&[wire::DiagMsg]) -> Vec<T>,
) -> Result<Vec<T>, DiagError> {
    let mut kept = Vec::new();
    let mut msgs = Vec::new();
    for (seq, family) in (seq..).zip(FAMILIES) {
        socket.send(&request(family_byte(family), seq)).await?;
        loop {
            match socket.recv().await? {
                Received::Datagram(datagram) => {
                    let done = wire::read_reply(datagram, &mut msgs)?;
                    kept.extend(keep(&msgs));
                    msgs.clear();
                    if done {
                        break;
                    }
                }
                Received::Lost => return Err(DiagError::Lost),
            }
        }
    }
    Ok(kept)
}

/// Sets [`MptcpSocket::fully_established`] of each connection of which `subflows` lists a
/// subflow: whether any of them is.
pub fn mark_fully_established(live: &mut [MptcpSocket], subflows: &[SubflowSocket]) {
    let mut by_token = std::collections::HashMap::new();
    for s in subflows {
        *by_token.entry(s.token).or_insert(false) |= s.fully_established;
    }
    for socket in live {
        socket.fully_established = by_token.get(&socket.token).copied();
    }
}

/// As [`connections`], blocking the caller: for synchronous readers of the connection view
/// (one dump of the local kernel, well under a millisecond for a host's connections).
pub fn connections_blocking() -> Result<Vec<MptcpSocket>, DiagError> {
    let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    let mut buf = Vec::with_capacity(DATAGRAM_CAPACITY);
    let mut msgs = Vec::new();
    for (seq, family) in (1..).zip(FAMILIES) {
        socket.send(&wire::dump_request(family_byte(family), seq), 0)?;
        loop {
            buf.clear();
            // MSG_TRUNC: the datagram's real size, so that a cut one is seen.
            let len = socket.recv(&mut buf, libc::MSG_TRUNC)?;
            if len > buf.len() {
                return Err(DiagError::Lost);
            }
            if wire::read_reply(&buf, &mut msgs)? {
                break;
            }
        }
    }
    Ok(sockets(&msgs))
}

/// Larger than any datagram of a dump (the kernel stops at 32 KiB).
const DATAGRAM_CAPACITY: usize = 64 * 1024;

fn family_byte(family: i32) -> u8 {
    u8::try_from(family).unwrap_or(0)
}

fn sockets(msgs: &[wire::DiagMsg]) -> Vec<MptcpSocket> {
    msgs.iter()
        .filter_map(|msg| match msg.socket() {
            Ok(socket) => Some(socket),
            Err(err) => {
                tracing::debug!("sock_diag: skipping a socket: {err}");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
