//! The eBPF object, built by `mptcpd/build.rs` and embedded in the binary.

use aya::{Ebpf, EbpfLoader};

use super::EbpfError;

/// The ELF object holding every mptcpd eBPF program (aligned, as aya requires).
pub(crate) static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mptcpd-ebpf"));

/// Loads the object's maps into the kernel (programs are loaded one by one, on demand).
pub(crate) fn load_object() -> Result<Ebpf, EbpfError> {
    raise_memlock_limit();
    EbpfLoader::new().load(OBJECT).map_err(EbpfError::Object)
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
