//! `tracing` set-up: stderr, syslog, the journal or nowhere, with `log` records (aya-log's)
//! bridged in. The level can change while running (SIGHUP); the destination cannot.

use std::{io::IsTerminal as _, path::Path};

use tracing_subscriber::{
    EnvFilter, Registry, layer::SubscriberExt as _, reload, util::SubscriberInitExt as _,
};

use super::{DaemonError, syslog::Syslog};
use crate::config::LogTarget;

/// Overrides the level filter, in `tracing_subscriber::EnvFilter` syntax.
const FILTER_ENV: &str = "MPTCPD_LOG";
/// `--debug`: everything but aya's per-relocation chatter (eBPF programs' own logs stay).
const DEBUG: &str = "debug,aya=info,aya_obj=info";

/// Changes the level of the installed subscriber.
#[derive(Debug)]
pub(super) struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `MPTCPD_LOG` is set: it wins over `debug` now and after reloads.
    from_env: bool,
}

impl LogLevel {
    /// Switches debug messages on or off.
    pub(super) fn set_debug(&self, debug: bool) {
        if self.from_env {
            return;
        }
        if let Err(e) = self.handle.reload(filter(debug)) {
            tracing::warn!("changing the log level: {e}");
        }
    }
}

fn filter(debug: bool) -> EnvFilter {
    EnvFilter::new(if debug { DEBUG } else { "info" })
}

/// Installs the global subscriber. `log` records become `tracing` events.
pub(super) fn init(target: LogTarget, debug: bool) -> Result<LogLevel, DaemonError> {
    let (env_filter, from_env) = match EnvFilter::try_from_env(FILTER_ENV) {
        Ok(f) => (f, true),
        Err(_) => (filter(debug), false),
    };
    let (env_filter, handle) = reload::Layer::new(env_filter);
    let registry = tracing_subscriber::registry().with(env_filter);
    let failed = |source| DaemonError::Logging { target, source };
    // A second init (only possible in tests) keeps the first subscriber.
    let _already_set = match target {
        LogTarget::Stderr => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogTarget::Syslog => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(
                        Syslog::connect(Path::new(super::syslog::DEV_LOG)).map_err(failed)?,
                    )
                    .with_ansi(false)
                    .without_time()
                    .with_level(false)
                    .with_target(false),
            )
            .try_init(),
        LogTarget::Journal => registry
            .with(tracing_journald::layer().map_err(failed)?)
            .try_init(),
        LogTarget::Null => registry.try_init(),
    };
    Ok(LogLevel { handle, from_env })
}
