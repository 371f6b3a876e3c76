//! What the plugin does to the kernel about a judged address: the daemon's endpoint (in-kernel
//! path manager) and each connection's subflows (userspace path manager). Each returns one
//! line saying what was done, for the log and the report.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use mptcpd_plugin::{
    Chain, Endpoint, EndpointFlags, NewSubflow, PathManager, PathProbe, PmError, PmKind,
    SubflowPath, SubflowView, Token,
};
use tracing::{info, warn};

use crate::{Health, Test, reprobe::Phase};

/// Most peers remembered per dead path for its tests (they take turns).
const MAX_PEERS: usize = 8;

/// Degraded (`backup`) or Healthy again (`!backup`): the endpoint's flag, or the flag of
/// each subflow from `addr` of the userspace path manager's connections.
pub(crate) async fn set_backup(
    h: &Health,
    addr: IpAddr,
    backup: bool,
    pm: &dyn PathManager,
) -> String {
    let mut parts = Vec::new();
    if pm.pm_kind() == PmKind::Kernel {
        parts.push(endpoint_backup(h, addr, backup, pm).await);
    }
    let targets = backup_targets(h, addr, backup, pm);
    if !targets.is_empty() {
        let mut done = 0;
        for (token, path) in targets {
            match pm.set_backup(path, backup).await {
                Ok(()) => {
                    done += 1;
                    if let Some(conn) = h.inner().conns.get_mut(&token) {
                        let pair = (path.local, path.remote);
                        if backup {
                            conn.backups.insert(pair);
                        } else {
                            conn.backups.remove(&pair);
                        }
                    }
                }
                Err(e) => warn!(
                    "setting the backup flag of subflow {} -> {}: {}",
                    path.local,
                    path.remote,
                    Chain(&e)
                ),
            }
        }
        parts.push(if backup {
            format!("{done} subflows set backup")
        } else {
            format!("backup cleared on {done} subflows")
        });
    }
    if parts.is_empty() {
        parts.push("nothing: no subflow of a userspace-PM connection from it".to_owned());
    }
    parts.join("; ")
}

/// Sets a subflow from an address that stays degraded backup (one that joined after the
/// decision), remembered as set by this plugin.
pub(crate) async fn backup_join(
    h: &Health,
    path: SubflowPath,
    pm: &dyn PathManager,
) -> Result<(), PmError> {
    pm.set_backup(path, true).await?;
    if let Some(conn) = h.inner().conns.get_mut(&path.token) {
        conn.backups.insert((path.local, path.remote));
    }
    let addr = path.local.ip().to_canonical();
    info!(
        %addr,
        "path {addr} degraded: subflow {} -> {} that joined set backup",
        path.local, path.remote
    );
    Ok(())
}

/// A live subflow from the address judged, of a userspace-PM connection.
struct Found {
    path: SubflowPath,
    sub: SubflowView,
    /// The connection's initial subflow.
    initial: bool,
    /// This side accepted the connection.
    server_side: bool,
    /// This plugin set it backup.
    our_backup: bool,
}

/// The live subflows from `addr` of the userspace path manager's connections (the daemon's
/// view), with what the plugin knows of them.
fn userspace_subflows(h: &Health, addr: IpAddr, pm: &dyn PathManager) -> Vec<Found> {
    let views = pm.connection_views();
    let inner = h.inner();
    let mut found = Vec::new();
    for view in views {
        let Some(conn) = inner.conns.get(&view.token) else {
            continue;
        };
        if conn.kind != PmKind::Userspace {
            continue;
        }
        for sub in &view.subflows {
            if sub.local.ip().to_canonical() != addr {
                continue;
            }
            found.push(Found {
                path: SubflowPath {
                    token: view.token,
                    local: sub.local,
                    remote: sub.remote,
                },
                sub: sub.clone(),
                initial: sub.local_id == Some(0)
                    || (sub.local == view.local && sub.remote == view.remote),
                server_side: conn.server_side,
                our_backup: conn.backups.contains(&(sub.local, sub.remote)),
            });
        }
    }
    found
}

