//! `tracing` set-up: stderr or the journal, with `log` records (aya-log's) bridged in.

use std::io::IsTerminal as _;
use std::os::fd::AsFd as _;
use std::os::unix::fs::MetadataExt as _;

use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

use super::DaemonError;
use crate::cli::LogTarget;

/// Overrides the level filter, in `tracing_subscriber::EnvFilter` syntax.
const FILTER_ENV: &str = "MPTCPD_LOG";
/// `--debug`: everything but aya's per-relocation chatter (eBPF programs' own logs stay).
const DEBUG: &str = "debug,aya=info,aya_obj=info";

/// Installs the global subscriber. `log` records become `tracing` events.
pub(super) fn init(target: Option<LogTarget>, debug: bool) -> Result<(), DaemonError> {
    let filter = EnvFilter::try_from_env(FILTER_ENV)
        .unwrap_or_else(|_| EnvFilter::new(if debug { DEBUG } else { "info" }));
    let target = target.unwrap_or_else(|| {
        if stderr_is_journal() {
            LogTarget::Journal
        } else {
            LogTarget::Stderr
        }
    });
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (only possible in tests) keeps the first subscriber.
    let _already_set = match target {
        LogTarget::Stderr => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogTarget::Journal => registry
            .with(tracing_journald::layer().map_err(DaemonError::Journal)?)
            .try_init(),
        LogTarget::Null => registry.try_init(),
    };
    Ok(())
}

/// systemd connects stderr to the journal and says so in `JOURNAL_STREAM` (`DEV:INODE`).
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(stderr).metadata() else {
        return false;
    };
    stream.to_str() == Some(&format!("{}:{}", meta.dev(), meta.ino()))
}
