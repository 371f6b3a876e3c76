//! Loads, attaches and pins `fmod_ret` (`BPF_MODIFY_RETURN`) programs, which aya 0.16 cannot.
//!
//! A `fmod_ret/FUNCTION` program runs on a BPF trampoline at the entry of the kernel function
//! `FUNCTION` (one marked `ALLOW_ERROR_INJECTION`) and may replace its return value. aya has
//! `FEntry` and `FExit` for the other trampoline programs, but not this one: aya-obj refuses
//! the `fmod_ret/` section when it parses an object, and `FEntry` hard-codes the attach type
//! `BPF_TRACE_FENTRY`. This crate fills that gap for programs that use maps and nothing else
//! that needs linking (no BPF-to-BPF calls, no global data):
//!
//! ```no_run
//! # fn demo(object: &[u8], map: &aya::maps::MapData) -> Result<(), Box<dyn std::error::Error>> {
//! use std::os::fd::AsFd as _;
//!
//! use aya_fmod_ret::FModRet;
//!
//! // Read the program out of the ELF object (built with aya-ebpf or libbpf conventions).
//! let mut program = FModRet::from_elf(object, "my_program")?;
//! // Point its map references at maps that aya created or opened from pins.
//! program.relocate_maps(|name| (name == "MY_MAP").then(|| map.fd().as_fd()))?;
//! // Load it against the kernel function its section names, attach it, keep it attached.
//! program.load(&aya::Btf::from_sys_fs()?)?;
//! let link = program.attach()?;
//! link.pin("/sys/fs/bpf/my_link")?;
//! # Ok(())
//! # }
//! ```
//!
//! It depends on aya, aya-obj (the `bpf_attr` bindings), `object` and libc only, so it could
//! become aya's `programs::FModRet`: there, aya-obj would accept the section as a new
//! `ProgramSection::FModRet` (map relocation, BTF and the rest come for free), and the
//! program type would be `FEntry` with `BPF_MODIFY_RETURN` as its expected attach type (the
//! load, attach and link code here would then go).

mod elf;
mod sys;
#[cfg(test)]
mod tests;

use std::{
    io,
    os::fd::{AsFd as _, BorrowedFd, OwnedFd},
    path::Path,
};

use aya::Btf;
use aya_obj::btf::BtfKind;

use elf::ElfProgram;

/// `bpf(2)` with a command that returns a new fd, for what else aya 0.16 keeps private (such
/// as opening many iterators of one iterator link).
///
/// # Safety
/// Every pointer in `attr` must be valid for `cmd` for the whole call.
pub unsafe fn bpf_fd(
    cmd: aya_obj::generated::bpf_cmd,
    attr: &mut aya_obj::generated::bpf_attr,
) -> io::Result<OwnedFd> {
    sys::bpf(cmd, attr)
}

/// What went wrong reading, loading or attaching an `fmod_ret` program.
#[derive(Debug, thiserror::Error)]
pub enum FModRetError {
    /// The object is not a usable BPF ELF object.
    #[error("ELF object: {0}")]
    Elf(String),
    /// No function of that name in the object.
    #[error("no program `{0}` in the object")]
    MissingProgram(String),
    /// The function is not in an `fmod_ret/FUNCTION` section.
    #[error("program `{program}` is in section `{section}`, not fmod_ret/FUNCTION")]
    NotFmodRet {
        /// The program.
        program: String,
        /// Its section.
        section: String,
    },
    /// The program uses something this loader does not link.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The program refers to a map the caller did not provide.
    #[error("no fd given for map `{0}`")]
    MissingMap(String),
    /// The program was used before [`FModRet::load`] (or after a failed one).
    #[error("program `{0}` is not loaded")]
    NotLoaded(String),
    /// The kernel has no BTF function of that name (the hook is missing from this kernel).
    #[error("the kernel has no function `{0}` in its BTF")]
    MissingTarget(String),
    /// `BPF_PROG_LOAD` failed.
    #[error("loading `{program}`{}", if log.is_empty() { String::new() } else { format!(" (verifier: {})", last_line(log)) })]
    Load {
        /// The program.
        program: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
        /// The verifier log, if any.
        log: String,
    },
    /// Attaching (creating the link) failed.
    #[error("attaching `{program}`")]
    Attach {
        /// The program.
        program: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
}

/// The verifier's complaint: the last lines of its log, without the statistics.
fn last_line(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| {
            !l.trim().is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
        })
        .collect();
    lines[lines.len().saturating_sub(2)..].join(" | ")
}

