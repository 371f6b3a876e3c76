//! The live MPTCP connections of the caller's network namespace, from `sock_diag`
//! (`mptcp_diag`, what `ss -M` reads): after lost `mptcp_pm` events, the only record of which
//! connections exist. Pure wire format in [`wire`]; the dump itself here.

pub mod wire;

use std::io;

pub use wire::{DiagWireError, InfoFlags, MptcpSocket};

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

/// Lists the MPTCP connections (every state but `LISTEN`) of both address families. Needs a
/// tokio runtime; no privilege.
pub async fn connections() -> Result<Vec<MptcpSocket>, DiagError> {
    let mut socket = NlSocket::open_sock_diag()?;
    let mut msgs = Vec::new();
    for (seq, family) in (1..).zip(FAMILIES) {
        socket
            .send(&wire::dump_request(family_byte(family), seq))
            .await?;
        loop {
            match socket.recv().await? {
                Received::Datagram(datagram) => {
                    if wire::read_reply(datagram, &mut msgs)? {
                        break;
                    }
                }
                Received::Lost => return Err(DiagError::Lost),
            }
        }
    }
    Ok(sockets(&msgs))
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
