//! `cgroup/sock_create` observer: counts the stream sockets created as TCP and as MPTCP, per
//! cgroup of the creating task. It never denies a socket.
//!
//! The hook runs after the kernel chose the protocol (`protocol` 0 already reads as TCP), so it
//! can only observe: upgrading needs `fmod_ret/update_socket_protocol`.

use aya_ebpf::{
    bindings::BPF_ANY, helpers::bpf_get_current_cgroup_id, macros::cgroup_sock, macros::map,
    maps::LruPerCpuHashMap, programs::SockContext,
};
use aya_log_ebpf::{debug, error};
use mptcpd_common::{IPPROTO_MPTCP, IPPROTO_TCP, SOCK_COUNTS_MAX_ENTRIES, SOCK_STREAM, SockCounts};

/// Per cgroup id, per CPU (few cache-line transfers); LRU evicts cgroups gone quiet.
#[map]
static SOCK_COUNTS: LruPerCpuHashMap<u64, SockCounts> =
    LruPerCpuHashMap::with_max_entries(SOCK_COUNTS_MAX_ENTRIES, 0);

/// Verdict that lets the socket be created.
const ALLOW: i32 = 1;

#[cgroup_sock(sock_create)]
#[expect(
    clippy::needless_pass_by_value,
    reason = "aya's cgroup_sock macro hands the context over by value"
)]
fn sock_create_observer(ctx: SockContext) -> i32 {
    // SAFETY: the kernel passes a valid `bpf_sock` for the duration of the program.
    let (sock_type, protocol) = unsafe { ((*ctx.sock).type_, (*ctx.sock).protocol) };
    if sock_type != SOCK_STREAM {
        return ALLOW;
    }
    let mptcp = match protocol {
        IPPROTO_TCP => false,
        IPPROTO_MPTCP => true,
        _ => return ALLOW,
    };
    // SAFETY: a helper without arguments, available to cgroup programs.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    if let Some(counts) = SOCK_COUNTS.get_ptr_mut(&cgroup) {
        // SAFETY: the pointer is this CPU's slot of a live element. The program can be
        // preempted on this CPU by another run of it (`preempt=full`): add atomically.
        unsafe {
            let slot = if mptcp {
                &raw mut (*counts).mptcp
            } else {
                &raw mut (*counts).tcp
            };
            mptcpd_ebpf::atomic::add(slot, 1);
        }
    } else {
        debug!(&ctx, "first stream socket in cgroup {}", cgroup);
        let first = SockCounts {
            tcp: u64::from(!mptcp),
            mptcp: u64::from(mptcp),
        };
        // An update of a per-CPU map writes this CPU's slot only, so if another CPU inserted
        // the key meanwhile, BPF_ANY still counts this socket exactly once.
        if let Err(errno) = SOCK_COUNTS.insert(&cgroup, &first, u64::from(BPF_ANY)) {
            error!(
                &ctx,
                "SOCK_COUNTS update for cgroup {} failed: {}", cgroup, errno
            );
        }
    }
    ALLOW
}
