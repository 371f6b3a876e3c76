//! The configuration file (`/etc/mptcpd/mptcpd.conf`, `--config FILE`): read only if it is a
//! regular file (not a link, FIFO or device: opened without blocking or following links) that
//! nobody else may write, then parsed as the C daemon's ELL settings format
//! (`[core]` with `key=value` lines, `#` comments).

use std::{
    fs::OpenOptions,
    io,
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::Path,
};

use mptcpd_netmon::InterfacePattern;

use super::{
    ConfigError, LineProblem,
    policy::{INTERFACE_SECTION, POLICY_SECTION, Policy},
    settings::{FileSettings, SETTINGS},
};

/// What the file says: the settings table's sections (`[core]`, `[health]`) and its policy
/// sections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FileContents {
    /// `[core]` and `[health]`.
    pub(crate) core: FileSettings,
    /// `[policy]` and `[interface PATTERN]`.
    pub(crate) policy: Policy,
}

/// The section a line is in.
enum Group {
    /// A section of the settings table (`[core]`, `[health]`).
    Settings(String),
    Policy,
    Interface(InterfacePattern),
    /// Another one: ignored, as by the C daemon.
    Other,
}

/// Reads and parses `path`. `Ok(None)` when it does not exist and is not `required`.
pub(super) fn read(path: &Path, required: bool) -> Result<Option<FileContents>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    // O_NONBLOCK: opening a FIFO would wait for a writer (forever, and on the daemon's only
    // thread); O_NOFOLLOW: the file named is the file checked, not a link's target.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ConfigError::SymbolicLink {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(read_error(e)),
    };
    // Checked on the open file, so that it cannot be swapped between check and read.
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(ConfigError::NotRegular {
            path: path.to_owned(),
        });
    }
    if meta.permissions().mode() & 0o002 != 0 {
        return Err(ConfigError::WorldWritable {
            path: path.to_owned(),
        });
    }
    let text = io::read_to_string(&mut file).map_err(read_error)?;
    parse_text(&text, path).map(Some)
}

/// Parses the text of the file at `path` (named in errors).
pub(super) fn parse_text(text: &str, path: &Path) -> Result<FileContents, ConfigError> {
    parse(text).map_err(|(line, problem)| ConfigError::Line {
        path: path.to_owned(),
        line,
        problem,
    })
}

/// Parses the file's text; an error carries the 1-based line number. A key given twice takes
/// its last value.
pub(super) fn parse(text: &str) -> Result<FileContents, (usize, LineProblem)> {
    let mut contents = FileContents::default();
    let mut group: Option<Group> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |problem| (index + 1, problem);
        if let Some(name) = line.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or(at(LineProblem::Syntax))?;
            group = Some(self::group(name.trim()).map_err(at)?);
            continue;
        }
        let (key, value) = line.split_once('=').ok_or(at(LineProblem::Syntax))?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(at(LineProblem::Syntax));
        }
        match &group {
            None => return Err(at(LineProblem::Ungrouped(key.to_owned()))),
            Some(Group::Settings(section)) => {
                contents.core.set(section, key, value).map_err(at)?;
            }
            Some(Group::Policy) => contents.policy.set(key, value).map_err(at)?,
            Some(Group::Interface(pattern)) => {
                contents
                    .policy
                    .set_interface(pattern, key, value)
                    .map_err(at)?;
            }
            Some(Group::Other) => {}
        }
    }
    Ok(contents)
}

/// The section called `name`; an `[interface PATTERN]` whose pattern is wrong is an error.
fn group(name: &str) -> Result<Group, LineProblem> {
    if SETTINGS.iter().any(|s| s.section == name) {
        return Ok(Group::Settings(name.to_owned()));
    }
    if name == POLICY_SECTION {
        return Ok(Group::Policy);
    }
    let Some(pattern) = name
        .strip_prefix(INTERFACE_SECTION)
        .or_else(|| (name == INTERFACE_SECTION.trim_end()).then_some(""))
    else {
        return Ok(Group::Other);
    };
    let section = || name.to_owned();
    if pattern.contains(['[', ']']) || !pattern.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        // ELL (the C daemon's parser) refuses such a section name, and with it the whole file.
        return Err(LineProblem::BadSection {
            section: section(),
            message: "a section name holds printable characters but no [ or ] (use * and ?, \
                      or list such a pattern in interfaces=)"
                .to_owned(),
        });
    }
    pattern
        .trim()
        .parse()
        .map(Group::Interface)
        .map_err(|e: mptcpd_netmon::PolicyError| LineProblem::BadSection {
            section: section(),
            message: e.to_string(),
        })
}

