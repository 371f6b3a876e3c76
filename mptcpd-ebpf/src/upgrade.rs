//! `fmod_ret/update_socket_protocol`: turns the TCP stream sockets of enabled cgroups (and of
//! their descendants) into MPTCP sockets at `socket(2)` time, so that static binaries and
//! programs that ignore `LD_PRELOAD` get MPTCP too, except below an opted-out cgroup. Counts
//! upgrades per enabled cgroup.
//!
//! Its own object: aya cannot parse `fmod_ret` sections, so mptcpd's own loader loads this one
//! (`mptcpd::ebpf::fmod_ret`), with the map below resolved to one that aya created.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![expect(
    internal_features,
    reason = "atomic_xadd: the BPF target has no fetch_add"
)]

mod atomic;

use aya_ebpf::{helpers::bpf_get_current_ancestor_cgroup_id, macros::map, maps::HashMap};
use mptcpd_common::{
    AF_INET, AF_INET6, IPPROTO_MPTCP, IPPROTO_TCP, SOCK_STREAM,
    upgrade::{CGROUPS_MAX_ENTRIES, CgroupEntry, MAX_CGROUP_DEPTH, MODE_ENABLED, SOCK_TYPE_MASK},
};

/// Cgroup id -> enabled or opted out, and sockets upgraded for it.
#[map]
static UPGRADE_CGROUPS: HashMap<u64, CgroupEntry> =
    HashMap::with_max_entries(CGROUPS_MAX_ENTRIES, 0);

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
    let entry = covering_entry();
    if entry.is_null() {
        return KEEP;
    }
    // SAFETY: a live element of the map (the lookup's pointer stays valid under RCU while the
    // program runs).
    if unsafe { (*entry).mode } != MODE_ENABLED {
        return KEEP;
    }
    // SAFETY: as above; other CPUs and preempted runs add to it too, hence the atomics.
    unsafe { atomic::add(&raw mut (*entry).upgraded, 1) };
    #[expect(clippy::cast_possible_wrap, reason = "262 fits")]
    let mptcp = IPPROTO_MPTCP as i32;
    mptcp
}

/// The entry of the deepest cgroup with one among the current task's cgroup and its ancestors,
/// or null. (Not an `Option`: LLVM may copy the payload of a `None`, an uninitialised register
/// the verifier rejects.)
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn covering_entry() -> *mut CgroupEntry {
    let mut found = core::ptr::null_mut();
    for level in 0..MAX_CGROUP_DEPTH {
        // SAFETY: a helper without pointer arguments; 0 past the task's own level.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
        if id == 0 {
            break;
        }
        if let Some(entry) = UPGRADE_CGROUPS.get_ptr_mut(&id) {
            found = entry;
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
