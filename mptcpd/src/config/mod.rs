//! The daemon's configuration: the C mptcpd's command line and `/etc/mptcpd/mptcpd.conf`, with
//! the same keys, values and precedence (command line, then file, then defaults), resolved
//! into one [`Config`].
//!
//! Differences from the C daemon, all in the direction of saying what is wrong: a value the
//! file's key does not take, an unknown key in `[core]`, and a malformed line are errors that
//! name the file, line and key (the C daemon ignores them); `signal` with `fullmesh` is refused
//! (the kernel refuses such endpoints); an empty flag list on the command line clears the
//! file's flags; `--config FILE` names another file; `debug`, `bpf-pin-dir`,
//! `observe-cgroup` and `state-dir` may be set in the file too.

mod error;
mod file;
mod flags;
mod log_target;
mod plugin_list;
mod resolve;

use std::{fmt, path::PathBuf};

pub use error::{ConfigError, LineProblem, PluginDirProblem};
pub use flags::{AddrFlags, AddrFlagsError};
pub use log_target::{LogTarget, LogTargetError};
pub use plugin_list::{PluginList, PluginListError};

use crate::{cli::Args, netmon::NotifyFlags};

/// The file read when `--config` is not given (a missing one is fine).
pub const DEFAULT_CONFIG_FILE: &str = "/etc/mptcpd/mptcpd.conf";
/// Where plugins would be looked for when neither the command line nor the file says.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/mptcpd";
/// Where the runtime state goes when neither the command line nor the file says.
pub const DEFAULT_STATE_DIR: &str = "/run/mptcpd";

/// The effective settings: what the daemon and its plugins use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Log debug messages.
    pub debug: bool,
    /// Where logs go.
    pub log: LogTarget,
    /// Directory of plugins (checked: not world-writable if it exists).
    pub plugin_dir: PathBuf,
    /// The default path-manager plugin; `None`: the one with the most favourable priority.
    pub path_manager: Option<String>,
    /// Plugins to load, by name; `None`: all of them.
    pub load_plugins: Option<Vec<String>>,
    /// Flags of the endpoints that plugins driving the in-kernel path manager add.
    pub addr_flags: AddrFlags,
    /// Which addresses the network monitor reports.
    pub notify_flags: NotifyFlags,
    /// Directory on bpffs for the daemon's pins.
    pub bpf_pin_dir: PathBuf,
    /// cgroup whose sockets the observer counts; `None`: the root of the hierarchy.
    pub observe_cgroup: Option<PathBuf>,
    /// Directory of the runtime state: the endpoints this daemon added, its lock.
    pub state_dir: PathBuf,
    /// The file the settings were read from; `None` when the default file does not exist.
    pub config_file: Option<PathBuf>,
}

impl Config {
    /// Reads the file (`--config`, else [`DEFAULT_CONFIG_FILE`] if it exists), merges the
    /// command line over it, and checks the plugin directory. Called again on SIGHUP.
    pub fn load(args: &Args) -> Result<Self, ConfigError> {
        let (path, required) = file_path(args);
        let file = file::read(&path, required)?;
        let config = Self::merge(args, file.as_ref(), path);
        resolve::check_plugin_dir(&config.plugin_dir)?;
        Ok(config)
    }

    /// What [`Config::load`] makes of `args` and a config file that holds `file_text`
    /// (`None`: no file), without touching the file system: the parsing and merging alone
    /// (what the fuzz targets exercise).
    pub fn from_text(args: &Args, file_text: Option<&str>) -> Result<Self, ConfigError> {
        let (path, _) = file_path(args);
        let file = file_text
            .map(|text| file::parse_text(text, &path))
            .transpose()?;
        Ok(Self::merge(args, file.as_ref(), path))
    }

    fn merge(args: &Args, file: Option<&file::FileSettings>, path: PathBuf) -> Self {
        resolve::merge(
            args,
            file,
            file.is_some().then_some(path),
            LogTarget::platform_default(),
        )
    }
}

/// The file to read, and whether it must exist (it must when named on the command line).
fn file_path(args: &Args) -> (PathBuf, bool) {
    args.config.clone().map_or_else(
        || (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        |p| (p, true),
    )
}

impl Default for Config {
    /// The defaults, logging to stderr.
    fn default() -> Self {
        resolve::merge(&Args::default(), None, None, LogTarget::Stderr)
    }
}

impl fmt::Display for Config {
    /// One line of `key=value` with the file's key names, for the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            debug,
            log,
            plugin_dir,
            path_manager,
            load_plugins,
            addr_flags,
            notify_flags,
            bpf_pin_dir,
            observe_cgroup,
            state_dir,
            config_file,
        } = self;
        let or = |text: String, none: &'static str| {
            if text.is_empty() {
                none.to_owned()
            } else {
                text
            }
        };
        write!(
            f,
            "config-file={} debug={debug} log={log} plugin-dir={} path-manager={} \
             load-plugins={} addr-flags={} notify-flags={} bpf-pin-dir={} observe-cgroup={} state-dir={}",
            config_file
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
            plugin_dir.display(),
            path_manager.as_deref().unwrap_or("(by priority)"),
            load_plugins
                .as_ref()
                .map_or_else(|| "(all)".to_owned(), |list| list.join(",")),
            or(addr_flags.to_string(), "(none)"),
            or(notify_flags.to_string(), "(none)"),
            bpf_pin_dir.display(),
            observe_cgroup
                .as_ref()
                .map_or_else(|| "(root)".to_owned(), |p| p.display().to_string()),
            state_dir.display(),
        )
    }
}

#[cfg(test)]
mod tests;
