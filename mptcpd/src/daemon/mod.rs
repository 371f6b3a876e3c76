//! The daemon's life: logging, telemetry, readiness, and shutdown on a signal.

mod error;
mod logging;
mod notify;
mod signals;
mod telemetry;

pub use error::DaemonError;

use crate::{
    cli::Args,
    netmon::NetworkMonitor,
    pm::{EventItem, PmClient},
};

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(args: &Args) -> Result<(), DaemonError> {
    logging::init(args.log, args.debug)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(serve(args))
}

async fn serve(args: &Args) -> Result<(), DaemonError> {
    tracing::info!("mptcpd {} starting", env!("CARGO_PKG_VERSION"));
    let mut signals = signals::Shutdown::install()?;
    let telemetry = telemetry::Telemetry::start(args);
    let mut netmon = NetworkMonitor::start(args.notify_flags)
        .await
        .map_err(DaemonError::Netmon)?;
    let pm = PmClient::connect().await.map_err(DaemonError::Pm)?;
    let mut pm_events = pm.subscribe().map_err(DaemonError::Pm)?;
    notify::ready();
    tracing::info!("ready (notify flags: {})", args.notify_flags);

    let signal = loop {
        tokio::select! {
            signal = signals.recv() => break signal,
            event = netmon.next_event() => match event {
                // Until plugins consume them (the path-manager work), events are logged.
                Some(event) => tracing::debug!("network: {event:?}"),
                None => return Err(DaemonError::NetmonStopped(netmon.wait().await.err())),
            },
            item = pm_events.recv() => match item.map_err(DaemonError::Pm)? {
                // Until plugins consume them (the path-manager work), events are logged.
                EventItem::Event(event) => tracing::debug!("mptcp: {event:?}"),
                EventItem::Overrun => resync(&pm).await,
                EventItem::Malformed(e) => tracing::debug!("mptcp: undecodable event: {e}"),
            },
        }
    };
    tracing::info!("{signal} received, shutting down");
    notify::stopping();
    if let Some(telemetry) = telemetry {
        telemetry.log_summary();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Events were lost: what was derived from them is re-read from the kernel.
async fn resync(pm: &PmClient) {
    tracing::warn!("mptcp_pm events lost (receive buffer overrun): re-reading the endpoints");
    match pm.dump_addrs().await {
        Ok(endpoints) => tracing::info!("resynced: {} endpoints", endpoints.len()),
        Err(e) => tracing::warn!("resync failed: {e}"),
    }
}
