//! Least privilege: once the daemon's BPF programs are loaded and attached, it gives up
//! `CAP_BPF` and `CAP_PERFMON` for the rest of its life. Nothing later loads a program (a
//! reload that changes `bpf-pin-dir` or `observe-cgroup` waits for a restart), and what it keeps
//! using needs no capability: its map and link descriptors, its log ring buffer, and unlinking
//! its own pins. `CAP_NET_ADMIN` stays: every path-manager command needs it.

use std::io;

/// `CAP_PERFMON` and `CAP_BPF` from linux/capability.h.
pub(super) const DROPPED: [u32; 2] = [38, 39];
/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, as two 32-bit words.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Removes [`DROPPED`] from the effective, permitted, inheritable and ambient sets of the
/// calling thread; the daemon has no other thread yet (a current-thread runtime).
pub(super) fn drop_bpf_capabilities() -> io::Result<()> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: a v3 header and room for its two words.
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for cap in DROPPED {
        let word = &mut data[usize::try_from(cap / 32).unwrap_or(1)];
        let bit = !(1_u32 << (cap % 32));
        word.effective &= bit;
        word.permitted &= bit;
        word.inheritable &= bit;
    }
    // SAFETY: as above; lowering sets needs no privilege. The kernel also clears the ambient
    // bits that are no longer permitted.
    if unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for cap in DROPPED {
        // SAFETY: plain integers. Fails only where the kernel has no ambient set or does not
        // know the capability, and then there is nothing to lower.
        let _lowered = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_LOWER,
                libc::c_ulong::from(cap),
                0,
                0,
            )
        };
    }
    Ok(())
}
