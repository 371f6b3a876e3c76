//! `config`: the configuration file's text, parsed and merged as `mptcpd` does on start and
//! on SIGHUP (`Config::from_text`: no file-system checks). Checked: an error is one line that
//! names the line; a configuration that parses prints (as a file and as a command line) and
//! parses back the same, and its log line is one line.

use std::sync::LazyLock;

use clap::Parser as _;
use mptcpd::{
    cli::Args,
    config::{Config, SETTINGS},
};

use crate::print;

/// Options that the file must not override.
static ARGS: LazyLock<Args> = LazyLock::new(|| {
    Args::try_parse_from(["mptcpd", "--log=null", "--addr-flags=backup"]).expect("valid options")
});

/// The fuzz target.
///
/// # Panics
/// On a finding: a property that does not hold.
pub fn run(input: &[u8]) {
    // The daemon refuses a file that is not UTF-8 before it parses anything.
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match Config::from_text(&Args::default(), Some(text)) {
        Ok(config) => {
            print::check_round_trips(&config, true);
            let line = config.to_string();
            assert_eq!(
                line.lines().count(),
                1,
                "the log line of {config:?}: {line}"
            );
        }
        Err(e) => {
            let message = e.to_string();
            assert_eq!(message.lines().count(), 1, "{text:?}: {message}");
            assert!(
                message.contains(".conf:"),
                "names the file and line: {message}"
            );
        }
    }
    // The command line wins over the file: an option given there replaces the file's value.
    if let Ok(config) = Config::from_text(&ARGS, Some(text)) {
        assert_eq!(
            (config.log.to_string(), config.addr_flags.to_string()),
            ("null".to_owned(), "backup".to_owned())
        );
    }
}

/// The shipped file, the C daemon's, one that sets every key (the table's examples), and a few
/// with mistakes.
#[must_use]
pub fn seeds() -> Vec<Vec<u8>> {
    let every_key = SETTINGS.iter().fold(String::new(), |text, setting| {
        format!(
            "{text}[{}]\n{}={}\n",
            setting.section, setting.key, setting.example
        )
    });
    [
        include_str!("../../../dist/mptcpd.conf"),
        &every_key,
        "# Debian's mptcpd 0.12\n[core]\nlog=stderr\nplugin-dir=/usr/lib/x86_64-linux-gnu/mptcpd\n\
         path-manager=addr_adv\n# addr-flags=subflow\n# load-plugins=addr_adv,sspi\n",
        "[core]\ndebug=1\nlog = syslog\nload-plugins=addr_adv, sspi\n\
         notify-flags=existing,skip_link_local,skip_loopback,check_route\n",
        "[other]\nkey=value\n[core]\nlog=journal\nlog=null\naddr-flags=\nnotify-flags= \n",
        "[core]\naddr-flags=signal,fullmesh\n",
        "[core]\r\nlog=stderr\r\n",
        "log=stderr\n",
        "[core\n",
        "[core]\nload-plugins=a,,b\n",
        "[core]\ndebug=yes\n",
        "[health]\nhold=0\nmin-share=101\n[core]\nhealth-hold=1\n",
        "[health]\nhold=-3\n",
        "[policy]\ninterfaces=eth*,wlan0,*\nskip-interfaces=docker*,veth[0-9]*\n\
         skip-addresses=temporary,deprecated,ula,2001:db8::/32\nprefer-family=ipv6\n\
         [interface wwan*]\nflags=subflow,backup\n[interface eth0]\nflags=subflow,signal\n",
        "[interface eth[0]\nflags=backup\n",
        "[policy]\nskip-addresses=10.0.0.0/33\n",
    ]
    .iter()
    .map(|text| text.as_bytes().to_vec())
    .collect()
}
