//! A small loader for `fmod_ret` (`BPF_MODIFY_RETURN`) programs, which aya 0.16 cannot load:
//! aya-obj rejects the section and `FEntry` hard-codes `BPF_TRACE_FENTRY`. It reads one program
//! out of an ELF object, resolves its map references to maps that aya created (or opened from
//! pins), loads it as `BPF_PROG_TYPE_TRACING` with `BPF_MODIFY_RETURN` against the kernel BTF
//! function named by its section, and attaches it through a BPF link.
//!
//! Kept apart from the rest of mptcpd (no mptcpd types) so that it could become aya's
//! `FModRet` program type.

mod elf;
mod sys;

use std::{
    io,
    os::fd::{AsFd as _, BorrowedFd, OwnedFd},
    path::Path,
};

use aya::Btf;
use aya_obj::btf::BtfKind;

pub use elf::{FmodRetProgram, MapRef};
pub use sys::obj_pin;

/// What went wrong reading, loading or attaching an `fmod_ret` program.
#[derive(Debug, thiserror::Error)]
pub enum FmodRetError {
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
    /// The kernel's BTF could not be read.
    #[error("kernel BTF: {0}")]
    Btf(#[source] aya::BtfError),
    /// The kernel has no BTF function of that name (the hook is missing from this kernel).
    #[error("the kernel has no function `{0}` in its BTF")]
    MissingTarget(String),
    /// `BPF_PROG_LOAD` failed.
    #[error("loading `{program}`: {source}{}", if log.is_empty() { String::new() } else { format!(" (verifier: {})", last_line(log)) })]
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
    #[error("attaching `{program}`: {source}")]
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

/// A loaded program; the kernel unloads it when this and its links are gone.
#[derive(Debug)]
pub struct LoadedFmodRet {
    name: String,
    fd: OwnedFd,
}

impl LoadedFmodRet {
    /// Loads `program` (its maps resolved, see [`FmodRetProgram::resolve_maps`]) against the
    /// kernel function named by its section, found in `btf`.
    pub fn load(program: &FmodRetProgram, btf: &Btf) -> Result<Self, FmodRetError> {
        let attach_btf_id = btf
            .id_by_type_name_kind(&program.target, BtfKind::Func)
            .map_err(|_| FmodRetError::MissingTarget(program.target.clone()))?;
        let fd = sys::prog_load(
            &program.name,
            &program.insns,
            &program.license,
            attach_btf_id,
        )
        .map_err(|(source, log)| FmodRetError::Load {
            program: program.name.clone(),
            source,
            log,
        })?;
        Ok(Self {
            name: program.name.clone(),
            fd,
        })
    }

    /// Loads `program` against the running kernel's BTF (`/sys/kernel/btf/vmlinux`).
    pub fn load_for_running_kernel(program: &FmodRetProgram) -> Result<Self, FmodRetError> {
        Self::load(program, &Btf::from_sys_fs().map_err(FmodRetError::Btf)?)
    }

    /// Attaches the program; it stays attached while the link's fd (or a pin of it) lives.
    pub fn attach(&self) -> Result<FmodRetLink, FmodRetError> {
        let fd = sys::attach(self.fd.as_fd()).map_err(|source| FmodRetError::Attach {
            program: self.name.clone(),
            source,
        })?;
        Ok(FmodRetLink { fd })
    }

    /// The program's fd.
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The link of an attached program: dropping it detaches the program unless it is pinned.
#[derive(Debug)]
pub struct FmodRetLink {
    fd: OwnedFd,
}

impl FmodRetLink {
    /// Pins the link at `path` on bpffs, so that the program stays attached after this process.
    pub fn pin(&self, path: &Path) -> io::Result<()> {
        obj_pin(self.fd.as_fd(), path)
    }
}
