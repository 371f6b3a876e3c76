//! What a reload changed in the `[health]` settings, for the one info line that says so.

use mptcpd_plugin::HealthConfig;

/// Each setting that differs, as `key old -> new` with the file's key names.
#[must_use]
pub(crate) fn changes(old: &HealthConfig, new: &HealthConfig) -> Vec<String> {
    let HealthConfig {
        hold_secs,
        retrans_percent,
        rtt_percent,
        dead_rtos,
        min_peers,
        min_share_percent,
        reprobe_max_secs,
    } = *new;
    [
        ("hold", old.hold_secs, hold_secs, "s"),
        ("retrans-percent", old.retrans_percent, retrans_percent, "%"),
        ("rtt-percent", old.rtt_percent, rtt_percent, "%"),
        ("dead-rtos", old.dead_rtos, dead_rtos, ""),
        ("min-peers", old.min_peers, min_peers, ""),
        ("min-share", old.min_share_percent, min_share_percent, "%"),
        ("reprobe-max", old.reprobe_max_secs, reprobe_max_secs, "s"),
    ]
    .into_iter()
    .filter(|(_, old, new, _)| old != new)
    .map(|(key, old, new, unit)| format!("{key} {old}{unit} -> {new}{unit}"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_changed_only() {
        let old = HealthConfig::DEFAULT;
        assert_eq!(changes(&old, &old), Vec::<String>::new());
        let new = HealthConfig {
            hold_secs: 2,
            min_peers: 1,
            ..old
        };
        assert_eq!(changes(&old, &new), ["hold 10s -> 2s", "min-peers 3 -> 1"]);
    }
}
