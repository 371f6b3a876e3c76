//! A [`Config`] written back as a config file and as a command line, so that the `config`
//! and `cli` targets can check that each front end reads back what it means, and that both
//! mean the same.

use std::{ffi::OsString, fmt::Write as _, os::unix::ffi::OsStrExt as _};

use clap::Parser as _;
use mptcpd::{
    cli::Args,
    config::{Config, Policy, SETTINGS, Setting},
};

/// The settings `config` gives a value, with their values as the file writes them.
fn settings(config: &Config) -> impl Iterator<Item = (&'static Setting, OsString)> {
    SETTINGS
        .iter()
        .filter_map(|setting| Some((setting, setting.text(config)?)))
}

/// The config file that says `config`, or `None` if a value cannot be written in one (a line
/// is trimmed, ends at a newline and is UTF-8).
pub(crate) fn as_file(config: &Config) -> Option<String> {
    let mut text = String::new();
    let mut section = None;
    for (setting, value) in settings(config) {
        let value = value.to_str()?;
        if value.trim() != value || value.contains('\n') {
            return None;
        }
        // Writing to a String cannot fail.
        if section != Some(setting.section) {
            section = Some(setting.section);
            let _ = writeln!(text, "[{}]", setting.section);
        }
        let _ = writeln!(text, "{}={value}", setting.key);
    }
    // The policy sections (the file only).
    let _ = write!(text, "{}", config.policy);
    Some(text)
}

/// The command line that says `config`, or `None` if a value cannot be passed as an
/// argument (NUL).
pub(crate) fn as_argv(config: &Config) -> Option<Vec<OsString>> {
    let mut argv = vec![OsString::from("mptcpd")];
    for (setting, value) in settings(config) {
        if value.as_bytes().contains(&0) {
            return None;
        }
        if let Some(word) = setting.switch {
            // An option without a value: given for its value, left out for the default.
            if value == word {
                argv.push(format!("--{}", setting.option).into());
            }
        } else {
            let mut arg = OsString::from(format!("--{}=", setting.option));
            arg.push(value);
            argv.push(arg);
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
        // The policy has no options: the command line says the rest.
        let without_policy = Config {
            policy: Policy::default(),
            ..without_file
        };
        assert_eq!(again, without_policy, "printed as {argv:?}");
    }
}
