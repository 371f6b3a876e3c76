//! `tracing` set-up: stderr, syslog, the journal or nowhere, with `log` records (aya-log's)
//! bridged in. The level can change while running (SIGHUP); the destination cannot.

use std::{
    io::IsTerminal as _,
    path::{Path, PathBuf},
};

use tracing_subscriber::{
    Registry, filter::Targets, layer::SubscriberExt as _, reload, util::SubscriberInitExt as _,
};

use super::{
    DaemonError,
    journal::{JOURNAL_SOCKET, Journal},
    log_socket::{Dropped, Format, LogSocket},
    syslog::{DEV_LOG, Syslog},
};
use crate::config::LogTarget;

/// Overrides the level filter: `target=level` directives and a default level, as `RUST_LOG`
/// (`tracing_subscriber`'s `Targets`: no span or field filters, the daemon logs no spans, and
/// no regex engine in the binary).
const FILTER_ENV: &str = "MPTCPD_LOG";
/// Overrides the socket of `syslog` (`/dev/log`) and `journal` (journald's): for containers
/// that put it elsewhere, and for tests.
const SOCKET_ENV: &str = "MPTCPD_LOG_SOCKET";
/// `--debug`: everything but aya's per-relocation chatter (eBPF programs' own logs stay).
const DEBUG: &str = "debug,aya=info,aya_obj=info";

/// Changes the level of the installed subscriber, and knows what a log socket dropped.
#[derive(Debug)]
pub(super) struct LogLevel {
    handle: reload::Handle<Targets, Registry>,
    /// `MPTCPD_LOG` is set: it wins over `debug` now and after reloads.
    from_env: bool,
    /// Messages that `syslog` or `journal` dropped (a log daemon not reading).
    dropped: Option<Dropped>,
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

    /// At exit: says on stderr how many messages the log socket dropped and no later message
    /// could report (stderr is the journal under systemd, or the terminal).
    pub(super) fn report_dropped(&self) {
        let unreported = self.dropped.as_ref().map_or(0, Dropped::unreported);
        if unreported > 0 {
            eprintln!("mptcpd: {unreported} log messages were dropped (the log socket was full)");
        }
    }
}

fn filter(debug: bool) -> Targets {
    let directives = if debug { DEBUG } else { "info" };
    directives.parse().unwrap_or_default()
}

fn parse(directives: &str) -> Option<Targets> {
    directives.parse().ok()
}

/// Installs the global subscriber. `log` records become `tracing` events.
pub(super) fn init(target: LogTarget, debug: bool) -> Result<LogLevel, DaemonError> {
    let env = std::env::var(FILTER_ENV).ok();
    let (targets, from_env) = match env.as_deref().and_then(parse) {
        Some(f) => (f, true),
        None => (filter(debug), false),
    };
    let (targets, handle) = reload::Layer::new(targets);
    let registry = tracing_subscriber::registry().with(targets);
    let socket_path = |default: &str| {
        std::env::var_os(SOCKET_ENV).map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let mut dropped = None;
    // A second init (only possible in tests) keeps the first subscriber.
    let _already_set = match target {
        LogTarget::Stderr => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogTarget::Syslog => {
            let socket = connect(target, &socket_path(DEV_LOG), Syslog::new())?;
            dropped = Some(socket.dropped());
            registry.with(datagram_layer(socket)).try_init()
        }
        LogTarget::Journal => {
            let socket = connect(target, &socket_path(JOURNAL_SOCKET), Journal)?;
            dropped = Some(socket.dropped());
            registry.with(datagram_layer(socket)).try_init()
        }
        LogTarget::Null => registry.try_init(),
    };
    if let Some(value) = env.filter(|_| !from_env) {
        let default = if debug { DEBUG } else { "info" };
        tracing::warn!(
            "{FILTER_ENV}={value:?} ignored: not a filter of target=level directives and a \
             default level (e.g. info,mptcpd::plugins=debug); using {default}"
        );
    }
    Ok(LogLevel {
        handle,
        from_env,
        dropped,
    })
}

fn connect<F: Format>(
    target: LogTarget,
    path: &Path,
    format: F,
) -> Result<LogSocket<F>, DaemonError> {
    LogSocket::connect(path, format).map_err(|source| DaemonError::Logging {
        target,
        path: path.to_owned(),
        source,
    })
}

/// The text of each event, without time, level or target: the log daemon records those.
fn datagram_layer<F: Format, S>(socket: LogSocket<F>) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(socket)
        .with_ansi(false)
        .without_time()
        .with_level(false)
        .with_target(false)
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::{filter, parse};

    #[test]
    fn debug_spares_aya_and_the_environment_takes_target_directives() {
        let debug = filter(true);
        assert!(debug.would_enable("mptcpd::plugins::handle", &Level::DEBUG));
        assert!(!debug.would_enable("aya::bpf", &Level::DEBUG));
        assert!(debug.would_enable("aya_obj::btf", &Level::INFO));
        let quiet = filter(false);
        assert!(!quiet.would_enable("mptcpd", &Level::DEBUG));
        assert!(quiet.would_enable("mptcpd", &Level::INFO));

        let env = parse("warn,mptcpd::plugins=trace").unwrap();
        assert!(env.would_enable("mptcpd::plugins::owned", &Level::TRACE));
        assert!(!env.would_enable("mptcpd::daemon", &Level::INFO));
        assert!(env.would_enable("mptcpd::daemon", &Level::WARN));
        assert!(parse("mptcpd=loud").is_none(), "not a level");
    }
}
