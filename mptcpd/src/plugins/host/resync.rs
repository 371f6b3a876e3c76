//! After lost `mptcp_pm` events: the kernel's endpoints and connections read again, and the
//! plugins told what they missed.

use mptcpd_common::Chain;
use std::collections::HashMap;

use mptcp_pm::{Connection, EventFlags, Subflow, canonical};
use mptcpd_plugin::{Commands, ConnectionView, Event, SubflowView, Token};
use tracing::{info, warn};

use super::{PluginHost, Tracked};
use crate::diag::{DiagError, InfoFlags, MptcpSocket, wire::state};

/// What a dump says about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Closed by its owner, or closed: its CLOSED event was sent (and maybe lost).
    Gone,
    /// Exists, not established yet (still connecting, or waiting for the peer's key): its
    /// CREATED may have been lost, its ESTABLISHED is still to come. Plugins hear
    /// `NewConnection` from the dump, so that the ESTABLISHED finds its plugin.
    Connecting,
    /// Exists, but plugins are not told about it (fallen back to TCP, shutting down): no
    /// path-manager event is to come but its CLOSED.
    Alive,
    /// Fully established: what CREATED and ESTABLISHED announce (the kernel sent both, maybe
    /// lost). A client has the peer's key from the SYN-ACK but is fully established only at
    /// the peer's first DSS, when ESTABLISHED is sent and the kernel starts accepting
    /// `SUBFLOW_CREATE` (`ENOTCONN` before): until then it is `Connecting`. Where the dump
    /// could not tell (no subflow listed), the peer's key is taken as enough.
    Ready,
}

/// A connection listed by `sock_diag`, as CREATED/ESTABLISHED would have given it.
///
/// What the dump cannot give: the address ids (`None`: the kernel did not say; the initial
/// subflow's are 0), the event flags (which side accepted, whether the peer forbids joins to
/// its initial address: none set), and the initial subflow's interface.
fn live_connection(s: &MptcpSocket) -> Connection {
    let MptcpSocket {
        state: _,
        local,
        remote,
        token,
        flags: _,
        orphan: _,
        retransmits: _,
        bytes_retrans: _,
        fully_established: _,
    } = *s;
    Connection {
        token,
        local: canonical(local),
        remote: canonical(remote),
        local_id: None,
        remote_id: None,
        flags: EventFlags::empty(),
    }
}

fn seen(socket: &MptcpSocket) -> Seen {
    if socket.gone() {
        Seen::Gone
    } else if socket.flags.contains(InfoFlags::FALLBACK) {
        Seen::Alive
    } else if socket.state == state::ESTABLISHED
        && socket.flags.contains(InfoFlags::REMOTE_KEY_RECEIVED)
        && socket.fully_established != Some(false)
    {
        Seen::Ready
    } else if matches!(socket.state, state::SYN_SENT | state::ESTABLISHED) {
        Seen::Connecting
    } else {
        Seen::Alive
    }
}

/// [`PluginHost::resync`].
pub(super) async fn resync<K: Commands + 'static>(
    host: &mut PluginHost<K>,
    live: Result<Vec<MptcpSocket>, DiagError>,
) {
    // The endpoints are re-read and the connections reconciled with nothing in flight.
    host.drain().await;
    match host.pm.refresh().await {
        Ok(gone) if gone.is_empty() => info!("resynced with the kernel's endpoints"),
        Ok(gone) => warn!(
            count = gone.len(),
            "resynced: endpoints of ours were removed by someone else"
        ),
        Err(e) => warn!("resync failed: {}", Chain(&e)),
    }
    let live = match live {
        Ok(live) => live,
        Err(e) => {
            warn!(
                "cannot list the connections ({}): events of unknown connections go to the \
                 default plugin",
                Chain(&e)
            );
            host.events_lost = true;
            return;
        }
    };
    let by_token: HashMap<Token, Seen> = live
        .iter()
        .filter(|s| s.token != 0)
        .map(|s| (s.token, seen(s)))
        .collect();
    let mut closed: Vec<Token> = host
        .connections
        .keys()
        .filter(|t| matches!(by_token.get(t), None | Some(Seen::Gone)))
        .copied()
        .collect();
    closed.sort_unstable();
    for token in &closed {
        if let Some(tracked) = host.connections.get(token).copied() {
            host.track(*token, None);
            if tracked.announced {
                host.deliver_to_connection(tracked.plugin, Event::ConnectionClosed(*token))
                    .await;
            }
        }
    }
    // Before the overrun's later events: a connection whose CREATED was lost must be known
    // when its ESTABLISHED comes, or it would be dropped as unknown and get no paths.
    let connecting = track_connecting(host, &live).await;
    let (adopted, established) = establish_ready(host, &live).await;
    let adopted = adopted + connecting;
    host.events_lost = false;
    info!(
        listed = by_token.len(),
        closed = closed.len(),
        adopted,
        established,
        "resynced with the kernel's connections"
    );
}

