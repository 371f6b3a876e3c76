//! The daemon's life: configuration, prerequisites, logging, telemetry, readiness, reloads on
//! SIGHUP and shutdown on SIGTERM or SIGINT.

mod builder;
mod departure;
mod error;
mod family;
mod instance;
mod journal;
mod log_socket;
mod logging;
mod notify;
mod plugins;
mod prereq;
mod privileges;
mod reload;
mod signals;
mod subflows;
mod syslog;
mod telemetry;

pub use builder::Daemon;
pub(crate) use error::DaemonError;

use std::sync::Arc;

use crate::{
    cli::Args,
    config::Config,
    connections::{Connections, KernelDiag},
    diag,
    plugins::{NetlinkPm, PluginHost, Registry},
};
use mptcp_pm::EventItem;
use mptcpd_common::Chain;
use mptcpd_netmon::NetworkMonitor;
use signals::{Signal, Signals};

/// Loads the configuration from `args` and runs the daemon, with the plugins of `registry`,
/// until SIGTERM or SIGINT.
fn run(args: &Args, registry: &Registry) -> Result<(), DaemonError> {
    let config = Config::load(args)?;
    // Before logging starts, so that a refusal is the only line printed.
    prereq::check()?;
    let instance = instance::Instance::claim(&config.state_dir)?;
    let log = logging::init(config.log, config.debug)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let served = runtime.block_on(serve(args, config, registry, &log, &instance));
    log.report_dropped();
    served
}

/// What a reload changes.
struct Running<'a> {
    args: &'a Args,
    config: Config,
    log: &'a logging::LogLevel,
    netmon: NetworkMonitor,
}

impl Running<'_> {
    /// Reads the configuration again; keeps the current one if the new one is wrong (then
    /// `false`).
    fn reload(&mut self) -> bool {
        let new = match Config::load(self.args) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("reload: {}; keeping the current configuration", Chain(&e));
                return false;
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
        if effective.policy.filter != self.config.policy.filter {
            // Every interface and address is judged again now, not only those that change.
            self.netmon.set_filter(effective.policy.filter.clone());
            tracing::info!("reload: the address policy applies to every address now");
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
        true
    }
}

/// Test-only: the `mptcp_pm` event socket's receive buffer in bytes, small enough that a
/// test can force an overrun (`tests/tests/faults_overrun.rs`).
const TEST_EVENT_BUFFER: &str = "MPTCPD_TEST_EVENT_RCVBUF";

/// The `mptcp_pm` events, with the test setting's buffer if given.
fn subscribe(pm: &mptcp_pm::PmClient) -> Result<mptcp_pm::EventStream, DaemonError> {
    let events = pm.subscribe().map_err(DaemonError::Pm)?;
    let test_buffer = std::env::var(TEST_EVENT_BUFFER).ok();
    if let Some(bytes) = test_buffer.and_then(|b| b.parse().ok()) {
        tracing::warn!("{TEST_EVENT_BUFFER}={bytes}: a test setting, not for production");
        if let Err(e) = events.set_receive_buffer(bytes) {
            tracing::warn!("{TEST_EVENT_BUFFER}: {}", Chain(&e));
        }
    }
    Ok(events)
}

/// After lost `mptcp_pm` events: the connection view and the plugins get the kernel's list
/// (without the connections external path managers still handle).
async fn resync(
    host: &mut PluginHost<NetlinkPm>,
    connections: &Connections,
    claims: &crate::dbus::SharedClaims,
    overruns: u64,
) {
    tracing::warn!("mptcp_pm events lost (receive buffer overrun {overruns}): resynchronising");
    let mut live = diag::connections().await;
    if let Ok(live) = &mut live {
        connections.resync(live);
        let tokens: Vec<_> = live.iter().map(|s| s.token).collect();
        let claimed = claims.lock().retain_live(&tokens);
        live.retain(|s| !claimed.contains(&s.token));
    }
    host.resync(live).await;
}

