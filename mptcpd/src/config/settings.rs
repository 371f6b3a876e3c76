//! The command line and the settings, each declared once, in `--help` order. An entry is an
//! option of [`Args`] (its `///` text is the help, `#[arg]` says the rest to clap); one with a
//! `=> { ... }` body is also a setting (an `Option` in `Args`; the others are plain clap fields):
//!
//! - `key`: its key in the file's [`SECTION`], also its long option (`--KEY`);
//! - `section`: the key is in this section of the file instead, and its long option is
//!   `--SECTION-KEY` (the `[health]` keys: `--health-hold`, which tests use);
//! - `switch`: the option takes no value and stands for this one (`-d`: `true`);
//! - `example`: a valid value other than the default (for tests and fuzz seeds);
//! - `parse`: how the file's value is read (default: the type's `FromStr`, as clap reads it);
//! - `text: path`: printed as a path, not through `Display`;
//! - `default`, or `unset`: the value when neither the command line nor the file gives one,
//!   or the word the log line shows for "none" (the [`Config`] field is then an `Option`);
//! - `empty`: an empty value is one (flags: none) and the log line shows it as this word;
//! - `reload`: what a SIGHUP does with a new value (`AtOnce`, `Restart`, or `Partly`).
//!
//! Adding a setting is adding an entry here (and documenting it in `dist/mptcpd.conf` and
//! the README).

use std::{net::SocketAddr, path::PathBuf};

use clap::{ArgAction, Parser, builder::NonEmptyStringValueParser};
use mptcp_pm::EndpointFlags;
use mptcpd_plugin::HealthConfig;

use super::{
    DEFAULT_DBUS_GROUP, DEFAULT_PLUGIN_DIR, DEFAULT_STATE_DIR, LogTarget, PluginList, Policy,
    file::{parse_bool, parse_socket_address},
    table::settings_table,
};
use mptcpd_bpf::DEFAULT_PIN_DIR;

use mptcpd_netmon::NotifyFlags;

