//! `cli`: `mptcpd`'s command line (the input's NUL-separated arguments), parsed by clap and
//! resolved into a configuration without a file. Checked: a usage error has a first line to
//! print (what `main` prints); a configuration prints (as a command line, and as a file where
//! its values fit one) and parses back the same.

use std::{ffi::OsString, iter, os::unix::ffi::OsStringExt as _};

use clap::{Parser as _, error::ErrorKind};
use mptcpd::{
    cli::Args,
    config::{Config, SETTINGS},
};

use crate::print;

/// The fuzz target.
///
/// # Panics
/// On a finding: a property that does not hold.
pub fn run(input: &[u8]) {
    let arguments = iter::once(OsString::from("mptcpd")).chain(
        input
            .split(|&byte| byte == 0)
            .map(|arg| OsString::from_vec(arg.to_vec())),
    );
    match Args::try_parse_from(arguments) {
        Ok(args) => {
            let config = Config::from_text(&args, None).expect("no file, no error");
            print::check_round_trips(&config, false);
        }
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {}
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            assert!(
                !first.trim_start_matches("error: ").trim().is_empty(),
                "a usage error without a first line: {text:?}"
            );
        }
    }
}

/// The options of the C daemon in both spellings, ours, every setting's example, and a few
/// mistakes.
#[must_use]
pub fn seeds() -> Vec<Vec<u8>> {
    let every_setting = SETTINGS
        .iter()
        .map(|setting| match setting.switch {
            Some(_) => format!("--{}", setting.option),
            None => format!("--{}={}", setting.option, setting.example),
        })
        .collect::<Vec<_>>()
        .join("\0");
    let argvs: [&[&str]; 9] = [
        &[],
        &[
            "-d",
            "-l",
            "syslog",
            "--plugin-dir",
            "/p",
            "--path-manager",
            "sspi",
        ],
        &[
            "--debug",
            "--log=journal",
            "--plugin-dir=/usr/lib/mptcpd",
            "--path-manager=addr_adv",
            "--load-plugins=addr_adv,sspi",
            "--addr-flags=subflow,backup",
            "--notify-flags=existing,skip_link_local,skip_loopback,check_route",
        ],
        &[
            "--config=/etc/mptcpd/mptcpd.conf",
            "--bpf-pin-dir=/sys/fs/bpf/m",
            "--state-dir=/run/m",
            "--observe-cgroup",
            "/sys/fs/cgroup/m",
        ],
        &[
            "--addr-flags=",
            "--notify-flags",
            "",
            "--log=null",
            "-l",
            "stderr",
        ],
        &["--usage"],
        &["-?"],
        &["--addr-flags=signal,fullmesh"],
        &["--load-plugins=a,,b", "--bogus"],
    ];
    argvs
        .iter()
        .map(|argv| argv.join("\0").into_bytes())
        .chain([every_setting.into_bytes()])
        .collect()
}