/// The userspace-PM subflows from `addr` whose flag to change: to set, those not backup
/// yet (one another plugin or the peer made backup is not ours to clear later); to
/// clear, those this plugin set.
fn backup_targets(
    h: &Health,
    addr: IpAddr,
    backup: bool,
    pm: &dyn PathManager,
) -> Vec<(Token, SubflowPath)> {
    userspace_subflows(h, addr, pm)
        .into_iter()
        .filter(|f| {
            if backup {
                !f.sub.backup && !f.our_backup
            } else {
                f.our_backup
            }
        })
        .map(|f| (f.path.token, f.path))
        .collect()
}

/// Sets or restores the `backup` flag of the daemon's endpoint of `addr`.
async fn endpoint_backup(h: &Health, addr: IpAddr, backup: bool, pm: &dyn PathManager) -> String {
    let Some(endpoint) = owned_endpoint(addr, pm) else {
        tracing::info!(%addr, "no endpoint of this daemon for {addr}: nothing changed");
        return "nothing: no endpoint of this daemon".to_owned();
    };
    let backup = backup || h.configured_backup(endpoint.if_idx);
    let mut flags = endpoint.flags;
    flags.set(EndpointFlags::BACKUP, backup);
    let done = if backup { "set backup" } else { "restored" };
    if flags == endpoint.flags {
        return format!("nothing: endpoint {} already {done}", endpoint.id);
    }
    match pm.set_endpoint_flags(endpoint.id, flags).await {
        Ok(()) => format!("endpoint {} {done}", endpoint.id),
        Err(e) => {
            warn!("setting the flags of endpoint {addr}: {}", Chain(&e));
            format!(
                "failed: setting the flags of endpoint {}: {}",
                endpoint.id,
                Chain(&e)
            )
        }
    }
}

/// Dead (or its re-probe failed): closes the path's subflows (the endpoint out of the
/// kernel; the userspace-PM subflows destroyed) and schedules the re-probe.
pub(crate) async fn close_path(
    h: &Health,
    addr: IpAddr,
    now: Duration,
    pm: &dyn PathManager,
) -> String {
    let phase = h.inner().reprobe.phase(addr);
    let probing = matches!(phase, Some(Phase::Probing { .. }));
    let mut parts = Vec::new();
    let mut closed = false;
    if pm.pm_kind() == PmKind::Kernel {
        closed |= suspend(h, addr, pm, &mut parts).await;
    }
    closed |= if probing {
        close_probes(h, addr, pm, &mut parts).await
    } else {
        destroy_subflows(h, addr, pm, &mut parts).await
    };
    if !closed
        && matches!(phase, Some(Phase::Testing { .. }))
        && h.inner().closed.contains_key(&addr)
    {
        // An unanswered test of destroyed subflows: nothing was re-created.
        parts.push("subflows stay closed".to_owned());
        closed = true;
    }
    if !closed {
        parts.push("nothing closed: no endpoint or subflow of this daemon's".to_owned());
        return parts.join("; ");
    }
    let wait = h.inner().reprobe.close(addr, now);
    parts.push(format!("re-probe in {} s", wait.as_secs()));
    parts.join("; ")
}

/// Takes the daemon's endpoint of `addr` out of the kernel; whether it is out.
async fn suspend(h: &Health, addr: IpAddr, pm: &dyn PathManager, parts: &mut Vec<String>) -> bool {
    let Some(endpoint) = owned_endpoint(addr, pm) else {
        // A re-probe whose re-add failed: still out.
        let still = h.inner().suspended.get(&addr).map(|&(id, _, _)| id);
        if let Some(id) = still {
            parts.push(format!("endpoint {id} still removed"));
        }
        return still.is_some();
    };
    // It comes back with the flags the configuration gives (a degraded path's backup
    // flag is not kept).
    let mut flags = endpoint.flags;
    flags.set(EndpointFlags::BACKUP, h.configured_backup(endpoint.if_idx));
    match pm.suspend_endpoint(endpoint.id).await {
        Ok(()) => {
            let mut inner = h.inner();
            inner
                .suspended
                .insert(addr, (endpoint.id, flags, endpoint.if_idx));
            let peers = peers_of(&inner, addr);
            if !peers.is_empty() {
                inner.peers.insert(addr, peers);
            }
            drop(inner);
            parts.push(format!("endpoint {} removed", endpoint.id));
            true
        }
        Err(e) => {
            warn!("removing endpoint {addr}: {}", Chain(&e));
            parts.push(format!(
                "failed: removing endpoint {}: {}",
                endpoint.id,
                Chain(&e)
            ));
            false
        }
    }
}

