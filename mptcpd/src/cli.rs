//! The daemon's command line.
//!
//! Kept to what the daemon does so far; the C mptcpd's full option set and its configuration
//! file arrive with the path-manager plugins.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::{ebpf::DEFAULT_PIN_DIR, netmon::NotifyFlags};

/// Multipath TCP path-management daemon.
#[derive(Debug, Clone, Parser)]
#[command(name = "mptcpd", version, about)]
pub struct Args {
    /// Log debug messages.
    #[arg(short, long)]
    pub debug: bool,

    /// Where to log [default: journal under systemd, stderr otherwise].
    #[arg(short, long, value_enum)]
    pub log: Option<LogTarget>,

    /// Directory on bpffs for mptcpd's pinned maps and links.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PIN_DIR)]
    pub bpf_pin_dir: PathBuf,

    /// cgroup v2 directory whose sockets are observed [default: the root of the hierarchy].
    #[arg(long, value_name = "DIR")]
    pub observe_cgroup: Option<PathBuf>,

    /// Which addresses the network monitor reports, as in the C mptcpd:
    /// `existing,skip_link_local,skip_loopback,check_route` [default: none].
    #[arg(long, value_name = "FLAGS", default_value = "")]
    pub notify_flags: NotifyFlags,
}

/// Log destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogTarget {
    /// Standard error.
    Stderr,
    /// The systemd journal, natively.
    Journal,
    /// Nowhere.
    Null,
}
