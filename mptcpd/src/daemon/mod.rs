//! The daemon's life: configuration, prerequisites, logging, telemetry, readiness, reloads on
//! SIGHUP and shutdown on SIGTERM or SIGINT.

mod error;
mod family;
mod logging;
mod notify;
mod prereq;
mod reload;
mod signals;
mod syslog;
mod telemetry;

pub use error::DaemonError;

use crate::{
    cli::Args,
    config::Config,
    netmon::NetworkMonitor,
    pm::{EventItem, PmClient},
};
use signals::{Signal, Signals};

/// Loads the configuration from `args` and runs the daemon until SIGTERM or SIGINT.
pub fn run(args: &Args) -> Result<(), DaemonError> {
    let config = Config::load(args)?;
    // Before logging starts, so that a refusal is the only line printed.
    prereq::check()?;
    let log = logging::init(config.log, config.debug)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(serve(args, config, &log))
}

/// What a reload changes.
struct Running<'a> {
    args: &'a Args,
    config: Config,
    log: &'a logging::LogLevel,
    netmon: NetworkMonitor,
}

impl Running<'_> {
    /// Reads the configuration again; keeps the current one if the new one is wrong.
    fn reload(&mut self) {
        let new = match Config::load(self.args) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("reload: {e}; keeping the current configuration");
                return;
            }
        };
        let reload::Plan {
            effective,
            need_restart,
        } = reload::plan(&self.config, new);
        if effective.debug != self.config.debug {
            self.log.set_debug(effective.debug);
        }
        if effective.notify_flags != self.config.notify_flags {
            self.netmon.set_flags(effective.notify_flags);
        }
        if !need_restart.is_empty() {
            tracing::warn!(
                "reload: changed {} take effect at the next start",
                need_restart.join(", ")
            );
        }
        self.config = effective;
        tracing::info!("configuration reloaded");
        tracing::debug!("configuration: {}", self.config);
    }
}

async fn serve(args: &Args, config: Config, log: &logging::LogLevel) -> Result<(), DaemonError> {
    tracing::info!("mptcpd {} starting", env!("CARGO_PKG_VERSION"));
    tracing::debug!("configuration: {config}");
    let mut signals = Signals::install()?;
    let telemetry = telemetry::Telemetry::start(&config);
    let netmon = NetworkMonitor::start(config.notify_flags)
        .await
        .map_err(DaemonError::Netmon)?;
    let mut running = Running {
        args,
        config,
        log,
        netmon,
    };

    // The C daemon also starts the network monitor first, then waits for the family.
    let pm = {
        let connect = family::connect();
        tokio::pin!(connect);
        loop {
            tokio::select! {
                pm = &mut connect => break pm.map_err(DaemonError::Pm)?,
                signal = signals.recv() => match signal {
                    Signal::Hup => running.reload(),
                    Signal::Term | Signal::Int => {
                        tracing::info!("{signal} received before mptcp_pm appeared, shutting down");
                        return Ok(());
                    }
                },
            }
        }
    };
    let mut pm_events = pm.subscribe().map_err(DaemonError::Pm)?;
    notify::ready();
    tracing::info!("ready (notify flags: {})", running.config.notify_flags);

    let signal = loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Signal::Hup => {
                    tracing::info!("SIGHUP received, reloading {}", running.args.config.as_ref().map_or(
                        crate::config::DEFAULT_CONFIG_FILE.to_owned(),
                        |p| p.display().to_string(),
                    ));
                    notify::reloading();
                    running.reload();
                    notify::ready();
                }
                Signal::Term | Signal::Int => break signal,
            },
            event = running.netmon.next_event() => match event {
                // Until plugins consume them (the path-manager work), events are logged.
                Some(event) => tracing::debug!("network: {event:?}"),
                None => {
                    return Err(DaemonError::NetmonStopped(running.netmon.wait().await.err()));
                }
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