/// An `mptcp_pm` event for the connection view, the bus and, unless an external path manager
/// handles its connection, the plugins.
async fn pm_event(
    host: &mut PluginHost<NetlinkPm>,
    connections: &Connections,
    bus: &crate::dbus::Bus,
    event: &mptcp_pm::Event,
) {
    tracing::debug!("mptcp: {event:?}");
    connections.on_pm_event(event);
    if !bus.pm_event(event) {
        host.on_pm_event(event).await;
    }
}

/// Connections an external path manager gave back: the default plugin's now.
async fn hand_back(
    host: &mut PluginHost<NetlinkPm>,
    connections: &Connections,
    tokens: Vec<mptcp_pm::Token>,
) {
    let views = tokens
        .into_iter()
        .filter_map(|t| connections.get(t))
        .collect();
    let adopted = host.adopt_released(views).await;
    tracing::info!(
        "{adopted} connections of an external path manager adopted by the default plugin"
    );
}

/// The next telemetry event for the plugins; never, without a queue.
async fn next_telemetry(
    events: &mut Option<tokio::sync::mpsc::Receiver<mptcpd_plugin::TelemetryEvent>>,
) -> Option<mptcpd_plugin::TelemetryEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// How often plugins that ask for it hear [`mptcpd_plugin::Event::Tick`].
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Ticks every [`TICK`]; late ones are not made up for.
fn ticks() -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// The next tick; never, when no plugin wants ticks (an idle daemon stays asleep).
async fn next_tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The metrics server, if `--metrics-address` is set.
#[cfg(feature = "metrics")]
async fn start_metrics(
    config: &Config,
    host: &PluginHost<NetlinkPm>,
    connections: &Connections,
    telemetry: Option<&telemetry::Telemetry>,
) -> Option<crate::metrics::MetricsServer> {
    use mptcpd_plugin::PathManager as _;
    crate::metrics::start(config.metrics_address, || {
        let pm = host.shared_pm();
        crate::metrics::Sources {
            connections: connections.clone(),
            stats: host.stats(),
            endpoints_owned: Box::new(move || pm.owned_endpoints().len()),
            telemetry: telemetry.and_then(telemetry::Telemetry::stats_reader),
            decisions: host.pm().decisions().clone(),
        }
    })
    .await
}

/// A build without metrics: an address asked for is refused in one line, the daemon runs on.
#[cfg(not(feature = "metrics"))]
#[expect(clippy::unused_async, reason = "the metrics build's signature")]
async fn start_metrics(
    config: &Config,
    _host: &PluginHost<NetlinkPm>,
    _connections: &Connections,
    _telemetry: Option<&telemetry::Telemetry>,
) -> Option<std::convert::Infallible> {
    if let Some(address) = config.metrics_address {
        tracing::error!(
            "metrics off: this mptcpd was built without the metrics feature ({address} not served)"
        );
    }
    None
}

/// Waits for the `mptcp_pm` family, reloading on SIGHUP meanwhile; `None` if told to stop.
async fn wait_for_family(
    signals: &mut Signals,
    running: &mut Running<'_>,
) -> Result<Option<mptcp_pm::PmClient>, DaemonError> {
    let connect = family::connect();
    tokio::pin!(connect);
    loop {
        tokio::select! {
            pm = &mut connect => return pm.map(Some).map_err(DaemonError::Pm),
            signal = signals.recv() => match signal {
                // The plugins are built with the configuration in force once the family is
                // there: nothing else to tell.
                Signal::Hup => {
                    running.reload();
                }
                Signal::Term | Signal::Int => {
                    tracing::info!("{signal} received before mptcp_pm appeared, shutting down");
                    return Ok(None);
                }
            },
        }
    }
}

