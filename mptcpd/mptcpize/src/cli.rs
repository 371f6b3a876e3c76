//! The `mptcpize` command line: the C tool's subcommands (`run`, `enable`, `disable`) plus
//! cgroups, `status` and `reset`.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use clap::{Args as ClapArgs, Parser, Subcommand};

use mptcpd_bpf::DEFAULT_PIN_DIR;

/// Where systemd looks for administrator drop-ins.
pub const DEFAULT_SYSTEMD_DIR: &str = "/etc/systemd/system";

/// Make programs use Multipath TCP: in the kernel by cgroup (eBPF), else by `LD_PRELOAD`.
#[derive(Debug, Clone, Parser)]
#[command(name = "mptcpize", version, about)]
pub struct Args {
    /// Directory on bpffs for the pinned upgrade program, its cgroups and the daemon's counts.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PIN_DIR, global = true)]
    pub bpf_pin_dir: PathBuf,

    /// Directory for systemd drop-ins (`UNIT.d/mptcpize.conf`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_SYSTEMD_DIR, global = true)]
    pub systemd_dir: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run CMD with MPTCP in place of TCP.
    Run {
        /// Say which mechanism runs and why (and have the wrapper report each socket).
        #[arg(short, long)]
        debug: bool,
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// Use MPTCP for a systemd service or a cgroup from now on.
    Enable {
        /// The unit or cgroup.
        #[command(flatten)]
        target: Target,
        /// Write the drop-in even if the mptcpize binary or the wrapper it names could be
        /// replaced by a user other than root (a build tree, a world-writable directory).
        #[arg(long)]
        force: bool,
    },
    /// Stop using MPTCP for a systemd unit or a cgroup.
    Disable(Target),
    /// What is enabled, by which mechanism, and how many sockets really use MPTCP.
    Status,
    /// Disable every cgroup and remove the eBPF upgrade program.
    Reset,
    /// The network namespaces where the eBPF upgrade gives MPTCP (the allow-list): elsewhere
    /// enabled cgroups keep TCP.
    #[command(subcommand)]
    Netns(NetnsCommand),
}

/// `mptcpize netns ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum NetnsCommand {
    /// Allow a namespace (refused where net.mptcp.enabled is not 1).
    Allow {
        /// The namespace's file (`/run/netns/NAME`, `/proc/PID/ns/net`); default: this one.
        #[arg(long, value_name = "PATH")]
        netns: Option<PathBuf>,
    },
    /// Take a namespace off the list: enabled cgroups' sockets there stay TCP.
    Deny {
        /// The namespace's file; default: this one.
        #[arg(long, value_name = "PATH", conflicts_with = "cookie")]
        netns: Option<PathBuf>,
        /// A namespace by the cookie `list` shows (one that is gone, for instance).
        #[arg(long, value_name = "N")]
        cookie: Option<u64>,
    },
    /// The allowed namespaces, with the sockets upgraded in each.
    List,
}

/// What `enable` and `disable` act on, and how.
#[derive(Debug, Clone, ClapArgs)]
pub struct Target {
    /// The unit or cgroup.
    #[command(flatten)]
    pub what: What,
    /// Do not run `systemctl daemon-reload` after writing or removing a drop-in.
    #[arg(long)]
    pub no_reload: bool,
}

/// A [`Target`] as `enable` and `disable` act on it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scope<'a> {
    /// A unit (its name as given), and whether to skip `daemon-reload`.
    Unit { name: &'a str, no_reload: bool },
    /// `--cgroup PATH` or, with `current`, the caller's cgroup.
    Cgroup {
        path: Option<&'a Path>,
        current: bool,
    },
}

impl Target {
    /// What this target names (the one place that reads its fields).
    pub(crate) fn scope(&self) -> Scope<'_> {
        let Self {
            what:
                What {
                    unit,
                    cgroup,
                    current_cgroup,
                },
            no_reload,
        } = self;
        match unit {
            Some(name) => Scope::Unit {
                name,
                no_reload: *no_reload,
            },
            None => Scope::Cgroup {
                path: cgroup.as_deref(),
                current: *current_cgroup,
            },
        }
    }
}

/// Exactly one of a unit, a cgroup, or the caller's cgroup.
#[derive(Debug, Clone, ClapArgs)]
#[group(required = true, multiple = false)]
pub struct What {
    /// A systemd service (`.service` is implied): a drop-in, never an edit of the unit file.
    #[arg(value_name = "UNIT")]
    pub unit: Option<String>,
    /// A cgroup v2 directory, or a path below the cgroup v2 root (`/system.slice/x.service`);
    /// needs the eBPF upgrade.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,
    /// The cgroup mptcpize itself runs in (what a unit's drop-in uses at each start).
    #[arg(long)]
    pub current_cgroup: bool,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser as _;

    use super::{Args, Command, Scope, Target};

    fn target(args: &[&str]) -> Target {
        match Args::try_parse_from(args).unwrap().command {
            Command::Enable { target, .. } | Command::Disable(target) => target,
            other => panic!("not enable/disable: {other:?}"),
        }
    }

    #[test]
    fn a_target_is_a_unit_or_a_cgroup() {
        let unit = target(&["mptcpize", "enable", "web", "--no-reload"]);
        assert_eq!(
            unit.scope(),
            Scope::Unit {
                name: "web",
                no_reload: true
            }
        );
        let cgroup = target(&["mptcpize", "disable", "--cgroup", "/system.slice/x.service"]);
        assert_eq!(
            cgroup.scope(),
            Scope::Cgroup {
                path: Some(Path::new("/system.slice/x.service")),
                current: false
            }
        );
        let current = target(&["mptcpize", "disable", "--current-cgroup"]);
        assert_eq!(
            current.scope(),
            Scope::Cgroup {
                path: None,
                current: true
            }
        );
    }
}
