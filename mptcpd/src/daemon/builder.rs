//! The daemon as a library: `mptcpd::Daemon::builder().plugin(MyPlugin).run()` runs mptcpd,
//! with its command line, with more plugins than the built-ins.

use mptcpd_common::Chain;
use std::{process::ExitCode, sync::Arc};

use clap::{CommandFactory as _, Parser as _, error::ErrorKind};
use mptcpd_plugin::{Plugin, PluginConfig};

use super::DaemonError;
use crate::{cli::Args, plugins::Registry};

/// `EX_USAGE` from sysexits.h, as the C mptcpd exits on bad usage.
const EX_USAGE: u8 = 64;

/// The mptcpd daemon; see [`Daemon::builder`].
#[derive(Debug)]
pub struct Daemon {
    registry: Registry,
}

impl Daemon {
    /// A daemon with the built-in plugins (`addr_adv`, `sspi`, `mesh`), to which
    /// [`Daemon::plugin`] adds others. `--load-plugins` and `--path-manager` choose among all
    /// of them by name; with neither, every plugin is loaded and the one with the best
    /// priority handles new connections (ties: the built-ins first, then in the order added).
    #[must_use]
    pub fn builder() -> Self {
        Self {
            registry: Registry::default(),
        }
    }

    /// Adds a plugin.
    #[must_use]
    pub fn plugin(mut self, plugin: impl Plugin + 'static) -> Self {
        self.registry = self.registry.with_plugin(Arc::new(plugin));
        self
    }

    /// Adds a plugin made, when the daemon starts, from the settings that concern plugins
    /// (`--addr-flags`).
    #[must_use]
    pub fn plugin_with<P: Plugin + 'static>(
        mut self,
        make: impl Fn(&PluginConfig) -> P + Send + Sync + 'static,
    ) -> Self {
        self.registry = self.registry.with(make);
        self
    }

    /// Parses the process's command line (mptcpd's) and runs the daemon until SIGTERM or
    /// SIGINT. Bad usage: one line on stderr, exit code 64 (`EX_USAGE`, as the C mptcpd);
    /// a failure: one line on stderr, exit code 1.
    #[must_use]
    pub fn run(self) -> ExitCode {
        let args = match Args::try_parse() {
            Ok(args) => args,
            Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
                let _printed = e.print();
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                // One line: what was wrong; `--help` says the rest.
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                eprintln!(
                    "mptcpd: {} (see --help)",
                    first.trim_start_matches("error: ")
                );
                return ExitCode::from(EX_USAGE);
            }
        };
        if args.usage {
            print!("{}", Args::command().render_usage());
            println!();
            return ExitCode::SUCCESS;
        }
        match self.run_with(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // Logging may not be up: this one line goes to stderr whatever --log says.
                eprintln!("mptcpd: {}", Chain(&e));
                ExitCode::FAILURE
            }
        }
    }

    /// Runs the daemon with parsed arguments until SIGTERM or SIGINT.
    pub(crate) fn run_with(self, args: &Args) -> Result<(), DaemonError> {
        super::run(args, &self.registry)
    }
}