async fn serve(
    args: &Args,
    config: Config,
    registry: &Registry,
    log: &logging::LogLevel,
    instance: &instance::Instance,
) -> Result<(), DaemonError> {
    tracing::info!("mptcpd {} starting", env!("CARGO_PKG_VERSION"));
    tracing::debug!("configuration: {config}");
    let mut signals = Signals::install()?;
    // The view of the namespace's connections: figures from `mptcp_diag`, and from the
    // subflow telemetry when it runs; its telemetry events go to the plugins.
    let connections = Connections::new();
    connections.set_socket_source(Some(Arc::new(KernelDiag)));
    let mut telemetry_events = connections.take_events();
    let telemetry = telemetry::Telemetry::start(&config, &connections);
    // Nothing loads a BPF program after this point.
    match privileges::drop_bpf_capabilities() {
        Ok(()) => tracing::debug!("dropped CAP_BPF and CAP_PERFMON"),
        Err(e) => tracing::warn!("could not drop CAP_BPF and CAP_PERFMON: {e}"),
    }
    let netmon =
        NetworkMonitor::start_with_filter(config.notify_flags, config.policy.filter.clone())
            .await
            .map_err(DaemonError::Netmon)?;
    let mut running = Running {
        args,
        config,
        log,
        netmon,
    };

    // The C daemon also starts the network monitor first, then waits for the family.
    let Some(pm) = wait_for_family(&mut signals, &mut running).await? else {
        return Ok(());
    };
    let mut pm_events = subscribe(&pm)?;
    let settings = plugins::settings(&running.config, instance.state_file());
    // The host logs what it loaded, removes (stale) and, at shutdown, removes.
    let mut host = PluginHost::start(registry, &settings, NetlinkPm(pm.clone()))
        .await
        .map_err(DaemonError::Plugins)?;
    host.pm().set_connections(connections.clone());
    // The monitor's start-up events first, then what was adopted but not claimed is stale.
    host.start_up(&mut running.netmon).await;
    let stats = host.stats();
    let _metrics = start_metrics(&running.config, &host, &connections, telemetry.as_ref()).await;
    let plugins = host.plugin_names().into_iter().map(str::to_owned).collect();
    // Connections external path managers gave back, for the default plugin.
    let (handback, mut handed_back) = tokio::sync::mpsc::unbounded_channel();
    let bus = crate::dbus::Bus::spawn(
        pm.clone(),
        host.shared_pm(),
        connections.clone(),
        host.pm().decisions().clone(),
        plugins,
        &running.config,
        handback,
    );
    notify::ready();
    tracing::info!("ready (notify flags: {})", running.config.notify_flags);
    let mut ticks = host.wants_ticks().then(ticks);

    let signal = loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Signal::Hup => {
                    tracing::info!("SIGHUP received, reloading {}", running.args.config.as_ref().map_or(
                        crate::config::DEFAULT_CONFIG_FILE.to_owned(),
                        |p| p.display().to_string(),
                    ));
                    notify::reloading();
                    if running.reload() {
                        host.reconfigure(&plugins::settings(&running.config, instance.state_file()));
                    }
                    bus.configuration(&running.config);
                    notify::ready();
                }
                Signal::Term | Signal::Int => break signal,
            },
            event = running.netmon.next_event() => match event {
                Some(event) => {
                    tracing::debug!("network: {event:?}");
                    bus.net_event(&event);
                    host.on_net_event(&event).await;
                }
                None => {
                    return Err(DaemonError::NetmonStopped(running.netmon.wait().await.err()));
                }
            },
            item = pm_events.recv() => match item.map_err(DaemonError::Pm)? {
                EventItem::Event(event) => {
                    stats.pm_event();
                    pm_event(&mut host, &connections, &bus, &event).await;
                }
                EventItem::Overrun => {
                    let overruns = stats.overrun();
                    resync(&mut host, &connections, bus.claims(), overruns).await;
                }
                EventItem::Malformed(e) => tracing::debug!("mptcp: undecodable event: {}", Chain(&e)),
            },
            Some(tokens) = handed_back.recv() => hand_back(&mut host, &connections, tokens).await,
            Some(event) = next_telemetry(&mut telemetry_events) => host.on_telemetry(event).await,
            () = next_tick(&mut ticks) => host.on_tick().await,
            () = host.pm().deferred_write_due() => host.pm().write_deferred_state(),
        }
    };
    departure::leave(host, signal).await;
    if let Some(telemetry) = telemetry {
        telemetry.log_summary();
    }
    tracing::info!("stopped");
    Ok(())
}