/// Destroys the live subflows from `addr` of the userspace path manager's connections
/// (not an initial subflow: it has no id to come back with); remembers those this side
/// opened, to re-create.
async fn destroy_subflows(
    h: &Health,
    addr: IpAddr,
    pm: &dyn PathManager,
    parts: &mut Vec<String>,
) -> bool {
    let targets = destroy_targets(h, addr, pm);
    if targets.is_empty() {
        return false;
    }
    let mut destroyed = 0;
    for (path, again) in targets {
        match pm.subflow_destroy(path).await {
            Ok(()) => {
                destroyed += 1;
                let mut inner = h.inner();
                if let Some(conn) = inner.conns.get_mut(&path.token) {
                    conn.backups.remove(&(path.local, path.remote));
                }
                if let Some(again) = again {
                    inner.closed.entry(addr).or_default().push(again);
                }
            }
            Err(e) => warn!(
                "destroying subflow {} -> {}: {}",
                path.local,
                path.remote,
                Chain(&e)
            ),
        }
    }
    parts.push(format!("{destroyed} subflows destroyed"));
    destroyed > 0
}

fn destroy_targets(
    h: &Health,
    addr: IpAddr,
    pm: &dyn PathManager,
) -> Vec<(SubflowPath, Option<NewSubflow>)> {
    userspace_subflows(h, addr, pm)
        .into_iter()
        .filter(|f| !f.initial)
        .map(|f| {
            let id = f.sub.local_id.or_else(|| pm.address_id(addr).ok());
            let again = id.filter(|_| !f.server_side).map(|id| NewSubflow {
                token: f.path.token,
                local: Endpoint {
                    id,
                    addr,
                    port: None,
                    flags: EndpointFlags::empty(),
                    if_idx: f.sub.if_index.and_then(|i| i32::try_from(i).ok()),
                },
                remote: f.sub.remote,
            });
            (f.path, again)
        })
        .collect()
}

/// A failed re-probe's subflows: closed by their address id (`REMOVE`), as a join that
/// never completed has no port to name it by.
async fn close_probes(
    h: &Health,
    addr: IpAddr,
    pm: &dyn PathManager,
    parts: &mut Vec<String>,
) -> bool {
    let mut probes: Vec<(Token, u8)> = h
        .inner()
        .closed
        .get(&addr)
        .map(|subflows| subflows.iter().map(|s| (s.token, s.local.id)).collect())
        .unwrap_or_default();
    probes.sort_unstable();
    probes.dedup();
    if probes.is_empty() {
        return false;
    }
    for &(token, id) in &probes {
        match pm.remove_address(token, id).await {
            Ok(()) => {}
            // The re-created subflow was refused, or closed already.
            Err(e) if e.is_invalid() => {}
            Err(e) => warn!("closing the re-probe from {addr}: {}", Chain(&e)),
        }
    }
    parts.push(format!("re-probe closed on {} connections", probes.len()));
    true
}

