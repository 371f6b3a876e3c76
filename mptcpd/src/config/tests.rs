//! The command line as the C daemon takes it, and loading end to end.

use std::{ffi::OsStr, fs, os::unix::fs::PermissionsExt as _, path::Path};

use clap::{CommandFactory as _, Parser as _, error::ErrorKind};

use mptcp_pm::EndpointFlags;

use super::{Config, ConfigError, LogTarget, SECTION, SETTINGS};
use mptcpd_netmon::NotifyFlags;

use crate::cli::Args;

fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
    Args::try_parse_from(std::iter::once("mptcpd").chain(argv.iter().copied()))
}

/// The first line of a usage error, as `main` prints it.
fn usage_error(argv: &[&str]) -> String {
    let err = parse(argv).unwrap_err();
    assert_eq!(err.exit_code(), 2, "clap usage error for {argv:?}");
    assert!(
        !matches!(
            err.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ),
        "{argv:?}"
    );
    err.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("mptcpd.conf");
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

#[test]
fn every_c_option_parses_in_both_spellings() {
    let args = parse(&[
        "-d",
        "-l",
        "syslog",
        "--plugin-dir=/p",
        "--path-manager",
        "sspi",
        "--load-plugins=sspi",
        "--addr-flags",
        "subflow,fullmesh",
        "--notify-flags=existing,skip_link_local,skip_loopback,check_route",
        "--config=/c",
    ])
    .unwrap();
    assert_eq!(args.debug, Some(true));
    assert_eq!(args.log, Some(LogTarget::Syslog));
    assert_eq!(args.plugin_dir.as_deref(), Some(Path::new("/p")));
    assert_eq!(args.path_manager.as_deref(), Some("sspi"));
    assert_eq!(
        args.addr_flags,
        Some(EndpointFlags::SUBFLOW | EndpointFlags::FULLMESH)
    );
    assert_eq!(args.notify_flags, Some(NotifyFlags::all()));
    assert_eq!(args.config.as_deref(), Some(Path::new("/c")));
    for log in ["stderr", "syslog", "journal", "null"] {
        assert_eq!(
            parse(&["--log", log]).unwrap().log.unwrap().to_string(),
            log
        );
    }
}

#[test]
fn a_repeated_option_takes_its_last_value() {
    let args = parse(&[
        "--log=null",
        "-l",
        "stderr",
        "--addr-flags=signal",
        "--addr-flags=backup",
    ])
    .unwrap();
    assert_eq!(args.log, Some(LogTarget::Stderr));
    assert_eq!(args.addr_flags, Some(EndpointFlags::BACKUP));
    assert_eq!(parse(&["-d", "-d"]).unwrap().debug, Some(true));
}

#[test]
fn bad_usage_is_one_clear_line() {
    let cases: [(&[&str], &str); 13] = [
        (&["--bogus"], "--bogus"),
        (&["--log=loud"], "loud"),
        (&["--log="], "--log"),
        (&["--plugin-dir="], "--plugin-dir"),
        (&["--path-manager="], "--path-manager"),
        (&["--load-plugins="], "empty plugin list"),
        (&["--load-plugins=a,,b"], "a,,b"),
        (&["--addr-flags=subflow,bakup"], "bakup"),
        (&["--addr-flags=signal,fullmesh"], "signal and fullmesh"),
        (&["--notify-flags=existing,bogus"], "bogus"),
        (&["--config="], "--config"),
        (&["--metrics-address=localhost:9477"], "localhost:9477"),
        (&["--metrics-address="], "ADDR:PORT"),
    ];
    for (argv, needle) in cases {
        let line = usage_error(argv);
        assert!(line.contains(needle), "{argv:?}: {line}");
    }
}

#[test]
fn help_usage_and_version_are_not_errors() {
    for argv in [&["--help"][..], &["-h"], &["-?"]] {
        let err = parse(argv).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DisplayHelp, "{argv:?}");
        assert!(err.to_string().contains("--addr-flags"), "{argv:?}");
    }
    for argv in [&["--version"][..], &["-V"]] {
        assert_eq!(parse(argv).unwrap_err().kind(), ErrorKind::DisplayVersion);
    }
    assert!(parse(&["--usage"]).unwrap().usage);
}

#[test]
fn load_merges_the_named_file_under_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[core]\nlog=null\npath-manager=sspi\naddr-flags=subflow\nnotify-flags=existing\n",
    );
    let config_arg = format!("--config={}", path.display());
    let config =
        Config::load(&parse(&[&config_arg, "--notify-flags=skip_loopback"]).unwrap()).unwrap();
    assert_eq!(config.log, LogTarget::Null);
    assert_eq!(config.path_manager.as_deref(), Some("sspi"));
    assert_eq!(config.addr_flags, EndpointFlags::SUBFLOW);
    assert_eq!(config.notify_flags, NotifyFlags::SKIP_LOOPBACK);
    assert_eq!(config.config_file.as_deref(), Some(path.as_path()));
    let line = config.to_string();
    assert!(line.contains("path-manager=sspi"), "{line}");
    assert!(line.contains("addr-flags=subflow "), "{line}");
    assert!(line.contains("notify-flags=skip_loopback "), "{line}");
    assert!(line.contains("load-plugins=(all)"), "{line}");
}

