//! [`PathManager::probe_path`](mptcpd_plugin::PathManager::probe_path): a plain TCP
//! connection attempt from a path's local address, bound to its interface, to a peer the
//! path's subflows used; an answer (SYN-ACK or reset) proves the path carries packets both
//! ways. An answered attempt is reset at once (`SO_LINGER` 0): the peer's listener may see a
//! connection that ends before any data, as it does with a load balancer's health checks.
//! No capability is needed (binding an unbound socket to an interface is unprivileged).

use std::{
    io,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    time::Duration,
};

use mptcpd_plugin::{BoxFuture, PathProbe, ProbeOutcome};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Starts the attempt on the runtime: it goes on whether or not the returned future is
/// polled, which only hands over the outcome.
pub(super) fn spawn(probe: PathProbe) -> BoxFuture<'static, ProbeOutcome> {
    let task = tokio::spawn(run(probe));
    Box::pin(async move {
        task.await
            .unwrap_or_else(|e| ProbeOutcome::Failed(format!("the probe's task ended: {e}")))
    })
}

async fn run(probe: PathProbe) -> ProbeOutcome {
    match tokio::time::timeout(probe.timeout, connect(probe)).await {
        Err(_elapsed) => ProbeOutcome::NoAnswer,
        Ok(Ok(stream)) => {
            // Reset rather than closed: nothing lingers on either side (answered all the
            // same if the option is refused: then an ordinary close).
            if let Err(e) = SockRef::from(&stream).set_linger(Some(Duration::ZERO)) {
                tracing::debug!("resetting a path probe's connection: {e}");
            }
            drop(stream);
            ProbeOutcome::Answered { refused: false }
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            ProbeOutcome::Answered { refused: true }
        }
        Ok(Err(e)) => ProbeOutcome::Failed(e.to_string()),
    }
}

async fn connect(probe: PathProbe) -> io::Result<tokio::net::TcpStream> {
    let local = probe.local.to_canonical();
    let remote = SocketAddr::new(probe.remote.ip().to_canonical(), probe.remote.port());
    if local.is_ipv4() != remote.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{local} and {remote} are not of one address family"),
        ));
    }
    let socket = Socket::new(
        Domain::for_address(remote),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    let index = probe.if_index.and_then(NonZeroU32::new);
    if index.is_some() {
        match local {
            IpAddr::V4(_) => socket.bind_device_by_index_v4(index)?,
            IpAddr::V6(_) => socket.bind_device_by_index_v6(index)?,
        }
    }
    socket.bind(&SocketAddr::new(local, 0).into())?;
    tokio::net::TcpSocket::from_std_stream(socket.into())
        .connect(remote)
        .await
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn probe(remote: SocketAddr) -> PathProbe {
        PathProbe {
            local: IpAddr::from([127, 0, 0, 1]),
            if_index: None,
            remote,
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_listener_answers_and_a_closed_port_refuses() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        assert_eq!(
            spawn(probe(open)).await,
            ProbeOutcome::Answered { refused: false }
        );
        drop(listener);
        assert_eq!(
            spawn(probe(open)).await,
            ProbeOutcome::Answered { refused: true }
        );
    }

    #[tokio::test]
    async fn mixed_families_fail_at_once() {
        let outcome = spawn(probe("[::1]:9".parse().unwrap())).await;
        assert!(
            matches!(&outcome, ProbeOutcome::Failed(why) if why.contains("address family")),
            "{outcome:?}"
        );
    }
}
