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
mod log_target;
mod plugin_list;
mod policy;
mod resolve;
mod settings;
mod table;

use std::{fmt, path::PathBuf};

pub use error::{ConfigError, LineProblem, PluginDirProblem};
pub use log_target::{LogTarget, LogTargetError};
pub use plugin_list::{PluginList, PluginListError};
pub use policy::{INTERFACE_SECTION, POLICY_SECTION, Policy};
pub use settings::{Args, Config, SECTION, SETTINGS};
pub use table::Setting;

/// The file read when `--config` is not given (a missing one is fine).
pub(crate) const DEFAULT_CONFIG_FILE: &str = "/etc/mptcpd/mptcpd.conf";
/// Where plugins would be looked for when neither the command line nor the file says.
pub(crate) const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/mptcpd";
/// Where the runtime state goes when neither the command line nor the file says.
pub(crate) const DEFAULT_STATE_DIR: &str = "/run/mptcpd";
/// The group allowed to call the D-Bus control methods (besides root).
pub(crate) const DEFAULT_DBUS_GROUP: &str = "mptcpd";

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

    fn merge(args: &Args, file: Option<&file::FileContents>, path: PathBuf) -> Self {
        settings::merge(
            args,
            file.map(|file| &file.core),
            file.is_some().then_some(path),
            file.map(|file| file.policy.clone()).unwrap_or_default(),
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
    /// What the daemon uses when neither the command line nor a file says anything.
    fn default() -> Self {
        settings::merge(&Args::default(), None, None, Policy::default())
    }
}

/// Each setting of `config` by its name (its long option: the file key for `[core]`,
/// `health-hold` for `hold` in `[health]`) with the value the log shows, `config-file` first
/// (the log line and the D-Bus `Configuration` property).
#[must_use]
pub fn pairs(config: &Config) -> Vec<(&'static str, String)> {
    let file = config
        .config_file
        .as_ref()
        .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string());
    std::iter::once(("config-file", file))
        .chain(
            SETTINGS
                .iter()
                .map(|setting| (setting.option, setting.shown(config).into_owned())),
        )
        .collect()
}

impl fmt::Display for Config {
    /// One line of `key=value` with the file's key names, for the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut separator = "";
        pairs(self).iter().try_for_each(|(key, value)| {
            write!(f, "{separator}{key}={value}")?;
            separator = " ";
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