#[test]
fn load_refuses_a_missing_named_file_and_a_world_writable_plugin_dir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("--config={}", dir.path().join("nope.conf").display());
    let err = Config::load(&parse(&[&missing]).unwrap()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope.conf"), "{err}");

    let plugins = dir.path().join("plugins");
    fs::create_dir(&plugins).unwrap();
    fs::set_permissions(&plugins, fs::Permissions::from_mode(0o777)).unwrap();
    let path = write_config(
        dir.path(),
        &format!("[core]\nplugin-dir={}\n", plugins.display()),
    );
    let named = format!("--config={}", path.display());
    let err = Config::load(&parse(&[&named]).unwrap()).unwrap_err();
    assert!(matches!(err, ConfigError::PluginDir { .. }), "{err}");
    assert_eq!(err.to_string().lines().count(), 1, "{err}");
}

#[test]
fn the_shipped_config_file_parses_to_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), include_str!("../../../dist/mptcpd.conf"));
    let named = format!("--config={}", path.display());
    let config = Config::load(&parse(&[&named, "--log=stderr"]).unwrap()).unwrap();
    assert_eq!(
        config,
        Config {
            config_file: Some(path),
            log: LogTarget::Stderr,
            ..Config::default()
        }
    );
}

#[test]
fn from_text_reads_as_load_does() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[core]\nlog=null\npath-manager=sspi\nnotify-flags=existing\n";
    let path = write_config(dir.path(), text);
    let named = format!("--config={}", path.display());
    let args = parse(&[&named, "--addr-flags=subflow"]).unwrap();
    assert_eq!(
        Config::from_text(&args, Some(text)).unwrap(),
        Config::load(&args).unwrap()
    );
    let err = Config::from_text(&args, Some("[core]\nlog=loud\n")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2: ", path.display())),
        "{err}"
    );
    assert_eq!(
        Config::from_text(&parse(&[]).unwrap(), None).unwrap(),
        Config::default()
    );
}

/// A setting is one entry of the table: each is read alike from the file and the command line,
/// shows in the log line as written, has a reload decision, and is documented in the shipped
/// file.
#[test]
fn every_setting_round_trips_and_has_a_reload_decision() {
    Args::command().debug_assert();
    let default = Config::default();
    let shipped = include_str!("../../../dist/mptcpd.conf");
    for setting in SETTINGS {
        let (section, key, example) = (setting.section, setting.key, setting.example);
        let name = setting.option;
        let written = Some(OsStr::new(example));
        assert_ne!(
            setting.text(&default).as_deref(),
            written,
            "{key}: example is the default"
        );

        let file = format!("[{section}]\n{key}={example}\n");
        let from_file = Config::from_text(&parse(&[]).unwrap(), Some(&file)).unwrap();
        assert_eq!(setting.text(&from_file).as_deref(), written, "{file}");
        let line = format!("{from_file} ");
        assert!(line.contains(&format!(" {name}={example} ")), "{line}");
        if section == SECTION {
            assert_eq!(name, key, "a [{SECTION}] key is its own option");
        } else {
            assert_eq!(name, format!("{section}-{key}"), "--SECTION-KEY");
        }

        let option = match setting.switch {
            Some(word) => {
                assert_eq!(
                    word, example,
                    "{key}: a switch's example is what it stands for"
                );
                format!("--{name}")
            }
            None => format!("--{name}={example}"),
        };
        let from_options = Config::from_text(&parse(&[&option]).unwrap(), None).unwrap();
        let without_file = Config {
            config_file: None,
            ..from_file.clone()
        };
        assert_eq!(from_options, without_file, "{option}");

        let mut effective = from_file.clone();
        match setting.reload(&default, &mut effective) {
            None => assert_eq!(effective, from_file, "{key} applies at once"),
            Some(waits) => {
                assert!(waits.starts_with(name), "{waits}");
                assert_ne!(
                    setting.text(&effective).as_deref(),
                    written,
                    "{waits} waits"
                );
            }
        }

        assert!(
            shipped.contains(&format!("\n# {key}=")),
            "dist/mptcpd.conf documents {key}"
        );
        if section != SECTION {
            assert!(
                shipped.contains(&format!("\n[{section}]\n")),
                "dist/mptcpd.conf names [{section}]"
            );
        }
    }
}
