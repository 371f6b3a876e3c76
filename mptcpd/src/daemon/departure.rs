//! What a SIGTERM means for the endpoints: a restart or an upgrade hands them over to the
//! next daemon (live connections keep their subflows), a stop removes them.
//!
//! Only systemd knows which it is: `systemctl restart` (and a package's restart on upgrade)
//! queues a job of type `restart` on the unit, and its stop half sends the SIGTERM while that
//! job is the unit's `Job`; `systemctl stop`, a shutdown and `dpkg --remove` queue `stop`.
//! So under systemd (`INVOCATION_ID` set) the daemon asks it over the system bus; outside
//! systemd, on SIGINT, or when the answer does not come, it stops as before and removes them.
//! A build without the `dbus` feature cannot ask: it always removes them (the next daemon
//! adds them again, with new ids).

use super::signals::Signal;
use crate::plugins::{NetlinkPm, PluginHost};

/// How a stop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Departure {
    /// The next daemon follows: leave the endpoints for it to adopt.
    HandOver,
    /// Nobody follows: remove the endpoints.
    Stop,
}

/// Says the daemon stops (log, systemd), then hands the endpoints over or removes them, and
/// writes what the state file still lacks.
pub(super) async fn leave(host: PluginHost<NetlinkPm>, signal: Signal) {
    tracing::info!("{signal} received, shutting down");
    super::notify::stopping();
    // Asked now, not at the signal: systemd has queued the job before it sends the signal.
    let departure = match signal {
        Signal::Term => on_sigterm().await,
        Signal::Int | Signal::Hup => Departure::Stop,
    };
    let handle = host.shared_pm();
    match departure {
        Departure::HandOver => {
            host.hand_over().await;
        }
        Departure::Stop => {
            host.shutdown().await;
        }
    }
    // What the next start reads: the removals not written yet too.
    handle.write_deferred_state();
}

/// systemd's job types that start the unit again after stopping it.
#[cfg_attr(
    all(not(feature = "dbus"), not(test)),
    expect(dead_code, reason = "only a build with D-Bus asks systemd")
)]
const RESTARTS: &[&str] = &[
    "restart",
    "try-restart",
    "reload-or-restart",
    "reload-or-try-restart",
];

/// The departure for the unit's pending job type (`None`: no job, as for `systemctl kill`).
#[cfg_attr(
    all(not(feature = "dbus"), not(test)),
    expect(dead_code, reason = "only a build with D-Bus asks systemd")
)]
fn for_job(job_type: Option<&str>) -> Departure {
    match job_type {
        Some(kind) if RESTARTS.contains(&kind) => Departure::HandOver,
        _ => Departure::Stop,
    }
}

/// The departure for a SIGTERM, built without D-Bus: systemd cannot be asked.
#[cfg(not(feature = "dbus"))]
#[expect(clippy::unused_async, reason = "the D-Bus build's signature")]
async fn on_sigterm() -> Departure {
    Departure::Stop
}

#[cfg(feature = "dbus")]
use ask::on_sigterm;

/// Asking systemd over the system bus.
#[cfg(feature = "dbus")]
mod ask {
    use std::time::Duration;

    use mptcpd_common::Chain;
    use zbus::{proxy::CacheProperties, zvariant::OwnedObjectPath};

    use super::{Departure, for_job};

    /// systemd sets this for every process it starts as a unit.
    const INVOCATION_ID: &str = "INVOCATION_ID";

    /// A bound on asking: a stop must not wait long for a bus that does not answer.
    const ASK_TIMEOUT: Duration = Duration::from_secs(3);

    /// The departure for a SIGTERM: asks systemd, when it started the daemon.
    pub(super) async fn on_sigterm() -> Departure {
        if std::env::var_os(INVOCATION_ID).is_none() {
            return Departure::Stop;
        }
        match tokio::time::timeout(ASK_TIMEOUT, pending_job_type()).await {
            Ok(Ok(job)) => {
                tracing::debug!(
                    "systemd job of this unit: {}",
                    job.as_deref().unwrap_or("none")
                );
                for_job(job.as_deref())
            }
            Ok(Err(e)) => {
                tracing::warn!(
                    "asking systemd whether this is a restart: {}; removing the endpoints",
                    Chain(&e)
                );
                Departure::Stop
            }
            Err(_) => {
                tracing::warn!(
                    "no answer from systemd in {}s on whether this is a restart; removing the \
                 endpoints",
                    ASK_TIMEOUT.as_secs()
                );
                Departure::Stop
            }
        }
    }

    const SYSTEMD: &str = "org.freedesktop.systemd1";

    /// The type of the job pending on the unit this process belongs to, if any.
    async fn pending_job_type() -> zbus::Result<Option<String>> {
        let bus = zbus::Connection::system().await?;
        let proxy = |path: OwnedObjectPath, interface: &'static str| {
            zbus::proxy::Builder::<zbus::Proxy<'_>>::new(&bus)
                .destination(SYSTEMD)
                .and_then(|b| b.path(path))
                .and_then(|b| b.interface(interface))
                .map(|b| b.cache_properties(CacheProperties::No))
        };
        let manager = proxy(
            OwnedObjectPath::try_from("/org/freedesktop/systemd1")?,
            "org.freedesktop.systemd1.Manager",
        )?
        .build()
        .await?;
        let unit: OwnedObjectPath = manager.call("GetUnitByPID", &(std::process::id(),)).await?;
        let unit = proxy(unit, "org.freedesktop.systemd1.Unit")?
            .build()
            .await?;
        let (id, job): (u32, OwnedObjectPath) = unit.get_property("Job").await?;
        if id == 0 {
            return Ok(None);
        }
        let job = proxy(job, "org.freedesktop.systemd1.Job")?.build().await?;
        job.get_property("JobType").await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_hand_over_and_everything_else_stops() {
        for kind in RESTARTS {
            assert_eq!(for_job(Some(kind)), Departure::HandOver, "{kind}");
        }
        for kind in ["stop", "start", "reload", "verify-active", "nop"] {
            assert_eq!(for_job(Some(kind)), Departure::Stop, "{kind}");
        }
        assert_eq!(for_job(None), Departure::Stop);
    }
}
