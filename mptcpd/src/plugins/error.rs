//! Why the plugin host could not start.

/// A plugin-host start-up failure; each names its cause in one line.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A name in `--load-plugins` or `--path-manager` that no registered plugin has.
    #[error("unknown plugin {name:?} (known plugins: {known})")]
    UnknownPlugin {
        /// The name asked for.
        name: String,
        /// The registered plugins' names, comma separated.
        known: String,
    },
    /// `--path-manager` names a plugin that `--load-plugins` leaves out.
    #[error("path manager {0:?} is not among the loaded plugins")]
    DefaultNotLoaded(String),
    /// `--load-plugins` with no name.
    #[error("no plugin to load")]
    NoPlugin,
    /// The kernel's endpoints could not be read to resynchronise.
    #[error("reading the kernel's endpoints")]
    Dump(#[source] mptcpd_plugin::PmError),
}
