//! Precedence (command line, then file, then defaults) and the plugin-directory check.

use std::{fs, io, os::unix::fs::PermissionsExt as _, path::Path, path::PathBuf};

use super::{
    Config, ConfigError, DEFAULT_PLUGIN_DIR, DEFAULT_STATE_DIR, LogTarget, PluginDirProblem,
    file::FileSettings,
};
use mptcpd_bpf::DEFAULT_PIN_DIR;

use crate::cli::Args;

/// Merges the command line over the file over the defaults. `file` is what was read from
/// `config_file`; `default_log` applies when neither names a log target.
pub(super) fn merge(
    args: &Args,
    file: Option<&FileSettings>,
    config_file: Option<PathBuf>,
    default_log: LogTarget,
) -> Config {
    // Exhaustive, so that a new option or key cannot be left out of the merge.
    let Args {
        debug,
        log,
        plugin_dir,
        path_manager,
        load_plugins,
        addr_flags,
        notify_flags,
        config: _,
        bpf_pin_dir,
        observe_cgroup,
        state_dir,
        usage: _,
        help: _,
    } = args;
    let default = FileSettings::default();
    let FileSettings {
        debug: file_debug,
        log: file_log,
        plugin_dir: file_plugin_dir,
        path_manager: file_path_manager,
        load_plugins: file_load_plugins,
        addr_flags: file_addr_flags,
        notify_flags: file_notify_flags,
        bpf_pin_dir: file_bpf_pin_dir,
        observe_cgroup: file_observe_cgroup,
        state_dir: file_state_dir,
    } = file.unwrap_or(&default);
    Config {
        // `-d` can only turn debugging on; the file may turn it on too.
        debug: *debug || file_debug.unwrap_or(false),
        log: log.or(*file_log).unwrap_or(default_log),
        plugin_dir: plugin_dir
            .as_ref()
            .or(file_plugin_dir.as_ref())
            .cloned()
            .unwrap_or_else(|| DEFAULT_PLUGIN_DIR.into()),
        path_manager: path_manager
            .as_ref()
            .or(file_path_manager.as_ref())
            .cloned(),
        load_plugins: load_plugins
            .as_ref()
            .or(file_load_plugins.as_ref())
            .map(|list| list.0.clone()),
        // Unlike the C daemon's, an empty list on the command line clears the file's flags.
        addr_flags: addr_flags.or(*file_addr_flags).unwrap_or_default(),
        notify_flags: notify_flags.or(*file_notify_flags).unwrap_or_default(),
        bpf_pin_dir: bpf_pin_dir
            .as_ref()
            .or(file_bpf_pin_dir.as_ref())
            .cloned()
            .unwrap_or_else(|| DEFAULT_PIN_DIR.into()),
        observe_cgroup: observe_cgroup
            .as_ref()
            .or(file_observe_cgroup.as_ref())
            .cloned(),
        state_dir: state_dir
            .as_ref()
            .or(file_state_dir.as_ref())
            .cloned()
            .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
        config_file,
    }
}

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

    use super::{check_plugin_dir, merge};
    use crate::{
        cli::Args,
        config::{AddrFlags, Config, ConfigError, LogTarget, PluginDirProblem, file::FileSettings},
        netmon::NotifyFlags,
    };

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
            addr_flags: Some(AddrFlags::SUBFLOW),
            notify_flags: Some(NotifyFlags::EXISTING),
            bpf_pin_dir: Some("/sys/fs/bpf/file".into()),
            observe_cgroup: Some("/sys/fs/cgroup/file".into()),
            state_dir: Some("/run/file".into()),
        }
    }

    #[test]
    fn defaults_without_file_or_options() {
        let config = merge(&args(&[]), None, None, LogTarget::Journal);
        assert_eq!(
            config,
            Config {
                debug: false,
                log: LogTarget::Journal,
                plugin_dir: "/usr/lib/mptcpd".into(),
                path_manager: None,
                load_plugins: None,
                addr_flags: AddrFlags::empty(),
                notify_flags: NotifyFlags::empty(),
                bpf_pin_dir: "/sys/fs/bpf/mptcpd".into(),
                observe_cgroup: None,
                state_dir: "/run/mptcpd".into(),
                config_file: None,
            }
        );
        assert_eq!(
            Config::default(),
            merge(&args(&[]), None, None, LogTarget::Stderr)
        );
    }

    #[test]
    fn the_file_overrides_the_defaults() {
        let path = PathBuf::from("/etc/mptcpd/mptcpd.conf");
        let config = merge(
            &args(&[]),
            Some(&file()),
            Some(path.clone()),
            LogTarget::Stderr,
        );
        assert_eq!(
            config,
            Config {
                debug: false,
                log: LogTarget::Syslog,
                plugin_dir: "/file/plugins".into(),
                path_manager: Some("sspi".to_owned()),
                load_plugins: Some(vec!["sspi".to_owned()]),
                addr_flags: AddrFlags::SUBFLOW,
                notify_flags: NotifyFlags::EXISTING,
                bpf_pin_dir: "/sys/fs/bpf/file".into(),
                observe_cgroup: Some("/sys/fs/cgroup/file".into()),
                state_dir: "/run/file".into(),
                config_file: Some(path),
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
            "--notify-flags=skip_loopback",
            "--bpf-pin-dir=/sys/fs/bpf/cli",
            "--observe-cgroup=/sys/fs/cgroup/cli",
            "--state-dir=/run/cli",
        ]);
        let config = merge(&argv, Some(&file()), None, LogTarget::Stderr);
        assert_eq!(
            config,
            Config {
                debug: true,
                log: LogTarget::Null,
                plugin_dir: "/cli/plugins".into(),
                path_manager: Some("addr_adv".to_owned()),
                load_plugins: Some(vec!["addr_adv".to_owned(), "sspi".to_owned()]),
                addr_flags: AddrFlags::SIGNAL | AddrFlags::BACKUP,
                notify_flags: NotifyFlags::SKIP_LOOPBACK,
                bpf_pin_dir: "/sys/fs/bpf/cli".into(),
                observe_cgroup: Some("/sys/fs/cgroup/cli".into()),
                state_dir: "/run/cli".into(),
                config_file: None,
            }
        );
    }

    #[test]
    fn empty_flag_lists_on_the_command_line_clear_the_files() {
        let config = merge(
            &args(&["--addr-flags=", "--notify-flags", ""]),
            Some(&file()),
            None,
            LogTarget::Stderr,
        );
        assert_eq!(config.addr_flags, AddrFlags::empty());
        assert_eq!(config.notify_flags, NotifyFlags::empty());
    }

    #[test]
    fn the_file_can_turn_debugging_on() {
        let debug_file = FileSettings {
            debug: Some(true),
            ..FileSettings::default()
        };
        assert!(merge(&args(&[]), Some(&debug_file), None, LogTarget::Stderr).debug);
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