/// A key `section` does not have; where it belongs if it is another section's setting under
/// its command-line name (`health-hold` in `[core]`).
pub(super) fn unknown_key(section: &str, key: &str) -> LineProblem {
    match SETTINGS.iter().find(|s| s.option == key && s.key != key) {
        Some(setting) => LineProblem::Moved {
            key: key.to_owned(),
            section: setting.section,
            new_key: setting.key,
        },
        None => LineProblem::UnknownKey {
            section: section.to_owned(),
            key: key.to_owned(),
        },
    }
}

/// `value`, unless it is empty.
pub(super) fn non_empty<'v>(key: &str, value: &'v str) -> Result<&'v str, LineProblem> {
    if value.is_empty() {
        Err(LineProblem::EmptyValue(key.to_owned()))
    } else {
        Ok(value)
    }
}

/// `value` parsed by `parse`; an error names `key`.
pub(super) fn typed<T, E: std::fmt::Display>(
    key: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, LineProblem> {
    parse(value).map_err(|e| LineProblem::BadValue {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// ELL's boolean words.
pub(super) fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("expected true or false, not {value:?}")),
    }
}

/// An address and port to listen on (`127.0.0.1:9477`, `[::1]:9477`); no host names.
pub(super) fn parse_socket_address(value: &str) -> Result<std::net::SocketAddr, String> {
    value.parse().map_err(|_| {
        format!("expected ADDR:PORT such as 127.0.0.1:9477 or [::1]:9477, not {value:?}")
    })
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt as _, path::PathBuf};

    use mptcp_pm::EndpointFlags;

    use super::{FileSettings, parse, read};
    use mptcpd_netmon::NotifyFlags;

    use crate::config::{ConfigError, LineProblem, LogTarget, PluginList};

    /// Debian's mptcpd 0.12 `/etc/mptcpd/mptcpd.conf`, comments shortened.
    const DEBIAN: &str = "\
# SPDX-License-Identifier: BSD-3-Clause

[core]
#   stderr  - standard unbuffered I/O stream
log=stderr

plugin-dir=/usr/lib/x86_64-linux-gnu/mptcpd

path-manager=addr_adv

#   signal    (do not use with the \"fullmesh\" flag)
# addr-flags=subflow

# notify-flags=existing,skip_link_local,skip_loopback

# load-plugins=addr_adv,sspi
";

    #[test]
    fn the_c_daemons_file_parses() {
        assert_eq!(
            parse(DEBIAN).map(|contents| contents.core),
            Ok(FileSettings {
                log: Some(LogTarget::Stderr),
                plugin_dir: Some(PathBuf::from("/usr/lib/x86_64-linux-gnu/mptcpd")),
                path_manager: Some("addr_adv".to_owned()),
                ..FileSettings::default()
            })
        );
    }

    #[test]
    fn every_key_is_read() {
        let text = "[core]\n\
            debug=true\n\
            log = journal\n\
            plugin-dir=/p\n\
            path-manager=sspi\n\
            load-plugins=sspi,addr_adv\n\
            addr-flags=subflow,backup\n\
            max-subflows=4\n\
            notify-flags=existing,check_route\n\
            bpf-pin-dir=/sys/fs/bpf/x\n\
            observe-cgroup=/sys/fs/cgroup/x\n\
            state-dir=/run/x\n\
            metrics-address=[::1]:9477\n\
            [health]\n\
            hold=20\n\
            retrans-percent=15\n\
            rtt-percent=400\n\
            dead-rtos=4\n\
            min-peers=2\n\
            min-share=60\n\
            reprobe-max=900\n";
        assert_eq!(
            parse(text).map(|contents| contents.core),
            Ok(FileSettings {
                debug: Some(true),
                log: Some(LogTarget::Journal),
                plugin_dir: Some("/p".into()),
                path_manager: Some("sspi".to_owned()),
                load_plugins: Some(PluginList(vec!["sspi".to_owned(), "addr_adv".to_owned()])),
                addr_flags: Some(EndpointFlags::SUBFLOW | EndpointFlags::BACKUP),
                max_subflows: Some(4),
                health_hold: Some(20),
                health_retrans_percent: Some(15),
                health_rtt_percent: Some(400),
                health_dead_rtos: Some(4),
                health_min_peers: Some(2),
                health_min_share: Some(60),
                health_reprobe_max: Some(900),
                notify_flags: Some(NotifyFlags::EXISTING | NotifyFlags::CHECK_ROUTE),
                bpf_pin_dir: Some("/sys/fs/bpf/x".into()),
                observe_cgroup: Some("/sys/fs/cgroup/x".into()),
                state_dir: Some("/run/x".into()),
                metrics_address: Some("[::1]:9477".parse().unwrap()),
                dbus_group: None,
            })
        );
    }

    #[test]
    fn other_groups_are_ignored_and_the_last_value_wins() {
        let text = "[other]\nlog=bogus\nwhatever=1\n[core]\nlog=null\nlog=syslog\n\
                    addr-flags=\n";
        assert_eq!(
            parse(text).map(|contents| contents.core),
            Ok(FileSettings {
                log: Some(LogTarget::Syslog),
                addr_flags: Some(EndpointFlags::empty()),
                ..FileSettings::default()
            })
        );
    }

    #[test]
    fn each_bad_line_is_named() {
        let cases: [(&str, usize, LineProblem); 10] = [
            ("log=stderr\n", 1, LineProblem::Ungrouped("log".to_owned())),
            ("[core]\nlog\n", 2, LineProblem::Syntax),
            ("[core\n", 1, LineProblem::Syntax),
            ("[core]\n=x\n", 2, LineProblem::Syntax),
            (
                "[core]\n\nlogg=stderr\n",
                3,
                LineProblem::UnknownKey {
                    section: "core".to_owned(),
                    key: "logg".to_owned(),
                },
            ),
            (
                "[health]\nhold=3\nholdd=3\n",
                3,
                LineProblem::UnknownKey {
                    section: "health".to_owned(),
                    key: "holdd".to_owned(),
                },
            ),
            (
                "[core]\nhealth-hold=3\n",
                2,
                LineProblem::Moved {
                    key: "health-hold".to_owned(),
                    section: "health",
                    new_key: "hold",
                },
            ),
            (
                "[core]\nplugin-dir=\n",
                2,
                LineProblem::EmptyValue("plugin-dir".to_owned()),
            ),
            (
                "[core]\nload-plugins= \n",
                2,
                LineProblem::EmptyValue("load-plugins".to_owned()),
            ),
            (
                "[core]\npath-manager=\n",
                2,
                LineProblem::EmptyValue("path-manager".to_owned()),
            ),
        ];
        for (text, line, problem) in cases {
            assert_eq!(parse(text), Err((line, problem)), "{text:?}");
        }
    }

    #[test]
    fn bad_values_name_the_key_and_the_value() {
        for (text, key, word) in [
            ("[core]\nlog=syslogd\n", "log", "syslogd"),
            ("[core]\naddr-flags=subflow,bakup\n", "addr-flags", "bakup"),
            ("[core]\nnotify-flags=existing,x\n", "notify-flags", "\"x\""),
            ("[core]\ndebug=maybe\n", "debug", "maybe"),
            ("[health]\nhold=-1\n", "hold", "invalid digit"),
            ("[health]\nmin-share=4294967296\n", "min-share", "too large"),
            ("[core]\nload-plugins=a,,b\n", "load-plugins", "a,,b"),
            (
                "[core]\nmetrics-address=localhost:9477\n",
                "metrics-address",
                "localhost:9477",
            ),
            (
                "[core]\nmetrics-address=127.0.0.1\n",
                "metrics-address",
                "ADDR:PORT",
            ),
        ] {
            let Err((2, LineProblem::BadValue { key: k, message })) = parse(text) else {
                panic!("{text:?}: {:?}", parse(text));
            };
            assert_eq!(k, key);
            assert!(message.contains(word), "{message}");
        }
    }

    #[test]
    fn a_missing_file_is_fine_unless_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.conf");
        assert!(read(&path, false).unwrap().is_none());
        let err = read(&path, true).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains("absent.conf"), "{err}");
    }

    #[test]
    fn world_writable_files_and_non_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mptcpd.conf");
        fs::write(&path, "[core]\nlog=null\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            read(&path, true).unwrap().unwrap().core.log,
            Some(LogTarget::Null)
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let err = read(&path, false).unwrap_err();
        assert!(matches!(err, ConfigError::WorldWritable { .. }), "{err}");
        assert!(err.to_string().contains("world-writable"), "{err}");
        let err = read(dir.path(), true).unwrap_err();
        assert!(matches!(err, ConfigError::NotRegular { .. }), "{err}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mptcpd.conf");
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // A blocking open would never return: nobody opens the FIFO for writing.
        let err = read(&path, false).unwrap_err();
        assert!(matches!(err, ConfigError::NotRegular { .. }), "{err}");
    }

    #[test]
    fn a_symbolic_link_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.conf");
        fs::write(&target, "[core]\nlog=null\n").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("mptcpd.conf");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = read(&link, true).unwrap_err();
        assert!(matches!(err, ConfigError::SymbolicLink { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "config file {} is a symbolic link: refused (name the file it points to)",
                link.display()
            )
        );
    }

    #[test]
    fn a_bad_line_reads_as_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mptcpd.conf");
        fs::write(&path, "[core]\n# comment\nlog=loud\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let message = read(&path, true).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}:3: key \"log\": unknown log target \"loud\" \
                 (expected stderr, syslog, journal or null)",
                path.display()
            )
        );
    }
}