/// Re-opens a closed path: the endpoint back in the kernel, the destroyed subflows of
/// connections still open re-created. `None`: nothing left to re-open.
pub(crate) async fn reopen(
    h: &Health,
    addr: IpAddr,
    now: Duration,
    pm: &dyn PathManager,
) -> Option<String> {
    let (suspended, subflows) = {
        let inner = h.inner();
        let subflows: Vec<NewSubflow> = inner
            .closed
            .get(&addr)
            .map(|s| {
                s.iter()
                    .filter(|s| inner.conns.contains_key(&s.token))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        (inner.suspended.get(&addr).copied(), subflows)
    };
    if suspended.is_none() && subflows.is_empty() {
        return None;
    }
    // Probing before the kernel is asked: the join it makes at once may be heard (in the
    // connection's lane) before the answer is.
    let probes = {
        let mut inner = h.inner();
        inner.reprobe.reopened(addr, now);
        inner.reprobe.probes(addr)
    };
    let mut parts = Vec::new();
    let mut reopened = false;
    if let Some((id, flags, _)) = suspended {
        match pm.resume_endpoint(id, flags).await {
            Ok(true) => {
                h.inner().suspended.remove(&addr);
                parts.push(format!("endpoint {id} re-added"));
                reopened = true;
            }
            Ok(false) => {
                h.inner().suspended.remove(&addr);
                parts.push(format!(
                    "endpoint {id} no longer this daemon's: not re-added"
                ));
            }
            Err(e) => {
                warn!("re-adding endpoint {addr}: {}", Chain(&e));
                parts.push(format!("failed: re-adding endpoint {id}: {}", Chain(&e)));
                reopened = true;
            }
        }
    }
    if !subflows.is_empty() {
        let mut created = 0;
        for subflow in &subflows {
            match pm.subflow_create(*subflow).await {
                Ok(()) => created += 1,
                Err(e) => warn!(
                    "re-creating subflow {} -> {}: {}",
                    subflow.local.addr,
                    subflow.remote,
                    Chain(&e)
                ),
            }
        }
        parts.push(format!("{created} subflows re-created"));
        reopened = true;
    }
    if !reopened {
        return None;
    }
    Some(format!(
        "re-probe {probes}: {}; kept once a subflow establishes and holds {} s",
        parts.join("; "),
        h.hold_secs()
    ))
}

/// The peers (address and port) the subflows from `addr` used, at most [`MAX_PEERS`].
fn peers_of(inner: &crate::Inner, addr: IpAddr) -> Vec<SocketAddr> {
    let mut peers: Vec<SocketAddr> = inner
        .conns
        .values()
        .flat_map(|c| c.seen.iter())
        .filter(|(local, _)| local.ip().to_canonical() == addr)
        .map(|&(_, remote)| remote)
        .collect();
    peers.sort_unstable();
    peers.dedup();
    peers.truncate(MAX_PEERS);
    peers
}

/// A due re-probe of a suspended endpoint, or of destroyed userspace-PM subflows: tests
/// the path outside the connections first (the peers its subflows used take turns).
/// `None`: nothing to test it with (no peer known, or the path manager cannot test), so
/// re-open it at once.
pub(crate) fn start_test(
    h: &Health,
    addr: IpAddr,
    now: Duration,
    pm: &dyn PathManager,
) -> Option<String> {
    let mut inner = h.inner();
    let (kept, if_idx) = if let Some(&(id, _, if_idx)) = inner.suspended.get(&addr) {
        (format!("endpoint {id} stays removed"), if_idx)
    } else {
        // The subflows to re-create, of connections still open.
        let again: Vec<NewSubflow> = inner
            .closed
            .get(&addr)?
            .iter()
            .filter(|s| inner.conns.contains_key(&s.token))
            .copied()
            .collect();
        let if_idx = again.first()?.local.if_idx;
        inner.peers.entry(addr).or_insert_with(|| {
            let mut peers: Vec<SocketAddr> = again.iter().map(|s| s.remote).collect();
            peers.sort_unstable();
            peers.dedup();
            peers.truncate(MAX_PEERS);
            peers
        });
        ("its subflows stay closed".to_owned(), if_idx)
    };
    let remote = {
        let peers = inner.peers.get_mut(&addr)?;
        let remote = *peers.first()?;
        peers.rotate_left(1);
        remote
    };
    let probe = PathProbe {
        local: addr,
        if_index: if_idx.and_then(|i| u32::try_from(i).ok()),
        remote,
        timeout: inner.reprobe.test_window(),
    };
    let outcome = pm.probe_path(probe)?;
    inner.reprobe.testing(addr, now);
    inner.tests.insert(addr, Test { remote, outcome });
    Some(format!(
        "re-probe: testing the path first (a TCP connection attempt from {addr} to {remote}, \
         reset at once if answered); {kept} until it is answered"
    ))
}

/// The daemon's endpoint of `addr`, if it has one in the kernel.
fn owned_endpoint(addr: IpAddr, pm: &dyn PathManager) -> Option<Endpoint> {
    pm.owned_endpoints()
        .into_iter()
        .find(|e| e.addr.to_canonical() == addr)
}
