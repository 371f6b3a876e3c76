//! `iter/tcp`: refreshes the record of each TCP socket that has one from the socket itself,
//! when user space reads an iterator fd (before it reads the records). See
//! `mptcpd_common::telemetry_refresh`.

use aya_ebpf::{
    helpers::generated::{bpf_get_socket_cookie, bpf_skc_to_tcp_sock},
    macros::map,
    maps::Array,
};
use mptcpd_common::telemetry_refresh::TcpSockOffsets;
use mptcpd_ebpf::kernel;

use super::TELEMETRY_SUBFLOWS;

/// The kernel's `tcp_sock` offsets (from BTF, by user space).
#[map]
static TELEMETRY_TCP_OFFSETS: Array<TcpSockOffsets> = Array::with_max_entries(1, 0);

/// Iterator programs return 0 (1 would make the kernel show the same socket again).
const NEXT: i32 = 0;

/// `struct bpf_iter__tcp { meta; sk_common; uid; }`, each member in an 8-byte slot.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/tcp")]
extern "C" fn subflow_refresh(ctx: *const u64) -> i32 {
    // One 8-byte load at a constant offset: the verifier types it as the socket or null.
    // SAFETY: the iterator's context holds the three slots.
    let sk = unsafe { core::ptr::read_volatile(ctx.add(1).cast::<*mut core::ffi::c_void>()) };
    if sk.is_null() {
        return NEXT;
    }
    // Full TCP sockets only: request and TIME_WAIT sockets carry no figures (and no record).
    // SAFETY: a non-null socket from the context, the helper's argument type.
    let tp = unsafe { bpf_skc_to_tcp_sock(sk) };
    if tp.is_null() {
        return NEXT;
    }
    // In tracing programs this helper takes a socket pointer (`bpf_get_socket_ptr_cookie`).
    // SAFETY: a full socket, as above.
    let cookie = unsafe { bpf_get_socket_cookie(tp.cast()) };
    let Some(record) = TELEMETRY_SUBFLOWS.get_ptr_mut(&cookie) else {
        return NEXT;
    };
    let Some(at) = TELEMETRY_TCP_OFFSETS.get(0) else {
        return NEXT;
    };
    if at.ready != 1 {
        return NEXT;
    }
    let base = tp as u64;
    // Bounded offsets, so that the verifier accepts the sums with a BTF pointer (struct
    // offsets are far below 64 KiB). `last_activity_ns` stays: reading is no activity.
    let field = |offset: u64| offset & 0xffff;
    // SAFETY: a live element of the map while the program runs; the socket's callbacks, which
    // write it too, run under the socket lock that the iterator holds (Linux 5.17+; before,
    // a figure may be one callback old).
    let r = unsafe { &mut *record };
    r.state = u32::from(kernel::read::<u8>(base, field(at.state)));
    r.srtt_us = kernel::read::<u32>(base, field(at.srtt_us)) >> 3;
    r.rttvar_us = kernel::read::<u32>(base, field(at.mdev_us)) >> 2;
    r.rtt_min_us = kernel::read::<u32>(base, field(at.rtt_min_us));
    r.snd_cwnd = kernel::read::<u32>(base, field(at.snd_cwnd));
    r.bytes_acked = kernel::read::<u64>(base, field(at.bytes_acked));
    r.bytes_received = kernel::read::<u64>(base, field(at.bytes_received));
    r.segs_in = kernel::read::<u32>(base, field(at.segs_in));
    r.segs_out = kernel::read::<u32>(base, field(at.segs_out));
    r.total_retrans = kernel::read::<u32>(base, field(at.total_retrans));
    NEXT
}
