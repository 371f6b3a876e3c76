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

/// Lists the MPTCP connections (every state but `LISTEN`) of both address families. Needs a
/// tokio runtime; no privilege.
pub async fn connections() -> Result<Vec<MptcpSocket>, DiagError> {
    let mut socket = NlSocket::open_sock_diag()?;
    let mut msgs = Vec::new();
    let families = [libc::AF_INET, libc::AF_INET6].map(|f| u8::try_from(f).unwrap_or(0));
    for (seq, family) in (1..).zip(families) {
        socket.send(&wire::dump_request(family, seq)).await?;
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
    Ok(msgs
        .iter()
        .filter_map(|msg| match msg.socket() {
            Ok(socket) => Some(socket),
            Err(err) => {
                tracing::debug!("sock_diag: skipping a socket: {err}");
                None
            }
        })
        .collect())
}

#[cfg(test)]
mod tests;
