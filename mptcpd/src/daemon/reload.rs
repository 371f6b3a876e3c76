//! SIGHUP: which settings of a re-read configuration take effect at once and which wait for a
//! restart. Pure, so that the split is tested without a daemon.

use crate::config::{Config, SETTINGS};

/// The configuration in force after a reload, and the keys whose new values wait for a
/// restart (they keep their running values until then).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) effective: Config,
    pub(super) need_restart: Vec<&'static str>,
}

/// Takes from `new` what applies at once (`debug`, the notify filters `skip_link_local` and
/// `skip_loopback`, the `[health]` keys, as each setting's `reload` says, and the address
/// policy: the filter through the monitor, the endpoint policy through `addr_adv`'s
/// `reconfigure`); keeps the rest from `current`, naming what differs.
pub(super) fn plan(current: &Config, mut new: Config) -> Plan {
    let need_restart: Vec<_> = SETTINGS
        .iter()
        .filter_map(|setting| setting.reload(current, &mut new))
        .collect();
    Plan {
        effective: new,
        need_restart,
    }
}

#[cfg(test)]
mod tests {
    use mptcp_pm::EndpointFlags;

    use super::{Plan, plan};
    use mptcpd_netmon::NotifyFlags;

    use crate::config::{Config, LogTarget};

    #[test]
    fn nothing_changed_nothing_to_do() {
        let config = Config::default();
        assert_eq!(
            plan(&config, config.clone()),
            Plan {
                effective: config,
                need_restart: vec![]
            }
        );
    }

    #[test]
    fn debug_skip_filters_and_health_apply_at_once() {
        let current = Config {
            notify_flags: NotifyFlags::CHECK_ROUTE,
            ..Config::default()
        };
        let new = Config {
            debug: true,
            notify_flags: NotifyFlags::SKIP_LINK_LOCAL | NotifyFlags::SKIP_LOOPBACK,
            health_hold: 3,
            health_min_peers: 1,
            config_file: Some("/etc/mptcpd/mptcpd.conf".into()),
            ..Config::default()
        };
        let Plan {
            effective,
            need_restart,
        } = plan(&current, new.clone());
        assert!(effective.debug);
        assert_eq!((effective.health_hold, effective.health_min_peers), (3, 1));
        assert_eq!(
            effective.notify_flags,
            NotifyFlags::SKIP_LINK_LOCAL | NotifyFlags::SKIP_LOOPBACK | NotifyFlags::CHECK_ROUTE
        );
        assert_eq!(effective.config_file, new.config_file);
        assert_eq!(need_restart, ["notify-flags (existing, check_route)"]);
    }

    #[test]
    fn the_address_policy_applies_at_once() {
        let current = Config::default();
        let text =
            "[policy]\ninterfaces=eth*\nskip-addresses=ula\n[interface wwan*]\nflags=backup\n";
        let new = Config::from_text(&crate::cli::Args::default(), Some(text)).unwrap();
        let Plan {
            effective,
            need_restart,
        } = plan(&current, new.clone());
        assert_eq!(effective.policy, new.policy);
        assert!(need_restart.is_empty(), "{need_restart:?}");
    }

    #[test]
    fn everything_else_waits_for_a_restart() {
        let current = Config::default();
        let new = Config {
            log: LogTarget::Null,
            plugin_dir: "/elsewhere".into(),
            path_manager: Some("sspi".to_owned()),
            load_plugins: Some("sspi".parse().unwrap()),
            addr_flags: EndpointFlags::SUBFLOW,
            bpf_pin_dir: "/sys/fs/bpf/other".into(),
            observe_cgroup: Some("/sys/fs/cgroup/x".into()),
            state_dir: "/run/other".into(),
            metrics_address: Some("127.0.0.1:9477".parse().unwrap()),
            ..Config::default()
        };
        let Plan {
            effective,
            need_restart,
        } = plan(&current, new);
        assert_eq!(effective, current);
        assert_eq!(
            need_restart,
            [
                "log",
                "plugin-dir",
                "path-manager",
                "load-plugins",
                "addr-flags",
                "bpf-pin-dir",
                "observe-cgroup",
                "state-dir",
                "metrics-address"
            ]
        );
    }
}
