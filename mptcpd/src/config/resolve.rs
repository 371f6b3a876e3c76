//! The plugin-directory check, and the tests of precedence (command line, then file, then
//! defaults: the merge the settings table generates).

use std::{fs, io, os::unix::fs::PermissionsExt as _, path::Path};

use super::{ConfigError, PluginDirProblem};

/// The plugin directory must not be world-writable (as in the C daemon). The built-in plugins
/// need no directory, so a missing one is fine.
pub(super) fn check_plugin_dir(path: &Path) -> Result<(), ConfigError> {
    let problem = match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => PluginDirProblem::Io(e),
        Ok(meta) if !meta.is_dir() => PluginDirProblem::NotDirectory,
        Ok(meta) if meta.permissions().mode() & 0o002 != 0 => PluginDirProblem::WorldWritable,
        Ok(_) => return Ok(()),
    };
    Err(ConfigError::PluginDir {
        path: path.to_owned(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt as _, path::PathBuf};

    use clap::Parser as _;

    use mptcp_pm::EndpointFlags;

    use super::check_plugin_dir;
    use crate::{
        cli::Args,
        config::{
            Config, ConfigError, LogTarget, PluginDirProblem, Policy,
            settings::{FileSettings, merge},
        },
    };
    use mptcpd_netmon::NotifyFlags;
    use mptcpd_plugin::HealthConfig;

    fn args(argv: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("mptcpd").chain(argv.iter().copied())).unwrap()
    }

    fn file() -> FileSettings {
        FileSettings {
            debug: Some(false),
            log: Some(LogTarget::Syslog),
            plugin_dir: Some("/file/plugins".into()),
            path_manager: Some("sspi".to_owned()),
            load_plugins: Some("sspi".parse().unwrap()),
            addr_flags: Some(EndpointFlags::SUBFLOW),
            max_subflows: Some(3),
            health_hold: Some(20),
            health_retrans_percent: Some(15),
            health_rtt_percent: Some(400),
            health_dead_rtos: Some(4),
            health_min_peers: Some(2),
            health_min_share: Some(60),
            health_reprobe_max: Some(600),
            notify_flags: Some(NotifyFlags::EXISTING),
            bpf_pin_dir: Some("/sys/fs/bpf/file".into()),
            observe_cgroup: Some("/sys/fs/cgroup/file".into()),
            state_dir: Some("/run/file".into()),
            metrics_address: Some("127.0.0.1:9477".parse().unwrap()),
            dbus_group: None,
        }
    }

    #[test]
    fn defaults_without_file_or_options() {
        let config = merge(&args(&[]), None, None, Policy::default());
        assert_eq!(
            config,
            Config {
                debug: false,
                log: LogTarget::platform_default(),
                plugin_dir: "/usr/lib/mptcpd".into(),
                path_manager: None,
                load_plugins: None,
                addr_flags: EndpointFlags::empty(),
                max_subflows: None,
                health_hold: HealthConfig::DEFAULT.hold_secs,
                health_retrans_percent: HealthConfig::DEFAULT.retrans_percent,
                health_rtt_percent: HealthConfig::DEFAULT.rtt_percent,
                health_dead_rtos: HealthConfig::DEFAULT.dead_rtos,
                health_min_peers: HealthConfig::DEFAULT.min_peers,
                health_min_share: HealthConfig::DEFAULT.min_share_percent,
                health_reprobe_max: HealthConfig::DEFAULT.reprobe_max_secs,
                notify_flags: NotifyFlags::empty(),
                bpf_pin_dir: "/sys/fs/bpf/mptcpd".into(),
                observe_cgroup: None,
                state_dir: "/run/mptcpd".into(),
                metrics_address: None,
                dbus_group: "mptcpd".to_owned(),
                config_file: None,
                policy: Policy::default(),
            }
        );
        assert_eq!(Config::default(), config);
    }

    #[test]
    fn the_file_overrides_the_defaults() {
        let path = PathBuf::from("/etc/mptcpd/mptcpd.conf");
        let config = merge(
            &args(&[]),
            Some(&file()),
            Some(path.clone()),
            Policy::default(),
        );
        assert_eq!(
            config,
            Config {
                debug: false,
                log: LogTarget::Syslog,
                plugin_dir: "/file/plugins".into(),
                path_manager: Some("sspi".to_owned()),
                load_plugins: Some("sspi".parse().unwrap()),
                addr_flags: EndpointFlags::SUBFLOW,
                max_subflows: Some(3),
                health_hold: 20,
                health_retrans_percent: 15,
                health_rtt_percent: 400,
                health_dead_rtos: 4,
                health_min_peers: 2,
                health_min_share: 60,
                health_reprobe_max: 600,
                notify_flags: NotifyFlags::EXISTING,
                bpf_pin_dir: "/sys/fs/bpf/file".into(),
                observe_cgroup: Some("/sys/fs/cgroup/file".into()),
                state_dir: "/run/file".into(),
                metrics_address: Some("127.0.0.1:9477".parse().unwrap()),
                dbus_group: "mptcpd".to_owned(),
                config_file: Some(path),
                policy: Policy::default(),
            }
        );
    }

    #[test]
    fn the_command_line_overrides_the_file() {
        let argv = args(&[
            "-d",
            "--log=null",
            "--plugin-dir",
            "/cli/plugins",
            "--path-manager=addr_adv",
            "--load-plugins=addr_adv,sspi",
            "--addr-flags=signal,backup",
            "--max-subflows=5",
            "--health-hold=30",
            "--health-retrans-percent=25",
            "--health-rtt-percent=600",
            "--health-dead-rtos=6",
            "--health-min-peers=5",
            "--health-min-share=70",
            "--health-reprobe-max=900",
            "--notify-flags=skip_loopback",
            "--bpf-pin-dir=/sys/fs/bpf/cli",
            "--observe-cgroup=/sys/fs/cgroup/cli",
            "--state-dir=/run/cli",
            "--metrics-address=[::1]:9478",
        ]);
        let config = merge(&argv, Some(&file()), None, Policy::default());
        assert_eq!(
            config,
            Config {
                debug: true,
                log: LogTarget::Null,
                plugin_dir: "/cli/plugins".into(),
                path_manager: Some("addr_adv".to_owned()),
                load_plugins: Some("addr_adv,sspi".parse().unwrap()),
                addr_flags: EndpointFlags::SIGNAL | EndpointFlags::BACKUP,
                max_subflows: Some(5),
                health_hold: 30,
                health_retrans_percent: 25,
                health_rtt_percent: 600,
                health_dead_rtos: 6,
                health_min_peers: 5,
                health_min_share: 70,
                health_reprobe_max: 900,
                notify_flags: NotifyFlags::SKIP_LOOPBACK,
                bpf_pin_dir: "/sys/fs/bpf/cli".into(),
                observe_cgroup: Some("/sys/fs/cgroup/cli".into()),
                state_dir: "/run/cli".into(),
                metrics_address: Some("[::1]:9478".parse().unwrap()),
                dbus_group: "mptcpd".to_owned(),
                config_file: None,
                policy: Policy::default(),
            }
        );
    }

    #[test]
    fn empty_flag_lists_on_the_command_line_clear_the_files() {
        let config = merge(
            &args(&["--addr-flags=", "--notify-flags", ""]),
            Some(&file()),
            None,
            Policy::default(),
        );
        assert_eq!(config.addr_flags, EndpointFlags::empty());
        assert_eq!(config.notify_flags, NotifyFlags::empty());
    }

    #[test]
    fn the_file_can_turn_debugging_on() {
        let debug_file = FileSettings {
            debug: Some(true),
            ..FileSettings::default()
        };
        assert!(merge(&args(&[]), Some(&debug_file), None, Policy::default()).debug);
    }

    #[test]
    fn plugin_dir_must_not_be_world_writable() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        check_plugin_dir(dir.path()).unwrap();
        check_plugin_dir(&dir.path().join("absent")).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_plugin_dir(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::PluginDir {
                    problem: PluginDirProblem::WorldWritable,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("world-writable"), "{err}");
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let err = check_plugin_dir(&file).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::PluginDir {
                    problem: PluginDirProblem::NotDirectory,
                    ..
                }
            ),
            "{err}"
        );
    }
}