settings_table! {
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
    pub struct Args;

    /// The effective settings: what the daemon and its plugins use.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Config {
        /// The file the settings were read from; `None` when the default file does not exist.
        pub config_file: Option<PathBuf>,
        /// `[policy]` and `[interface PATTERN]` (the file only).
        pub policy: Policy,
    }

    section "core";

    /// Log debug messages.
    #[arg(short)]
    debug: bool => {
        key: "debug",
        switch: "true",
        example: "true",
        // ELL's words; not in the C daemon, which can only be told on the command line.
        parse: parse_bool,
        default: false,
        reload: AtOnce,
    };

    /// Where to log [default: journal under systemd, stderr otherwise].
    #[arg(short, value_enum, value_name = "DEST")]
    log: LogTarget => {
        key: "log",
        example: "null",
        default: LogTarget::platform_default(),
        reload: Restart,
    };

    /// Directory of plugins [default: /usr/lib/mptcpd]; must not be world-writable.
    #[arg(value_name = "DIR")]
    plugin_dir: PathBuf => {
        key: "plugin-dir",
        example: "/opt/mptcpd/plugins",
        text: path,
        default: DEFAULT_PLUGIN_DIR.into(),
        reload: Restart,
    };

    /// Default path-manager plugin (overrides plugin priorities).
    #[arg(value_name = "PLUGIN", value_parser = NonEmptyStringValueParser::new())]
    path_manager: String => {
        key: "path-manager",
        example: "sspi",
        unset: "(by priority)",
        reload: Restart,
    };

    /// Load only these plugins (comma-separated) [default: all].
    #[arg(value_name = "PLUGINS")]
    load_plugins: PluginList => {
        key: "load-plugins",
        example: "addr_adv,sspi",
        unset: "(all)",
        reload: Restart,
    };

    /// Flags of the endpoints plugins add: subflow,signal,backup,fullmesh,laminar [default: none].
    #[arg(value_name = "FLAGS")]
    addr_flags: EndpointFlags => {
        key: "addr-flags",
        example: "subflow,backup",
        default: EndpointFlags::empty(),
        empty: "(none)",
        reload: Restart,
    };

    /// Most subflows the `mesh` plugin opens per connection [default: the kernel's subflow limit].
    #[arg(value_name = "N")]
    max_subflows: u32 => {
        key: "max-subflows",
        example: "4",
        unset: "(the kernel's subflow limit)",
        reload: Restart,
    };

    /// `[health]` hold: least seconds between two changes of a path by `health`, and healthy
    /// before a restore [default: 10].
    #[arg(value_name = "SECS")]
    health_hold: u32 => {
        key: "hold",
        section: "health",
        example: "15",
        default: HealthConfig::DEFAULT.hold_secs,
        reload: AtOnce,
    };

    /// `[health]` retrans-percent: retransmitted segments per 100 sent that make a subflow
    /// degraded (0: never) [default: 10].
    #[arg(value_name = "PERCENT")]
    health_retrans_percent: u32 => {
        key: "retrans-percent",
        section: "health",
        example: "20",
        default: HealthConfig::DEFAULT.retrans_percent,
        reload: AtOnce,
    };

    /// `[health]` rtt-percent: smoothed RTT in percent of the path's own baseline that makes a
    /// subflow degraded (0: never) [default: 300].
    #[arg(value_name = "PERCENT")]
    health_rtt_percent: u32 => {
        key: "rtt-percent",
        section: "health",
        example: "500",
        default: HealthConfig::DEFAULT.rtt_percent,
        reload: AtOnce,
    };

    /// `[health]` dead-rtos: retransmission timeouts without progress that make a subflow dead
    /// (0: never) [default: 3].
    #[arg(value_name = "N")]
    health_dead_rtos: u32 => {
        key: "dead-rtos",
        section: "health",
        example: "5",
        default: HealthConfig::DEFAULT.dead_rtos,
        reload: AtOnce,
    };

    /// `[health]` min-peers: distinct peers whose subflows must agree before a path changes
    /// (0: the share alone) [default: 3].
    #[arg(value_name = "N")]
    health_min_peers: u32 => {
        key: "min-peers",
        section: "health",
        example: "2",
        default: HealthConfig::DEFAULT.min_peers,
        reload: AtOnce,
    };

    /// `[health]` min-share: or percent of a path's subflows, from two peers or more, that must
    /// agree (0: the peers alone) [default: 50].
    #[arg(value_name = "PERCENT")]
    health_min_share: u32 => {
        key: "min-share",
        section: "health",
        example: "75",
        default: HealthConfig::DEFAULT.min_share_percent,
        reload: AtOnce,
    };

    /// `[health]` reprobe-max: longest wait in seconds between two re-probes of a dead path
    /// [default: 300].
    #[arg(value_name = "SECS")]
    health_reprobe_max: u32 => {
        key: "reprobe-max",
        section: "health",
        example: "600",
        default: HealthConfig::DEFAULT.reprobe_max_secs,
        reload: AtOnce,
    };

    /// Which addresses the network monitor reports.
    #[arg(
        value_name = "FLAGS",
        help = "Which addresses the network monitor reports: \
                existing,skip_link_local,skip_loopback,check_route [default: none]"
    )]
    notify_flags: NotifyFlags => {
        key: "notify-flags",
        example: "existing,skip_loopback",
        default: NotifyFlags::empty(),
        empty: "(none)",
        reload: Partly("notify-flags (existing, check_route)", notify_flags_in_force),
    };

    /// Configuration file [default: /etc/mptcpd/mptcpd.conf, if it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>;

    /// Directory on bpffs for mptcpd's pinned maps and links [default: /sys/fs/bpf/mptcpd].
    #[arg(value_name = "DIR")]
    bpf_pin_dir: PathBuf => {
        key: "bpf-pin-dir",
        example: "/sys/fs/bpf/example",
        text: path,
        default: DEFAULT_PIN_DIR.into(),
        reload: Restart,
    };

    /// cgroup v2 directory whose sockets are observed [default: the root of the hierarchy].
    #[arg(value_name = "DIR")]
    observe_cgroup: PathBuf => {
        key: "observe-cgroup",
        example: "/sys/fs/cgroup/example",
        text: path,
        unset: "(root)",
        reload: Restart,
    };

    /// Directory of the daemon's runtime state (the endpoints it added, its lock)
    /// [default: /run/mptcpd].
    #[arg(value_name = "DIR")]
    state_dir: PathBuf => {
        key: "state-dir",
        example: "/run/example",
        text: path,
        default: DEFAULT_STATE_DIR.into(),
        reload: Restart,
    };

    /// Serve Prometheus metrics (`OpenMetrics` text at /metrics) on this address and port
    /// [default: off].
    #[arg(value_name = "ADDR:PORT", value_parser = parse_socket_address)]
    metrics_address: SocketAddr => {
        key: "metrics-address",
        example: "127.0.0.1:9477",
        parse: parse_socket_address,
        unset: "(off)",
        reload: Restart,
    };

    /// Group whose members (besides root) may call the daemon's state-changing D-Bus methods
    /// (`org.mptcpd.Control1`); the D-Bus policy file names it too [default: mptcpd].
    #[arg(value_name = "GROUP", value_parser = NonEmptyStringValueParser::new())]
    dbus_group: String => {
        key: "dbus-group",
        example: "netadmin",
        default: DEFAULT_DBUS_GROUP.to_owned(),
        reload: Restart,
    };

    /// Print a short usage message.
    #[arg(long)]
    usage: bool;

    // clap acts on it while parsing; it is never set afterwards.
    /// Print help (`-?` too, as with argp).
    #[arg(short = 'h', short_alias = '?', long, action = ArgAction::Help)]
    help: Option<bool>;
}

/// On SIGHUP, the notify filters (`skip_link_local`, `skip_loopback`) apply at once; `existing`
/// (what the start-up dump reports) and `check_route` (what the monitor subscribes to) only
/// matter when the monitor starts.
fn notify_flags_in_force(current: NotifyFlags, new: NotifyFlags) -> NotifyFlags {
    let start_only = NotifyFlags::EXISTING | NotifyFlags::CHECK_ROUTE;
    new.difference(start_only) | current.intersection(start_only)
}
