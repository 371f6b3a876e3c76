//! The upgrade's allow-list of network namespaces, from `mptcpize`: `netns allow|deny|list`,
//! and the re-check of the namespace `mptcpize` runs in at each `enable` and `run` (allowed
//! where MPTCP is on, taken off where it is off).

use std::{io::Write, path::Path};

use super::{Mechanism, MptcpizeError, cli::NetnsCommand};
use mptcpd_bpf::{Netns, Upgrade};

/// What the namespace of `/proc/self/ns/net` is called in messages.
const HERE: &str = "this network namespace";

/// Allows the caller's namespace if MPTCP is on there, else takes it off the list.
pub(super) fn recheck_current(upgrade: &mut Upgrade) -> Result<(), MptcpizeError> {
    let here = current()?;
    if here.mptcp_enabled == Some(true) {
        upgrade.allow_netns(here.cookie)?;
    } else if upgrade.deny_netns(here.cookie)? {
        eprintln!(
            "mptcpize: {HERE} (cookie {}) was allowed, but MPTCP is off here now: taken off \
             the allow-list",
            here.cookie
        );
    }
    Ok(())
}

/// `mptcpize netns ...`.
pub(super) fn command(pin_dir: &Path, command: &NetnsCommand) -> Result<(), MptcpizeError> {
    match command {
        NetnsCommand::Allow { netns } => {
            let (name, ns) = target(netns.as_deref())?;
            let why = match ns.mptcp_enabled {
                Some(true) => None,
                Some(false) => Some("net.mptcp.enabled is 0"),
                None => Some("the kernel has no MPTCP"),
            };
            if let Some(why) = why {
                return Err(MptcpizeError::NetnsMptcpOff { name, why });
            }
            let mut upgrade = match Mechanism::choose(pin_dir)? {
                Mechanism::Ebpf { upgrade, .. } => upgrade,
                Mechanism::Preload { why } => return Err(MptcpizeError::NoUpgrade(why)),
            };
            let new = upgrade.allow_netns(ns.cookie)?;
            println!(
                "mptcpize: {} {name} (cookie {}): enabled cgroups get MPTCP there",
                if new { "allowed" } else { "already allowed:" },
                ns.cookie
            );
        }
        NetnsCommand::Deny { netns, cookie } => {
            let (name, cookie) = match cookie {
                Some(cookie) => ("the network namespace".to_owned(), *cookie),
                None => target(netns.as_deref()).map(|(name, ns)| (name, ns.cookie))?,
            };
            let was = match Upgrade::open(pin_dir)? {
                Some(mut upgrade) => upgrade.deny_netns(cookie)?,
                None => false,
            };
            println!(
                "mptcpize: {} {name} (cookie {cookie}){}",
                if was { "denied" } else { "was not allowed:" },
                if was {
                    ": enabled cgroups keep TCP there"
                } else {
                    ""
                }
            );
        }
        NetnsCommand::List => {
            let mut out = std::io::stdout().lock();
            let listed = match Upgrade::open(pin_dir)? {
                Some(upgrade) => list(&upgrade, &mut out),
                None => writeln!(out, "no eBPF upgrade installed in {}", pin_dir.display()),
            };
            listed.map_err(stdout_err)?;
        }
    }
    Ok(())
}

/// The allowed namespaces (the caller's marked) and the sockets left TCP elsewhere; then a
/// warning if the caller's namespace is allowed while MPTCP is off there (stale).
pub(super) fn list(upgrade: &Upgrade, out: &mut dyn Write) -> std::io::Result<()> {
    let here = current().ok();
    let allowed = upgrade.allowed_netns().unwrap_or_default();
    writeln!(out, "allowed network namespaces: {}", allowed.len())?;
    for (cookie, upgraded) in &allowed {
        let mark = if here.is_some_and(|h| h.cookie == *cookie) {
            "  (this one)"
        } else {
            ""
        };
        writeln!(out, "  cookie {cookie}  upgraded {upgraded}{mark}")?;
    }
    if let Ok(kept) = upgrade.not_allowed() {
        writeln!(out, "kept TCP (namespace not allowed): {kept}")?;
    }
    match here {
        Some(h) if h.mptcp_enabled != Some(true) && allowed.contains_key(&h.cookie) => writeln!(
            out,
            "warning: {HERE} is allowed but MPTCP is off here: upgraded sockets here fail with \
             ENOPROTOOPT (mptcpize netns deny, or any mptcpize enable here, takes it off)"
        ),
        Some(h) if h.mptcp_enabled == Some(true) && !allowed.contains_key(&h.cookie) => writeln!(
            out,
            "note: {HERE} is not allowed: enabled cgroups keep TCP here (mptcpize netns allow)"
        ),
        _ => Ok(()),
    }
}

fn target(path: Option<&Path>) -> Result<(String, Netns), MptcpizeError> {
    match path {
        Some(path) => Netns::at(path)
            .map(|ns| (format!("network namespace {}", path.display()), ns))
            .map_err(|source| MptcpizeError::Netns {
                path: path.to_owned(),
                source,
            }),
        None => current().map(|ns| (HERE.to_owned(), ns)),
    }
}

fn current() -> Result<Netns, MptcpizeError> {
    Netns::current().map_err(|source| MptcpizeError::Netns {
        path: "/proc/self/ns/net".into(),
        source,
    })
}

fn stdout_err(source: std::io::Error) -> MptcpizeError {
    MptcpizeError::DropIn {
        path: "stdout".into(),
        source,
    }
}