/// Tracks the connections `live` lists still connecting that the host does not know, and
/// gives the default plugin `NewConnection` for those the dump has addresses for. Returns
/// how many it gave.
async fn track_connecting<K: Commands + 'static>(
    host: &mut PluginHost<K>,
    live: &[MptcpSocket],
) -> usize {
    let mut adopted = 0;
    for socket in live
        .iter()
        .filter(|s| s.token != 0 && seen(s) == Seen::Connecting)
    {
        if host.connections.contains_key(&socket.token) {
            continue;
        }
        if [socket.local, socket.remote]
            .iter()
            .any(|a| a.ip().is_unspecified() || a.port() == 0)
        {
            // Tracked for its events, announced by them (see `Tracked::announced`).
            let tracked = Tracked {
                announced: false,
                ..Tracked::new(host.default)
            };
            host.track(socket.token, Some(tracked));
            continue;
        }
        host.pm
            .mapped()
            .note(socket.token, socket.local, socket.remote);
        host.track(socket.token, Some(Tracked::new(host.default)));
        host.deliver_to_connection(host.default, Event::NewConnection(live_connection(socket)))
            .await;
        adopted += 1;
    }
    adopted
}

/// Passes `ConnectionEstablished` (and `NewConnection` where missing) for the connections
/// `live` lists fully established that the host has not passed it for. Returns how many
/// were new to the host and how many were established.
async fn establish_ready<K: Commands + 'static>(
    host: &mut PluginHost<K>,
    live: &[MptcpSocket],
) -> (usize, usize) {
    let (mut adopted, mut established) = (0_usize, 0_usize);
    for socket in live
        .iter()
        .filter(|s| s.token != 0 && seen(s) == Seen::Ready)
    {
        let conn = live_connection(socket);
        host.pm
            .mapped()
            .note(socket.token, socket.local, socket.remote);
        let known = host.connections.get(&socket.token).copied();
        let plugin = match known {
            Some(Tracked {
                established: true, ..
            }) => continue,
            Some(Tracked {
                plugin,
                announced: true,
                ..
            }) => plugin,
            Some(Tracked { plugin, .. }) => {
                host.deliver_to_connection(plugin, Event::NewConnection(conn))
                    .await;
                plugin
            }
            None => {
                adopt(host, conn, true).await;
                adopted += 1;
                established += 1;
                continue;
            }
        };
        host.track(
            socket.token,
            Some(Tracked {
                plugin,
                established: true,
                announced: true,
            }),
        );
        host.deliver_to_connection(plugin, Event::ConnectionEstablished(conn))
            .await;
        established += 1;
    }
    (adopted, established)
}

/// A connection the default plugin never saw becomes its own: `new_connection`, and
/// `connection_established` if it is.
async fn adopt<K: Commands + 'static>(
    host: &mut PluginHost<K>,
    conn: Connection,
    established: bool,
) {
    host.track(
        conn.token,
        Some(Tracked {
            plugin: host.default,
            established,
            announced: true,
        }),
    );
    host.deliver_to_connection(host.default, Event::NewConnection(conn))
        .await;
    if established {
        host.deliver_to_connection(host.default, Event::ConnectionEstablished(conn))
            .await;
    }
}

/// A connection as CREATED would have given it, from the daemon's view of it.
fn viewed_connection(view: &ConnectionView) -> Connection {
    let initial = view.subflows.first();
    Connection {
        token: view.token,
        local: canonical(view.local),
        remote: canonical(view.remote),
        local_id: initial.and_then(|s| s.local_id),
        remote_id: initial.and_then(|s| s.remote_id),
        flags: if view.server_side {
            EventFlags::SERVER_SIDE
        } else {
            EventFlags::empty()
        },
    }
}

/// A subflow as `SUB_ESTABLISHED` would have given it, from the daemon's view of it.
fn viewed_subflow(token: Token, view: &SubflowView) -> Subflow {
    // Not destructured: the view is `non_exhaustive`; its figures are not an event's.
    Subflow {
        token,
        local: canonical(view.local),
        remote: canonical(view.remote),
        local_id: view.local_id.unwrap_or(0),
        remote_id: view.remote_id.unwrap_or(0),
        backup: view.backup,
        if_idx: view.if_index.and_then(|i| i32::try_from(i).ok()),
        error: None,
        reset_reason: None,
        reset_flags: None,
    }
}

/// [`PluginHost::adopt_released`].
pub(super) async fn adopt_released<K: Commands + 'static>(
    host: &mut PluginHost<K>,
    views: Vec<ConnectionView>,
) -> usize {
    let mut adopted = 0;
    for view in views {
        if host.connections.contains_key(&view.token) {
            continue;
        }
        adopt(host, viewed_connection(&view), view.established).await;
        for subflow in view.subflows.iter().skip(1) {
            let subflow = viewed_subflow(view.token, subflow);
            host.pm
                .mapped()
                .note(view.token, subflow.local, subflow.remote);
            host.deliver_to_connection(host.default, Event::NewSubflow(subflow))
                .await;
        }
        adopted += 1;
    }
    adopted
}
