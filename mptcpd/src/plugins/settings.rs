//! What the host is configured with (filled from `mptcpd::config` by the daemon).

use std::path::PathBuf;

use mptcpd_plugin::{EndpointFlags, EndpointPolicy, HealthConfig};

/// The plugin-related settings: `--path-manager`, `--load-plugins`, `--addr-flags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// The default plugin's name; `None`: the loaded plugin with the best priority.
    pub path_manager: Option<String>,
    /// The plugins to load; `None`: every registered plugin.
    pub load_plugins: Option<Vec<String>>,
    /// Flags of the endpoints `addr_adv` adds.
    pub addr_flags: EndpointFlags,
    /// Most subflows `mesh` opens per connection; `None`: the kernel's subflow limit.
    pub max_subflows: Option<u32>,
    /// The `health` plugin's thresholds.
    pub health: HealthConfig,
    /// Flags per interface and the ranking under the endpoint limit (`addr_adv`).
    pub policy: EndpointPolicy,
    /// The state file naming the endpoints this daemon added; `None`: remembered in memory
    /// only (nothing is adopted after a restart).
    pub state_file: Option<PathBuf>,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            path_manager: None,
            load_plugins: None,
            addr_flags: EndpointFlags::empty(),
            max_subflows: None,
            health: HealthConfig::DEFAULT,
            policy: EndpointPolicy::default(),
            state_file: None,
        }
    }
}
