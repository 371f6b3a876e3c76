//! The daemon's command line: the C mptcpd's options (same names, values and exit status 64 on
//! bad usage), plus `--config`, `--bpf-pin-dir`, `--observe-cgroup` and `--state-dir`. Every setting is
//! optional here so that [`crate::config`] can tell "not given" from a default.

use std::path::PathBuf;

use clap::{ArgAction, Parser, builder::NonEmptyStringValueParser};

use crate::{
    config::{AddrFlags, LogTarget, PluginList},
    netmon::NotifyFlags,
};

/// Multipath TCP path-management daemon.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "mptcpd",
    version,
    about,
    disable_help_flag = true,
    // As argp: a repeated option takes its last value.
    args_override_self = true,
    after_help = "Settings not given here come from the config file, then the defaults."
)]
pub struct Args {
    /// Log debug messages.
    #[arg(short, long)]
    pub debug: bool,

    /// Where to log [default: journal under systemd, stderr otherwise].
    #[arg(short, long, value_enum, value_name = "DEST")]
    pub log: Option<LogTarget>,

    /// Directory of plugins [default: /usr/lib/mptcpd]; must not be world-writable.
    #[arg(long, value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,

    /// Default path-manager plugin (overrides plugin priorities).
    #[arg(long, value_name = "PLUGIN", value_parser = NonEmptyStringValueParser::new())]
    pub path_manager: Option<String>,

    /// Load only these plugins (comma-separated) [default: all].
    #[arg(long, value_name = "PLUGINS")]
    pub load_plugins: Option<PluginList>,

    /// Flags of the endpoints plugins add: subflow,signal,backup,fullmesh [default: none].
    #[arg(long, value_name = "FLAGS")]
    pub addr_flags: Option<AddrFlags>,

    /// Which addresses the network monitor reports.
    #[arg(
        long,
        value_name = "FLAGS",
        help = "Which addresses the network monitor reports: \
                existing,skip_link_local,skip_loopback,check_route [default: none]"
    )]
    pub notify_flags: Option<NotifyFlags>,

    /// Configuration file [default: /etc/mptcpd/mptcpd.conf, if it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory on bpffs for mptcpd's pinned maps and links [default: /sys/fs/bpf/mptcpd].
    #[arg(long, value_name = "DIR")]
    pub bpf_pin_dir: Option<PathBuf>,

    /// cgroup v2 directory whose sockets are observed [default: the root of the hierarchy].
    #[arg(long, value_name = "DIR")]
    pub observe_cgroup: Option<PathBuf>,

    /// Directory of the daemon's runtime state (the endpoints it added, its lock)
    /// [default: /run/mptcpd].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Print a short usage message.
    #[arg(long)]
    pub usage: bool,

    // clap acts on it while parsing; it is never set afterwards.
    /// Print help (`-?` too, as with argp).
    #[arg(short = 'h', short_alias = '?', long, action = ArgAction::Help)]
    pub help: Option<bool>,
}
