//! The plugin host's settings, from the daemon's configuration.

use std::path::PathBuf;

use mptcpd_plugin::HealthConfig;

use crate::{config::Config, plugins::PluginSettings};

/// `state_file` names the endpoints this daemon added (one per network namespace).
pub(super) fn settings(config: &Config, state_file: PathBuf) -> PluginSettings {
    PluginSettings {
        path_manager: config.path_manager.clone(),
        load_plugins: config.load_plugins.clone().map(|list| list.0),
        addr_flags: config.addr_flags,
        max_subflows: config.max_subflows,
        health: HealthConfig {
            hold_secs: config.health_hold,
            retrans_percent: config.health_retrans_percent,
            rtt_percent: config.health_rtt_percent,
            dead_rtos: config.health_dead_rtos,
            min_peers: config.health_min_peers,
            min_share_percent: config.health_min_share,
            reprobe_max_secs: config.health_reprobe_max,
        },
        policy: config.policy.endpoints.clone(),
        state_file: Some(state_file),
    }
}
