//! Which mechanism makes programs use MPTCP here, and why: the eBPF upgrade where the kernel
//! runs it, else the `LD_PRELOAD` wrapper.

use std::path::Path;

use mptcpd_bpf::{EbpfError, FModRetError, Upgrade};
use mptcpd_common::Chain;

/// The mechanism in use.
#[derive(Debug)]
pub(crate) enum Mechanism {
    /// `fmod_ret/update_socket_protocol`, installed (pinned) in the pin directory.
    Ebpf {
        /// The pinned upgrade (boxed: its map handles are large).
        upgrade: Box<Upgrade>,
    },
    /// The wrapper library, because the eBPF upgrade is not available for this reason.
    Preload {
        /// Why not eBPF, in a few words.
        why: String,
    },
}

impl Mechanism {
    /// Installs (or opens) the eBPF upgrade in `pin_dir`; the wrapper if the kernel cannot run
    /// it. A pin directory that others could tamper with is an error, not a reason to fall back.
    pub(crate) fn choose(pin_dir: &Path) -> Result<Self, EbpfError> {
        match Upgrade::install(pin_dir) {
            Ok((upgrade, _installed)) => Ok(Self::Ebpf {
                upgrade: Box::new(upgrade),
            }),
            Err(e @ EbpfError::UntrustedPinDir { .. }) => Err(e),
            Err(e) => Ok(Self::Preload { why: why_not(&e) }),
        }
    }
}

/// What the kernel lacks or refuses, in one line.
#[must_use]
pub(crate) fn why_not(e: &EbpfError) -> String {
    match e {
        EbpfError::FmodRet(FModRetError::MissingTarget(function)) => {
            format!("this kernel has no {function} hook (Linux 6.6 or later has it)")
        }
        e if e.is_permission_denied() => format!(
            "this kernel does not permit BPF tracing (fmod_ret) programs here: {}",
            Chain(e)
        ),
        e => Chain(e).to_string(),
    }
}
