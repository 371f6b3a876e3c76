//! What the running kernel lets mptcpd do, learned by loading and attaching tiny programs
//! (never guessed from the kernel version). Each probe counts its hits, so a caller can also
//! check that an attached probe fires.

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray},
    programs::{FEntry, KProbe},
};
use mptcpd_common::probes::{
    FENTRY_PROGRAM, FENTRY_SLOT, HITS_MAP, KPROBE_PROGRAM, KPROBE_SLOT, TARGET_FUNCTION,
};

use mptcpd_common::Chain;

use super::{EbpfError, Upgrade};

/// The probes' object, built and embedded like the daemon's main object.
static PROBES_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mptcpd-probes"));

/// Whether a feature works here, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Loads and attaches.
    Yes,
    /// Does not, for this reason (the kernel's or aya's own words).
    No(String),
}

/// Program types mptcpd may use, as the running kernel allows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFeatures {
    /// kprobes (`CONFIG_KPROBES`, and a kernel that lets BPF attach to them).
    pub kprobe: Support,
    /// fentry and the other BPF trampolines (fexit, `fmod_ret`).
    pub fentry: Support,
    /// The TCP-to-MPTCP upgrade: `fmod_ret/update_socket_protocol` (Linux 6.6+, trampolines).
    pub fmod_ret: Support,
}

impl KernelFeatures {
    /// Probes every feature; attached probes are detached before this returns.
    #[must_use]
    pub fn probe() -> Self {
        let mut probes = match Probes::load() {
            Ok(probes) => probes,
            Err(e) => {
                let reason = Chain(&e).to_string();
                return Self {
                    kprobe: Support::No(reason.clone()),
                    fentry: Support::No(reason),
                    fmod_ret: support(Upgrade::probe()),
                };
            }
        };
        Self {
            kprobe: support(probes.attach_kprobe()),
            fentry: support(probes.attach_fentry()),
            fmod_ret: support(Upgrade::probe()),
        }
    }

    /// The features that are missing, by name, with why.
    pub fn missing(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let Self {
            kprobe,
            fentry,
            fmod_ret,
        } = self;
        [
            ("kprobe", kprobe),
            ("fentry", fentry),
            ("fmod_ret", fmod_ret),
        ]
        .into_iter()
        .filter_map(|(name, support)| match support {
            Support::Yes => None,
            Support::No(reason) => Some((name, reason.as_str())),
        })
    }
}

fn support(result: Result<(), EbpfError>) -> Support {
    match result {
        Ok(()) => Support::Yes,
        Err(e) => Support::No(Chain(&e).to_string()),
    }
}

/// The loaded probes object; programs attach on request and detach on drop.
#[derive(Debug)]
pub struct Probes {
    ebpf: Ebpf,
}

/// Hits counted by each probe since it was attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits {
    /// By the kprobe.
    pub kprobe: u64,
    /// By the fentry program.
    pub fentry: u64,
}

impl Probes {
    /// Loads the probes' maps.
    pub fn load() -> Result<Self, EbpfError> {
        let ebpf = EbpfLoader::new()
            .load(PROBES_OBJECT)
            .map_err(EbpfError::Object)?;
        Ok(Self { ebpf })
    }

    /// Loads the kprobe and attaches it to [`TARGET_FUNCTION`].
    pub fn attach_kprobe(&mut self) -> Result<(), EbpfError> {
        let err = |source| EbpfError::Program {
            name: KPROBE_PROGRAM,
            source,
        };
        let program: &mut KProbe = self
            .ebpf
            .program_mut(KPROBE_PROGRAM)
            .ok_or(EbpfError::MissingProgram(KPROBE_PROGRAM))?
            .try_into()
            .map_err(err)?;
        program.load().map_err(err)?;
        program.attach(TARGET_FUNCTION, 0).map_err(err)?;
        Ok(())
    }

    /// Loads the fentry program against the kernel's BTF and attaches it.
    pub fn attach_fentry(&mut self) -> Result<(), EbpfError> {
        let err = |source| EbpfError::Program {
            name: FENTRY_PROGRAM,
            source,
        };
        let btf = Btf::from_sys_fs().map_err(EbpfError::Btf)?;
        let program: &mut FEntry = self
            .ebpf
            .program_mut(FENTRY_PROGRAM)
            .ok_or(EbpfError::MissingProgram(FENTRY_PROGRAM))?
            .try_into()
            .map_err(err)?;
        program.load(TARGET_FUNCTION, &btf).map_err(err)?;
        program.attach().map_err(err)?;
        Ok(())
    }

    /// Hits so far, summed over CPUs.
    pub fn hits(&self) -> Result<Hits, EbpfError> {
        let map_err = |source| EbpfError::Map {
            name: HITS_MAP,
            source,
        };
        let map: PerCpuArray<&MapData, u64> = self
            .ebpf
            .map(HITS_MAP)
            .ok_or(EbpfError::MissingMap(HITS_MAP))?
            .try_into()
            .map_err(map_err)?;
        let sum = |slot| -> Result<u64, EbpfError> {
            Ok(map.get(&slot, 0).map_err(map_err)?.iter().sum())
        };
        Ok(Hits {
            kprobe: sum(KPROBE_SLOT)?,
            fentry: sum(FENTRY_SLOT)?,
        })
    }
}
