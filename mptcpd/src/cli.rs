//! The daemon's command line: the C mptcpd's options (same names, values and exit status 64 on
//! bad usage), plus `--config`, `--bpf-pin-dir`, `--observe-cgroup` and `--state-dir`. Every
//! setting is optional here so that [`crate::config`] can tell "not given" from a default; the
//! options are declared with the settings, in `config/settings.rs`.

pub use crate::config::Args;

/// The command line's definition (what `--help` shows), for man pages and completions.
#[must_use]
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}
