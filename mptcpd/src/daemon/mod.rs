//! The daemon's life: logging, telemetry, readiness, and shutdown on a signal.

mod error;
mod logging;
mod notify;
mod signals;
mod telemetry;

pub use error::DaemonError;

use crate::cli::Args;

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
    notify::ready();
    tracing::info!("ready");

    let signal = signals.recv().await;
    tracing::info!("{signal} received, shutting down");
    notify::stopping();
    if let Some(telemetry) = telemetry {
        telemetry.log_summary();
    }
    tracing::info!("stopped");
    Ok(())
}
