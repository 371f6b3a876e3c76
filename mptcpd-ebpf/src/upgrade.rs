//! `fmod_ret/update_socket_protocol`: turns the TCP stream sockets of enabled cgroups (and of
//! their descendants) into MPTCP sockets at `socket(2)` time, so that static binaries and
//! programs that ignore `LD_PRELOAD` get MPTCP too. Counts upgrades per enabled cgroup.
//!
//! Its own object: aya cannot parse `fmod_ret` sections, so mptcpd's own loader loads this one
//! (`mptcpd::ebpf::fmod_ret`), with the map below resolved to one that aya created.
#![no_std]
#![no_main]

use aya_ebpf::{helpers::bpf_get_current_ancestor_cgroup_id, macros::map, maps::PerCpuHashMap};
use mptcpd_common::{
    AF_INET, AF_INET6, IPPROTO_MPTCP, IPPROTO_TCP, SOCK_STREAM,
    upgrade::{CGROUPS_MAX_ENTRIES, MAX_CGROUP_DEPTH, SOCK_TYPE_MASK},
};

/// Enabled cgroup id -> sockets upgraded for it (per CPU: no atomics needed).
#[map]
static UPGRADE_CGROUPS: PerCpuHashMap<u64, u64> =
    PerCpuHashMap::with_max_entries(CGROUPS_MAX_ENTRIES, 0);

/// `fmod_ret`: 0 lets `update_socket_protocol` run and return `protocol` unchanged.
const KEEP: i32 = 0;

/// `int update_socket_protocol(int family, int type, int protocol)`: the trampoline passes the
/// arguments as an array of u64 slots.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fmod_ret/update_socket_protocol")]
extern "C" fn upgrade_socket(ctx: *const u64) -> i32 {
    // SAFETY: the trampoline's context holds one u64 slot per argument (3 here).
    let (family, sock_type, protocol) = unsafe { (*ctx, *ctx.add(1), *ctx.add(2)) };
    // The arguments are C ints: only the low 32 bits are defined.
    #[expect(clippy::cast_possible_truncation, reason = "C int arguments")]
    let (family, sock_type, protocol) = (family as u32, sock_type as u32, protocol as u32);
    let eligible = (family == AF_INET || family == AF_INET6)
        && sock_type & SOCK_TYPE_MASK == SOCK_STREAM
        && (protocol == 0 || protocol == IPPROTO_TCP);
    if !eligible {
        return KEEP;
    }
    let cgroup = enabled_cgroup();
    if cgroup == NONE {
        return KEEP;
    }
    if let Some(count) = UPGRADE_CGROUPS.get_ptr_mut(&cgroup) {
        // SAFETY: this CPU's slot of a live element; nothing else on this CPU writes it now.
        unsafe { *count += 1 };
    }
    #[expect(clippy::cast_possible_wrap, reason = "262 fits")]
    let mptcp = IPPROTO_MPTCP as i32;
    mptcp
}

/// No cgroup: ids start at 1. (Not an `Option`: LLVM may copy the payload of a `None`, an
/// uninitialised register the verifier rejects.)
const NONE: u64 = 0;

/// The deepest enabled cgroup among the current task's cgroup and its ancestors, or [`NONE`].
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn enabled_cgroup() -> u64 {
    let mut found = NONE;
    for level in 0..MAX_CGROUP_DEPTH {
        // SAFETY: a helper without pointer arguments; 0 past the task's own level.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
        if id == 0 {
            break;
        }
        // SAFETY: only a lookup; nothing is read through the pointer.
        if unsafe { UPGRADE_CGROUPS.get(&id) }.is_some() {
            found = id;
        }
    }
    found
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // The verifier proves the program cannot panic; this only satisfies `no_std`.
    loop {}
}

/// GPL-compatible: tracing programs may only use GPL helpers otherwise.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual BSD/GPL\0";
