//! A [`Config`] written back as a config file and as a command line, so that the `config`
//! and `cli` targets can check that each front end reads back what it means, and that both
//! mean the same.

use std::{ffi::OsString, fmt::Write as _, os::unix::ffi::OsStrExt as _};

use clap::Parser as _;
use mptcpd::{cli::Args, config::Config};

/// The settings of `config` by their file keys (the options' names too).
fn settings(config: &Config) -> Vec<(&'static str, OsString)> {
    // Exhaustive, so that a new setting cannot be left out.
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
        config_file: _,
    } = config;
    let mut settings = vec![
        ("debug", debug.to_string().into()),
        ("log", log.to_string().into()),
        ("plugin-dir", plugin_dir.into()),
        ("addr-flags", addr_flags.to_string().into()),
        ("notify-flags", notify_flags.to_string().into()),
        ("bpf-pin-dir", bpf_pin_dir.into()),
        ("state-dir", state_dir.into()),
    ];
    if let Some(name) = path_manager {
        settings.push(("path-manager", name.into()));
    }
    if let Some(list) = load_plugins {
        settings.push(("load-plugins", list.join(",").into()));
    }
    if let Some(dir) = observe_cgroup {
        settings.push(("observe-cgroup", dir.into()));
    }
    settings
}

/// The config file that says `config`, or `None` if a value cannot be written in one (a line
/// is trimmed, ends at a newline and is UTF-8).
pub(crate) fn as_file(config: &Config) -> Option<String> {
    let mut text = String::from("[core]\n");
    for (key, value) in settings(config) {
        let value = value.to_str()?;
        if value.trim() != value || value.contains('\n') {
            return None;
        }
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{key}={value}");
    }
    Some(text)
}

/// The command line that says `config`, or `None` if a value cannot be passed as an
/// argument (NUL).
pub(crate) fn as_argv(config: &Config) -> Option<Vec<OsString>> {
    let mut argv = vec![OsString::from("mptcpd")];
    for (key, value) in settings(config) {
        if value.as_bytes().contains(&0) {
            return None;
        }
        match (key, value.to_str()) {
            ("debug", Some("true")) => argv.push("-d".into()),
            ("debug", _) => {}
            _ => {
                let mut arg = OsString::from(format!("--{key}="));
                arg.push(value);
                argv.push(arg);
            }
        }
    }
    Some(argv)
}

/// Checks that `config` reads back the same from the file and the command line it prints as
/// (where it can be printed). `from_file` says where it came from: that one must print.
pub(crate) fn check_round_trips(config: &Config, from_file: bool) {
    let without_file = Config {
        config_file: None,
        ..config.clone()
    };
    match as_file(config) {
        Some(text) => {
            let again = Config::from_text(&Args::default(), Some(&text))
                .unwrap_or_else(|e| panic!("{config:?} printed as\n{text}does not parse: {e}"));
            assert_eq!(
                Config {
                    config_file: None,
                    ..again
                },
                without_file,
                "printed as\n{text}"
            );
        }
        None => assert!(!from_file, "{config:?} cannot be written as a file"),
    }
    if let Some(argv) = as_argv(config) {
        let args = Args::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{config:?} printed as {argv:?} does not parse: {e}"));
        let again = Config::from_text(&args, None).expect("no file, no error");
        assert_eq!(again, without_file, "printed as {argv:?}");
    }
}
