//! The daemon's life: configuration, prerequisites, logging, telemetry, readiness, reloads on
//! SIGHUP and shutdown on SIGTERM or SIGINT.

mod error;
mod family;
mod instance;
mod logging;
mod notify;
mod plugins;
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
    plugins::{NetlinkPm, PluginHost},
    pm::EventItem,
};
use signals::{Signal, Signals};

/// Loads the configuration from `args` and runs the daemon until SIGTERM or SIGINT.
pub fn run(args: &Args) -> Result<(), DaemonError> {
    let config = Config::load(args)?;
    // Before logging starts, so that a refusal is the only line printed.
    prereq::check()?;
    let instance = instance::Instance::claim(&config.state_dir)?;
    let log = logging::init(config.log, config.debug)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(serve(args, config, &log, &instance))
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

async fn serve(
    args: &Args,
    config: Config,
    log: &logging::LogLevel,
    instance: &instance::Instance,
) -> Result<(), DaemonError> {
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
    let settings = plugins::settings(&running.config, instance.state_file());
    let mut host = PluginHost::start(&settings, NetlinkPm(pm.clone()))
        .await
        .map_err(DaemonError::Plugins)?;
    tracing::info!(
        "plugins: {} (default {})",
        host.plugin_names().join(", "),
        host.default_plugin()
    );
    // The monitor's start-up events first, then what was adopted but not claimed is stale.
    let stale = host.start_up(&mut running.netmon).await;
    if stale > 0 {
        tracing::info!("removed {stale} stale endpoints of an earlier run");
    }
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
                Some(event) => {
                    tracing::debug!("network: {event:?}");
                    host.on_net_event(&event).await;
                }
                None => {
                    return Err(DaemonError::NetmonStopped(running.netmon.wait().await.err()));
                }
            },
            item = pm_events.recv() => match item.map_err(DaemonError::Pm)? {
                EventItem::Event(event) => {
                    tracing::debug!("mptcp: {event:?}");
                    host.on_pm_event(&event).await;
                }
                EventItem::Overrun => {
                    tracing::warn!("mptcp_pm events lost (receive buffer overrun): resynchronising");
                    host.resync().await;
                }
                EventItem::Malformed(e) => tracing::debug!("mptcp: undecodable event: {e}"),
            },
        }
    };
    tracing::info!("{signal} received, shutting down");
    notify::stopping();
    let removed = host.shutdown().await;
    tracing::info!("removed the {removed} endpoints this daemon added");
    if let Some(telemetry) = telemetry {
        telemetry.log_summary();
    }
    tracing::info!("stopped");
    Ok(())
}
