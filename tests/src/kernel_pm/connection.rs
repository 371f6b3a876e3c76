//! One MPTCP connection between the two hosts of [`TwoHosts`], with a path-manager client and
//! an event stream on each side, for tests of `mptcp_pm`. Opening and closing it checks the
//! connection-level events on both sides.

use std::net::SocketAddr;

use mptcp_pm::{Connection, Event, EventStream, Limits, PmClient};
use tokio::{
    net::{TcpListener, TcpStream},
    time::timeout,
};

use crate::{
    kernel_pm::events::{WAIT, wait_for},
    net::two_hosts::{IpVersion, SERVER, TwoHosts},
    sockets::mptcp_tokio,
};

/// The server's port.
pub const PORT: u16 = 5201;
/// In-kernel PM limits on both sides: room for two announced addresses and two extra
/// subflows.
pub const LIMITS: Limits = Limits {
    add_addr_accepted: 2,
    subflows: 2,
};

/// The connection, its sockets and both sides' path managers.
#[derive(Debug)]
pub struct PmConnection {
    /// The client's path manager.
    pub client: PmClient,
    /// The client's events.
    pub events: EventStream,
    /// The server's path manager.
    pub server: PmClient,
    /// The server's events.
    pub server_events: EventStream,
    /// The client's token.
    pub token: u32,
    /// The server's token.
    pub server_token: u32,
    /// The client's end of the initial subflow.
    pub local: SocketAddr,
    /// The server's end of the initial subflow.
    pub remote: SocketAddr,
    /// The client's ESTABLISHED, as decoded.
    pub established: Connection,
    /// The server's ESTABLISHED, as decoded.
    pub server_established: Connection,
    sockets: Option<(TcpStream, TcpStream)>,
    listener: Option<TcpListener>,
}

impl PmConnection {
    /// Listens on the server (`LISTENER_CREATED`) and connects from the client's first address
    /// to the server's (CREATED and ESTABLISHED on both sides), after setting [`LIMITS`].
    ///
    /// # Panics
    /// When a step fails or an event is missing or wrong.
    pub async fn open(hosts: &TwoHosts, version: IpVersion) -> Self {
        let remote = SocketAddr::new(version.addr(1, SERVER), PORT);
        let listen_on = SocketAddr::new(version.unspecified(), PORT);
        let (server, mut server_events, listener) = {
            let _in = hosts.server.enter().expect("enter the server");
            let (client, events) = pm().await;
            (
                client,
                events,
                mptcp_tokio::listen(listen_on).expect("listen"),
            )
        };
        let listening = wait_for(&mut server_events, "LISTENER_CREATED", |e| match e {
            Event::ListenerCreated(l) => Some(l.local),
            _ => None,
        })
        .await;
        assert_eq!(listening, listen_on);
        let (client, mut events, stream) = {
            let _in = hosts.client.enter().expect("enter the client");
            let (client, events) = pm().await;
            (
                client,
                events,
                mptcp_tokio::connect(remote).expect("connect"),
            )
        };
        let (accepted, _) = timeout(WAIT, listener.accept())
            .await
            .expect("accept")
            .expect("accept");
        mptcp_tokio::send(&stream, b"x").await.expect("send");
        let local = stream.local_addr().expect("local address");

        let created = wait_for(&mut events, "CREATED", |e| match e {
            Event::Created(c) => Some(*c),
            _ => None,
        })
        .await;
        assert_eq!(
            (created.local, created.remote, created.server_side()),
            (local, remote, false)
        );
        let established = wait_for(&mut events, "ESTABLISHED", |e| match e {
            Event::Established(c) => Some(*c),
            _ => None,
        })
        .await;
        assert_eq!(
            (established.token, established.local, established.remote),
            (created.token, local, remote)
        );
        let on_server = wait_for(&mut server_events, "server ESTABLISHED", |e| match e {
            Event::Established(c) => Some(*c),
            _ => None,
        })
        .await;
        assert!(on_server.server_side());
        assert_eq!((on_server.local, on_server.remote), (remote, local));
        Self {
            client,
            events,
            server,
            server_events,
            token: created.token,
            server_token: on_server.token,
            local,
            remote,
            established,
            server_established: on_server,
            sockets: Some((stream, accepted)),
            listener: Some(listener),
        }
    }

    /// Closes the connection gracefully on both sides (`DATA_FIN` each way): CLOSED on each.
    ///
    /// # Panics
    /// When already closed, or an event is missing or wrong.
    pub async fn close(&mut self) {
        let (stream, accepted) = self.sockets.take().expect("an open connection");
        // The client has nothing unread (closing with unread data sends MP_FASTCLOSE, after
        // which the peer's CLOSED is not guaranteed); the server reads to the end.
        drop(stream);
        timeout(WAIT, mptcp_tokio::read_to_end(&accepted))
            .await
            .expect("end of stream")
            .expect("read");
        drop(accepted);
        let closed = wait_for(&mut self.events, "CLOSED", |e| match e {
            Event::Closed { token } => Some(*token),
            _ => None,
        })
        .await;
        assert_eq!(closed, self.token);
        let closed = wait_for(&mut self.server_events, "server CLOSED", |e| match e {
            Event::Closed { token } => Some(*token),
            _ => None,
        })
        .await;
        assert_eq!(closed, self.server_token);
    }

    /// Closes the server's listener: `LISTENER_CLOSED`.
    ///
    /// # Panics
    /// When already closed, or the event is missing or wrong.
    pub async fn close_listener(&mut self) {
        let listener = self.listener.take().expect("a listener");
        let local = listener.local_addr().expect("listener address");
        drop(listener);
        let gone = wait_for(&mut self.server_events, "LISTENER_CLOSED", |e| match e {
            Event::ListenerClosed(l) => Some(l.local),
            _ => None,
        })
        .await;
        assert_eq!(gone, local);
    }
}

/// A PM client and its event stream in the namespace entered, with [`LIMITS`] set.
async fn pm() -> (PmClient, EventStream) {
    let client = PmClient::connect().await.expect("connect");
    let events = client.subscribe().expect("subscribe");
    client.set_limits(LIMITS).await.expect("set_limits");
    (client, events)
}
