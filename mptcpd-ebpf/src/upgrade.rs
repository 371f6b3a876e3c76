//! `fmod_ret/update_socket_protocol`: turns the TCP stream sockets of enabled cgroups (and of
//! their descendants) into MPTCP sockets at `socket(2)` time, so that static binaries and
//! programs that ignore `LD_PRELOAD` get MPTCP too, except below an opted-out cgroup and in
//! network namespaces that are not on the allow-list (one with `net.mptcp.enabled = 0` would
//! fail the `socket()` with ENOPROTOOPT). Counts upgrades per enabled cgroup and namespace.
//!
//! Its own object: aya cannot parse `fmod_ret` sections, so mptcpd's own loader loads this one
//! (`mptcpd::ebpf::fmod_ret`), with the maps below resolved to ones that aya created.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_task},
    macros::map,
    maps::{Array, HashMap},
};
use mptcpd_common::{
    IPPROTO_MPTCP,
    upgrade::{
        CGROUPS_MAX_ENTRIES, CgroupEntry, MAX_CGROUP_DEPTH, MODE_ENABLED, NETNS_MAX_ENTRIES,
        NetnsConfig,
    },
    upgrades_to_mptcp,
};
use mptcpd_ebpf::{atomic, kernel};

/// Cgroup id -> enabled or opted out, and sockets upgraded for it.
#[map]
static UPGRADE_CGROUPS: HashMap<u64, CgroupEntry> =
    HashMap::with_max_entries(CGROUPS_MAX_ENTRIES, 0);

/// The allow-list: namespace cookie -> sockets upgraded in it.
#[map]
static UPGRADE_NETNS: HashMap<u64, u64> = HashMap::with_max_entries(NETNS_MAX_ENTRIES, 0);

/// The kernel's field offsets from the task to its namespace cookie (from BTF, by user space).
#[map]
static UPGRADE_NETNS_CFG: Array<NetnsConfig> = Array::with_max_entries(1, 0);

/// `fmod_ret`: 0 lets `update_socket_protocol` run and return `protocol` unchanged.
const KEEP: i32 = 0;

/// `int update_socket_protocol(int family, int type, int protocol)`: the trampoline passes the
/// arguments as an array of u64 slots. (No `struct net *`: the namespace comes from the task.)
#[unsafe(no_mangle)]
#[unsafe(link_section = "fmod_ret/update_socket_protocol")]
extern "C" fn upgrade_socket(ctx: *const u64) -> i32 {
    // SAFETY: the trampoline's context holds one u64 slot per argument (3 here).
    let (family, sock_type, protocol) = unsafe { (*ctx, *ctx.add(1), *ctx.add(2)) };
    // The arguments are C ints: only the low 32 bits are defined.
    #[expect(clippy::cast_possible_truncation, reason = "C int arguments")]
    let (family, sock_type, protocol) = (family as u32, sock_type as u32, protocol as u32);
    if !upgrades_to_mptcp(family, sock_type, protocol) {
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
    let Some(config) = UPGRADE_NETNS_CFG.get_ptr_mut(0) else {
        return KEEP;
    };
    let cookie = current_netns_cookie(config);
    let allowed = if cookie == 0 {
        core::ptr::null_mut()
    } else {
        // Null when the namespace is not listed.
        UPGRADE_NETNS.get_ptr_mut(&cookie).unwrap_or_default()
    };
    if allowed.is_null() {
        // SAFETY: the array's only element, live while the program runs.
        unsafe { atomic::add(&raw mut (*config).not_allowed, 1) };
        return KEEP;
    }
    // SAFETY: live elements, as above; other CPUs and preempted runs add to them too, hence
    // the atomics.
    unsafe { atomic::add(&raw mut (*entry).upgraded, 1) };
    // SAFETY: as above.
    unsafe { atomic::add(allowed, 1) };
    #[expect(clippy::cast_possible_wrap, reason = "262 fits")]
    let mptcp = IPPROTO_MPTCP as i32;
    mptcp
}

/// The cookie of the current task's network namespace (`task->nsproxy->net_ns->net_cookie`,
/// at the offsets user space found in BTF), or 0 (no cookie is 0) if it cannot be read: not
/// configured, or an exiting task without `nsproxy`.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn current_netns_cookie(config: *const NetnsConfig) -> u64 {
    // SAFETY: the array element, live while the program runs.
    let NetnsConfig {
        ready,
        task_nsproxy,
        nsproxy_net_ns,
        net_cookie,
        not_allowed: _,
    } = unsafe { *config };
    if ready != 1 {
        return 0;
    }
    // SAFETY: a helper without arguments.
    let task = unsafe { bpf_get_current_task() };
    let nsproxy = kernel::read::<u64>(task, task_nsproxy);
    if nsproxy == 0 {
        return 0;
    }
    let net = kernel::read::<u64>(nsproxy, nsproxy_net_ns);
    if net == 0 {
        return 0;
    }
    kernel::read::<u64>(net, net_cookie)
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