/// An `fmod_ret` program of an ELF object: read with [`FModRet::from_elf`], its maps
/// relocated, then loaded, attached (and its link pinned). Like aya's program types, it holds
/// the program's fd once loaded; the kernel unloads the program when the fd and every link to
/// it are gone.
#[derive(Debug)]
pub struct FModRet {
    program: ElfProgram,
    fd: Option<OwnedFd>,
}

impl FModRet {
    /// Reads the program (the function symbol) `name` from the ELF `object`.
    pub fn from_elf(object: &[u8], name: &str) -> Result<Self, FModRetError> {
        Ok(Self {
            program: ElfProgram::parse(object, name)?,
            fd: None,
        })
    }

    /// The program's name (its symbol).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.program.name
    }

    /// The kernel function it attaches to (its section name after `fmod_ret/`).
    #[must_use]
    pub fn target(&self) -> &str {
        &self.program.target
    }

    /// The license the object declares (its `license` section).
    #[must_use]
    pub fn license(&self) -> &str {
        &self.program.license
    }

    /// The maps the program refers to, by symbol name, in instruction order (repeated when
    /// several instructions load the same map).
    pub fn map_names(&self) -> impl Iterator<Item = &str> {
        self.program.map_refs.iter().map(|r| r.map.as_str())
    }

    /// Number of instructions.
    #[must_use]
    pub fn insn_count(&self) -> usize {
        self.program.insn_count()
    }

    /// Points every map reference at a map: `lookup` gives the fd of a map by its symbol
    /// name (e.g. `MapData::fd`). The fds must stay open until [`load`](Self::load).
    pub fn relocate_maps<'fd>(
        &mut self,
        lookup: impl FnMut(&str) -> Option<BorrowedFd<'fd>>,
    ) -> Result<(), FModRetError> {
        self.program.resolve_maps(lookup)
    }

    /// Loads the program (its maps relocated) against the kernel function named by its
    /// section, found in `btf` (usually [`Btf::from_sys_fs`]).
    pub fn load(&mut self, btf: &Btf) -> Result<(), FModRetError> {
        let program = &self.program;
        let attach_btf_id = btf
            .id_by_type_name_kind(&program.target, BtfKind::Func)
            .map_err(|_| FModRetError::MissingTarget(program.target.clone()))?;
        let fd = sys::prog_load(
            &program.name,
            &program.insns,
            &program.license,
            attach_btf_id,
        )
        .map_err(|(source, log)| FModRetError::Load {
            program: program.name.clone(),
            source,
            log,
        })?;
        self.fd = Some(fd);
        Ok(())
    }

    /// The loaded program's fd.
    pub fn fd(&self) -> Result<BorrowedFd<'_>, FModRetError> {
        self.fd
            .as_ref()
            .map(OwnedFd::as_fd)
            .ok_or_else(|| FModRetError::NotLoaded(self.program.name.clone()))
    }

    /// Attaches the loaded program. It stays attached while the returned link lives, or its
    /// pin ([`FModRetLink::pin`]). Unlike aya's programs, which keep their links and hand them
    /// out with `take_link`, this returns the link: the caller owns it.
    pub fn attach(&self) -> Result<FModRetLink, FModRetError> {
        let fd = sys::attach(self.fd()?).map_err(|source| FModRetError::Attach {
            program: self.program.name.clone(),
            source,
        })?;
        Ok(FModRetLink { fd })
    }
}

/// The link of an attached program: dropping it detaches the program unless it is pinned.
#[derive(Debug)]
pub struct FModRetLink {
    fd: OwnedFd,
}

impl FModRetLink {
    /// Pins the link at `path` on bpffs, so that the program stays attached after this
    /// process (until the pin is removed).
    pub fn pin(&self, path: impl AsRef<Path>) -> io::Result<()> {
        sys::obj_pin(self.fd.as_fd(), path.as_ref())
    }

    /// The link's fd.
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
