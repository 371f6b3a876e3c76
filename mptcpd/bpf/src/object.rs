//! The eBPF object, built by `mptcpd/build.rs` and embedded in the binary.

use std::{fs::File, path::Path};

use aya::{
    Ebpf, EbpfLoader,
    programs::{Program, ProgramError},
};

use super::EbpfError;

/// The ELF object holding every mptcpd eBPF program (aligned, as aya requires).
pub(crate) static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mptcpd-ebpf"));

/// Loads the object's maps into the kernel (programs are loaded one by one, on demand).
pub(crate) fn load_object() -> Result<Ebpf, EbpfError> {
    raise_memlock_limit();
    EbpfLoader::new().load(OBJECT).map_err(EbpfError::Object)
}

/// Program `name` of `ebpf` as the type it must be (`CgroupSock`, `SockOps`, ...).
pub(crate) fn typed_program<'a, P>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut P, EbpfError>
where
    &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(EbpfError::MissingProgram(name))?
        .try_into()
        .map_err(program_error(name))
}

/// The error of program `name`'s load or attach.
pub(crate) fn program_error(name: &'static str) -> impl Fn(ProgramError) -> EbpfError {
    move |source| EbpfError::Program { name, source }
}

/// The cgroup v2 directory `path`, opened to attach programs to it.
pub(crate) fn open_cgroup(path: &Path) -> Result<File, EbpfError> {
    File::open(path).map_err(|source| EbpfError::Cgroup {
        path: path.to_owned(),
        source,
    })
}

/// Kernels before 5.11 charge BPF memory to `RLIMIT_MEMLOCK`; later ones to the cgroup, where
/// this is a no-op. Failing to raise it is not an error: the load says what it lacked.
pub(super) fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a plain syscall on a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) } != 0 {
        tracing::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use object::{Object as _, ObjectSection as _};

    use super::OBJECT;

    #[test]
    fn the_embedded_object_holds_the_sock_create_observer() {
        let elf = object::File::parse(OBJECT).expect("an ELF object");
        assert_eq!(elf.architecture(), object::Architecture::Bpf);
        let sections: Vec<&str> = elf.sections().filter_map(|s| s.name().ok()).collect();
        assert!(sections.contains(&"cgroup/sock_create"), "{sections:?}");
        assert!(sections.contains(&"maps"), "{sections:?}");
        assert!(sections.contains(&".BTF"), "{sections:?}");
        assert!(sections.contains(&"license"), "{sections:?}");
    }
}
