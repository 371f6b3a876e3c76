//! The plugin host's settings, from the daemon's configuration.

use std::{os::unix::fs::MetadataExt as _, path::PathBuf};

use crate::{
    config::Config,
    plugins::{PluginSettings, api::EndpointFlags},
    pm::wire,
};

/// Where this daemon remembers the endpoints it added: one file per network namespace (named
/// by the namespace's inode), since a daemon runs per namespace and endpoints are per namespace.
fn state_file() -> PathBuf {
    let netns = std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino());
    PathBuf::from(format!("/run/mptcpd/endpoints.net{netns}"))
}

pub(super) fn settings(config: &Config) -> PluginSettings {
    PluginSettings {
        path_manager: config.path_manager.clone(),
        load_plugins: config.load_plugins.clone(),
        addr_flags: EndpointFlags::from_bits_retain(
            wire::EndpointFlags::from(config.addr_flags).bits(),
        ),
        state_file: Some(state_file()),
    }
}
