//! Errors of `mptcpize`: each is printed as one line.

use std::{io, path::PathBuf};

use mptcpd_bpf::EbpfError;

/// Why an `mptcpize` command failed.
#[derive(Debug, thiserror::Error)]
pub enum MptcpizeError {
    /// A cgroup was asked for but the eBPF upgrade cannot run here.
    #[error("cannot enable a cgroup without the eBPF upgrade, which is not available: {0}")]
    NoUpgrade(String),
    /// `enable --cgroup /` without `--force`.
    #[error(
        "refusing to enable the root cgroup {}: every process of the host would get MPTCP \
         (name a narrower cgroup, or add --force)",
        .0.display()
    )]
    RootCgroup(PathBuf),
    /// A network namespace could not be identified.
    #[error("network namespace {}", path.display())]
    Netns {
        /// Its file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `netns allow` of a namespace where MPTCP sockets fail.
    #[error(
        "refusing to allow {name}: {why} there, so its upgraded sockets would fail with \
         ENOPROTOOPT (set net.mptcp.enabled=1 in it first)"
    )]
    NetnsMptcpOff {
        /// The namespace, as the user named it.
        name: String,
        /// Why MPTCP fails there.
        why: &'static str,
    },
    /// The unit name is not one.
    #[error("invalid unit name {0:?}")]
    BadUnit(String),
    /// A drop-in can change only a service.
    #[error(
        "{0} is not a service: a drop-in's [Service] section means nothing to it (enable the \
         .service it starts, or its cgroup with --cgroup)"
    )]
    NotAService(String),
    /// A value cannot be written into a drop-in safely.
    #[error("cannot write {what} {value:?} into a drop-in: {why}")]
    DropInValue {
        /// Which value.
        what: &'static str,
        /// The value.
        value: PathBuf,
        /// Why not.
        why: &'static str,
    },
    /// A file a drop-in would run (or load) as root could be replaced by another user.
    #[error(
        "refusing to name {} in a drop-in run as root: {why} (install mptcpize with \
         `cargo xtask install`, or pass --force)",
        path.display()
    )]
    Untrusted {
        /// The file.
        path: PathBuf,
        /// Who could replace it.
        why: String,
    },
    /// A cgroup could not be found or used.
    #[error("cgroup {}", path.display())]
    Cgroup {
        /// The cgroup.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `run` cannot make its command's cgroup below the caller's.
    #[error("cannot run the command in a cgroup below {}: {why}; {hint}", parent.display())]
    RunCgroup {
        /// The caller's cgroup.
        parent: PathBuf,
        /// Why not.
        why: String,
        /// What to do.
        hint: &'static str,
    },
    /// The `LD_PRELOAD` library is not installed where mptcpize looks.
    #[error("libmptcpwrap.so not found (looked in {0})")]
    NoWrapper(String),
    /// The program to run could not be started.
    #[error("{program}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A drop-in could not be written or removed.
    #[error("{}", path.display())]
    DropIn {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `systemctl` failed.
    #[error("systemctl {args}: {reason}")]
    Systemctl {
        /// Its arguments.
        args: String,
        /// Its error output, or why it did not run.
        reason: String,
    },
    /// Pinned eBPF state could not be read or changed.
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
}
