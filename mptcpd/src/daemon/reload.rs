//! SIGHUP: which settings of a re-read configuration take effect at once and which wait for a
//! restart. Pure, so that the split is tested without a daemon.

use crate::{config::Config, netmon::NotifyFlags};

/// Notify flags that only matter when the monitor starts: `existing` selects what the start-up
/// dump reports, `check_route` what the monitor subscribes to.
const START_ONLY_NOTIFY: NotifyFlags = NotifyFlags::EXISTING.union(NotifyFlags::CHECK_ROUTE);

/// The configuration in force after a reload, and the keys whose new values wait for a
/// restart (they keep their running values until then).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) effective: Config,
    pub(super) need_restart: Vec<&'static str>,
}

/// Takes `debug` and the notify filters (`skip_link_local`, `skip_loopback`) from `new`; keeps
/// everything else from `current`, naming what differs.
pub(super) fn plan(current: &Config, new: Config) -> Plan {
    // Exhaustive, so that a new setting gets a decision here.
    let Config {
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
    } = new;
    let mut need_restart = Vec::new();
    let mut keep = |changed: bool, key: &'static str| {
        if changed {
            need_restart.push(key);
        }
    };
    keep(log != current.log, "log");
    keep(plugin_dir != current.plugin_dir, "plugin-dir");
    keep(path_manager != current.path_manager, "path-manager");
    keep(load_plugins != current.load_plugins, "load-plugins");
    keep(addr_flags != current.addr_flags, "addr-flags");
    keep(
        notify_flags & START_ONLY_NOTIFY != current.notify_flags & START_ONLY_NOTIFY,
        "notify-flags (existing, check_route)",
    );
    keep(bpf_pin_dir != current.bpf_pin_dir, "bpf-pin-dir");
    keep(observe_cgroup != current.observe_cgroup, "observe-cgroup");
    keep(state_dir != current.state_dir, "state-dir");
    Plan {
        effective: Config {
            debug,
            notify_flags: notify_flags.difference(START_ONLY_NOTIFY)
                | current.notify_flags.intersection(START_ONLY_NOTIFY),
            config_file,
            ..current.clone()
        },
        need_restart,
    }
}

#[cfg(test)]
mod tests {
    use super::{Plan, plan};
    use crate::{
        config::{AddrFlags, Config, LogTarget},
        netmon::NotifyFlags,
    };

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
    fn debug_and_skip_filters_apply_at_once() {
        let current = Config {
            notify_flags: NotifyFlags::CHECK_ROUTE,
            ..Config::default()
        };
        let new = Config {
            debug: true,
            notify_flags: NotifyFlags::SKIP_LINK_LOCAL | NotifyFlags::SKIP_LOOPBACK,
            config_file: Some("/etc/mptcpd/mptcpd.conf".into()),
            ..Config::default()
        };
        let Plan {
            effective,
            need_restart,
        } = plan(&current, new.clone());
        assert!(effective.debug);
        assert_eq!(
            effective.notify_flags,
            NotifyFlags::SKIP_LINK_LOCAL | NotifyFlags::SKIP_LOOPBACK | NotifyFlags::CHECK_ROUTE
        );
        assert_eq!(effective.config_file, new.config_file);
        assert_eq!(need_restart, ["notify-flags (existing, check_route)"]);
    }

    #[test]
    fn everything_else_waits_for_a_restart() {
        let current = Config::default();
        let new = Config {
            log: LogTarget::Null,
            plugin_dir: "/elsewhere".into(),
            path_manager: Some("sspi".to_owned()),
            load_plugins: Some(vec!["sspi".to_owned()]),
            addr_flags: AddrFlags::SUBFLOW,
            bpf_pin_dir: "/sys/fs/bpf/other".into(),
            observe_cgroup: Some("/sys/fs/cgroup/x".into()),
            state_dir: "/run/other".into(),
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
                "state-dir"
            ]
        );
    }
}
