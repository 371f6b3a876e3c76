//! Errors of the eBPF side.

use std::{error::Error as _, io, path::PathBuf};

/// What went wrong loading, attaching, reading or pinning mptcpd's eBPF objects.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// The embedded object did not load (map creation, relocation, BTF).
    #[error("loading the eBPF object")]
    Object(#[source] aya::EbpfError),
    /// The object lacks a program it should have (a build mismatch).
    #[error("program `{0}` is not in the eBPF object")]
    MissingProgram(&'static str),
    /// The object lacks a map it should have (a build mismatch).
    #[error("map `{0}` is not in the eBPF object")]
    MissingMap(&'static str),
    /// A program failed to load or attach.
    #[error("program `{name}`")]
    Program {
        /// The program.
        name: &'static str,
        /// Why.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map could not be read or opened.
    #[error("map `{name}`")]
    Map {
        /// The map.
        name: &'static str,
        /// Why.
        #[source]
        source: aya::maps::MapError,
    },
    /// The cgroup to attach to could not be opened.
    #[error("cgroup {}", path.display())]
    Cgroup {
        /// The cgroup directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// bpffs could not be used for pinning.
    #[error("{}", path.display())]
    Bpffs {
        /// The path on (or expected on) bpffs.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The pin directory is one another user could have made or could change.
    #[error(
        "refusing pin directory {}: {why}; remove it (rm -r {}) or choose another with \
         --bpf-pin-dir",
        path.display(),
        path.display()
    )]
    UntrustedPinDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The pinned upgrade does not hang together (its link's program does not read the
    /// pinned map, or cannot be inspected).
    #[error(
        "the pinned eBPF upgrade at {} is inconsistent: {why}; run `mptcpize reset`, then \
         enable again",
        path.display()
    )]
    Inconsistent {
        /// The pin looked at.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An object could not be pinned.
    #[error("pinning {}", path.display())]
    Pin {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: aya::pin::PinError,
    },
    /// The kernel's BTF could not be read (needed by BTF-based programs such as fentry).
    #[error("kernel BTF")]
    Btf(#[source] aya::BtfError),
    /// The kernel's BTF does not show where a task's network namespace cookie is: the upgrade
    /// cannot check its allow-list there, so it is not installed (offsets are never guessed).
    #[error("the kernel's BTF does not locate a task's network namespace cookie: {why}")]
    KernelLayout {
        /// What is missing or unreadable.
        why: String,
    },
    /// The `fmod_ret` upgrade program could not be read, loaded or attached.
    #[error(transparent)]
    FmodRet(aya_fmod_ret::FModRetError),
    /// The telemetry's `iter/tcp` refresh could not run.
    #[error("refreshing the subflow records (iter/tcp)")]
    Refresh(#[source] io::Error),
    /// The kernel's run-time statistics could not be turned on (Linux 5.8+, `CAP_SYS_ADMIN`).
    #[error("enabling BPF run-time statistics (BPF_ENABLE_STATS)")]
    Stats(#[source] aya::sys::SyscallError),
    /// A loaded program's information could not be read.
    #[error("reading program `{name}`'s information")]
    ProgramInfo {
        /// The program.
        name: String,
        /// Why.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// The aya-log ring buffer could not be watched.
    #[error("eBPF log ring buffer")]
    LogRing(#[source] io::Error),
    /// aya-log could not be set up.
    #[error("eBPF logging")]
    Log(#[source] aya_log::Error),
}

impl EbpfError {
    /// The kernel refused for lack of privilege (`EPERM` or `EACCES` somewhere in the chain):
    /// the process lacks `CAP_BPF`, or a security policy forbids the program type.
    #[must_use]
    pub fn is_permission_denied(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = self.source();
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<io::Error>()
                && io.kind() == io::ErrorKind::PermissionDenied
            {
                return true;
            }
            source = err.source();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use aya::{maps::MapError, sys::SyscallError};
    use mptcpd_common::Chain;

    use super::EbpfError;

    #[test]
    fn a_chain_through_aya_says_each_cause_once() {
        // aya's `EbpfError::MapError` prints and exposes its source; `SyscallError` only exposes.
        let denied = || io::Error::from(io::ErrorKind::PermissionDenied);
        let err = EbpfError::Object(aya::EbpfError::MapError(MapError::SyscallError(
            SyscallError {
                call: "bpf_map_create",
                io_error: denied(),
            },
        )));
        assert_eq!(
            Chain(&err).to_string(),
            format!(
                "loading the eBPF object: map error: `bpf_map_create` failed: {}",
                denied()
            )
        );
        assert!(err.is_permission_denied());
    }
}
