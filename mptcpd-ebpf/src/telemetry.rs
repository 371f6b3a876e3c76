//! Per-subflow telemetry, its own object (so that loading the daemon's other programs does not
//! allocate these maps): a `sock_ops` program on the observed cgroup. When a TCP socket that is
//! an MPTCP subflow reaches ESTABLISHED it enables the RTO, retransmission, state and RTT
//! callbacks for that socket only, and keeps a [`SubflowRecord`] per subflow, refreshed at each
//! callback; RTOs, retransmission bursts and closes also go to a ring buffer.
//!
//! The RTT callback (every ACK with an RTT sample) keeps the figures close to current while
//! the subflow sends; it only refreshes the record and emits nothing, and at most once per
//! `RTT_REFRESH_INTERVAL_NS` (10 ms) since the record's last refresh (`last_activity_ns`): one
//! timestamp compare instead of a rewrite at every ACK of a bulk transfer. The RTO,
//! retransmission and state callbacks always refresh. Exact figures on demand
//! come from the `iter/tcp` program beside it (`telemetry_refresh`), which user space runs
//! before it reads the records: no callback sees data arrive on a subflow that sends nothing.
#![no_std]
#![no_main]

// The panic handler and the license.
use mptcpd_ebpf as _;

use aya_ebpf::{
    bindings::{
        BPF_NOEXIST, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB,
        BPF_SOCK_OPS_RETRANS_CB, BPF_SOCK_OPS_RETRANS_CB_FLAG, BPF_SOCK_OPS_RTO_CB,
        BPF_SOCK_OPS_RTO_CB_FLAG, BPF_SOCK_OPS_RTT_CB, BPF_SOCK_OPS_RTT_CB_FLAG,
        BPF_SOCK_OPS_STATE_CB, BPF_SOCK_OPS_STATE_CB_FLAG, bpf_sock_ops,
    },
    helpers::generated::{
        bpf_get_netns_cookie, bpf_get_socket_cookie, bpf_ktime_get_ns, bpf_skc_to_mptcp_sock,
        bpf_skc_to_tcp_sock,
    },
    macros::{map, sock_ops},
    maps::{Array, LruHashMap, RingBuf},
    programs::SockOpsContext,
};
use mptcpd_common::telemetry::{
    EVENT_CLOSED, EVENT_RESET, EVENT_RETRANS_BURST, EVENT_RTO, EVENTS_BYTE_SIZE,
    MPTCP_RETRANS_MAX_ENTRIES, RESET_NONE, RESET_REASON_UNKNOWN, RESET_SENT,
    RETRANS_BURST_THRESHOLD, RETRANS_BURST_WINDOW_NS, RTT_REFRESH_INTERVAL_NS, STAT_CREATED,
    STAT_EVENTS_LOST, STAT_EVICTED, STAT_INSERT_FAILED, STAT_REMOVED, STAT_SLOTS,
    SUBFLOWS_MAX_ENTRIES, SubflowRecord, TelemetryConfig, TelemetryEvent, closed_abruptly,
    tcp_state,
};
use mptcpd_ebpf::atomic;

// The on-demand refresh, which shares the records.
mod telemetry_refresh;
// The other telemetry sources (tracepoints), each loaded only where its hook exists.
#[path = "telemetry/resets.rs"]
mod resets;
#[path = "telemetry/retrans.rs"]
mod retrans;
#[path = "telemetry/sched.rs"]
mod sched;

/// Reads a context field with one load at a constant offset: the verifier rejects loads
/// through a context pointer that LLVM moved (`dereference of modified ctx ptr`).
macro_rules! ctx_field {
    ($ops:expr, $($field:tt)+) => {
        // SAFETY: the context is valid while the program runs.
        unsafe { core::ptr::read_volatile(&raw const (*$ops).$($field)+) }
    };
}

/// The four words of a context address, each loaded on its own (see [`ctx_field`]).
macro_rules! ctx_addr6 {
    ($ops:expr, $field:ident) => {
        [
            ctx_field!($ops, $field[0]),
            ctx_field!($ops, $field[1]),
            ctx_field!($ops, $field[2]),
            ctx_field!($ops, $field[3]),
        ]
    };
}

/// Socket cookie -> the subflow's record. LRU: a subflow whose close was missed (the program
/// attached after it closed, a full map) cannot pin an entry for ever.
#[map]
static TELEMETRY_SUBFLOWS: LruHashMap<u64, SubflowRecord> =
    LruHashMap::with_max_entries(SUBFLOWS_MAX_ENTRIES, 0);

#[map]
static TELEMETRY_EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTE_SIZE, 0);

/// MPTCP token -> MPTCP-level retransmission rounds, where a kernel's `MPTCP_INFO` lacks them.
/// LRU: a closed connection's count ages out.
#[map]
static TELEMETRY_MPTCP_RETRANS: LruHashMap<u32, u64> =
    LruHashMap::with_max_entries(MPTCP_RETRANS_MAX_ENTRIES, 0);

/// Counters (`STAT_*`), added to atomically (all CPUs, preemptible programs).
#[map]
static TELEMETRY_STATS: Array<u64> = Array::with_max_entries(STAT_SLOTS, 0);

/// The kernel's field offsets (from BTF, by user space).
#[map]
static TELEMETRY_CFG: Array<TelemetryConfig> = Array::with_max_entries(1, 0);

/// The callbacks this program needs on a subflow.
const SUBFLOW_CB_FLAGS: u32 = BPF_SOCK_OPS_RTO_CB_FLAG
    | BPF_SOCK_OPS_RETRANS_CB_FLAG
    | BPF_SOCK_OPS_STATE_CB_FLAG
    | BPF_SOCK_OPS_RTT_CB_FLAG;

/// `-EEXIST`: the key is there already.
const EEXIST: i32 = -17;

/// `-ENOENT`: no such key.
const ENOENT: i32 = -2;

/// `sock_ops` programs return 1 (0 would make some callers treat the op as failed).
const OK: u32 = 1;

#[sock_ops]
#[expect(
    clippy::needless_pass_by_value,
    reason = "aya's sock_ops macro hands the context over by value"
)]
fn subflow_ops(ctx: SockOpsContext) -> u32 {
    let ops = ctx.ops;
    match ctx.op() {
        BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB | BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB => {
            if let Some(msk) = mptcp_subflow(ops) {
                // Fails only for a non-full socket, which has no subflow to watch.
                let _ignored = ctx.set_cb_flags(SUBFLOW_CB_FLAGS.cast_signed());
                let record = fresh_record(ops, msk);
                let _created = insert(&record);
            }
        }
        BPF_SOCK_OPS_RTT_CB => {
            if let Lookup::Found(record) = record_of(ops) {
                // SAFETY: a live map element while the program runs; a helper without
                // arguments.
                let (last, now) = unsafe { ((*record).last_activity_ns, bpf_ktime_get_ns()) };
                if now.wrapping_sub(last) >= RTT_REFRESH_INTERVAL_NS {
                    refresh(record, ops);
                }
            }
        }
        BPF_SOCK_OPS_RTO_CB => {
            if let Lookup::Found(record) = record_of(ops) {
                refresh(record, ops);
                // SAFETY: a live element of the map while the program runs.
                unsafe { (*record).rto_count = (*record).rto_count.wrapping_add(1) };
                emit(EVENT_RTO, ctx.arg(0), record);
            }
        }
        BPF_SOCK_OPS_RETRANS_CB => {
            if let Lookup::Found(record) = record_of(ops) {
                refresh(record, ops);
                count_retransmission(record);
            }
        }
        BPF_SOCK_OPS_STATE_CB => {
            let (old, new) = (ctx.arg(0), ctx.arg(1));
            if new == tcp_state::CLOSE {
                close(ops, old);
            }
        }
        _ => {}
    }
    OK
}

/// A subflow's last callback: its close event, and its record goes (counted removed).
///
/// The LRU can take the record during this callback: another socket's callback, on the other
/// CPU, that inserts into a full map takes an entry, even one just looked up (the kernel
/// ignores the reference bit when every candidate has it; seen in a 4-entry map on 6.1, whose
/// LRU moves up to 128 free entries to one CPU's list). The record is gone at this close all
/// the same: counted removed, so that every record created goes either at its subflow's close
/// or to the LRU while the subflow lives (counted evicted when the subflow is next seen).
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn close(ops: *mut bpf_sock_ops, old: u32) {
    match record_of(ops) {
        Lookup::Found(record) => {
            report_close(record, ops, old);
            match TELEMETRY_SUBFLOWS.remove(&socket_cookie(ops)) {
                // ENOENT: the LRU took it since the lookup.
                Ok(()) | Err(ENOENT) => stat(STAT_REMOVED),
                Err(_) => {}
            }
        }
        Lookup::Lost(msk) => {
            let mut record = fresh_record(ops, msk);
            report_close(&raw mut record, ops, old);
            stat(STAT_REMOVED);
        }
        Lookup::Absent => {}
    }
}

/// Refreshes `record` at a close from `old` and emits the close event.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn report_close(record: *mut SubflowRecord, ops: *mut bpf_sock_ops, old: u32) {
    refresh(record, ops);
    // SAFETY: a live map element or our stack.
    unsafe { (*record).state = tcp_state::CLOSE };
    let kind = if closed_abruptly(old) {
        mark_local_abort(record, ops);
        EVENT_RESET
    } else {
        EVENT_CLOSED
    };
    emit(kind, old, record);
}

/// The kernel address of the callback socket's MPTCP connection if the socket is a TCP socket
/// that is an MPTCP subflow (`bpf_skc_to_mptcp_sock` gives the connection only for those).
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn mptcp_subflow(ops: *mut bpf_sock_ops) -> Option<u64> {
    // The verifier turns this load into the socket pointer or null.
    let sk = ctx_field!(ops, __bindgen_anon_2.sk);
    if sk.is_null() {
        return None;
    }
    // SAFETY: a non-null socket from the context, the helper's argument type.
    let msk = unsafe { bpf_skc_to_mptcp_sock(sk.cast()) };
    (!msk.is_null()).then_some(msk as u64)
}

/// The `u32` at kernel address `base + offset` (offset from BTF), or 0 if unreadable or the
/// offsets are not configured.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn read_kernel_u32(base: u64, offset: u64) -> u32 {
    if offset == 0 {
        return 0;
    }
    // Bounded, so that the verifier accepts the sum with a BTF pointer (struct offsets are far
    // below 64 KiB).
    mptcpd_ebpf::kernel::read::<u32>(base, offset & 0xffff)
}

/// The configured offsets, or all zero.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn config() -> TelemetryConfig {
    match TELEMETRY_CFG.get(0) {
        Some(config) if config.ready == 1 => *config,
        _ => TelemetryConfig::default(),
    }
}

/// A socket's record as a callback finds it.
enum Lookup {
    /// The record, a live map element.
    Found(*mut SubflowRecord),
    /// An MPTCP subflow (its connection's kernel address) whose record the LRU took, recreated
    /// and taken again by another CPU's insert before this callback could use it. Not counted
    /// evicted here: the subflow's next callback counts it when it recreates the record.
    Lost(u64),
    /// No subflow of ours, or the map refused the record.
    Absent,
}

/// The socket's record. An MPTCP subflow without a record lost it to the LRU: counted and
/// recreated.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn record_of(ops: *mut bpf_sock_ops) -> Lookup {
    let cookie = socket_cookie(ops);
    if let Some(record) = TELEMETRY_SUBFLOWS.get_ptr_mut(&cookie) {
        return Lookup::Found(record);
    }
    // Another program on the cgroup may have enabled these callbacks for a plain TCP socket.
    let Some(msk) = mptcp_subflow(ops) else {
        return Lookup::Absent;
    };
    stat(STAT_EVICTED);
    let record = fresh_record(ops, msk);
    let created = insert(&record);
    match TELEMETRY_SUBFLOWS.get_ptr_mut(&cookie) {
        Some(record) => Lookup::Found(record),
        None if created => Lookup::Lost(msk),
        None => Lookup::Absent,
    }
}

/// Inserts `record` if its subflow has none; whether it did.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn insert(record: &SubflowRecord) -> bool {
    // NOEXIST: a record already there (an ESTABLISHED callback after an eviction's recreation)
    // keeps its counts.
    match TELEMETRY_SUBFLOWS.insert(&record.cookie, record, u64::from(BPF_NOEXIST)) {
        Ok(()) => {
            stat(STAT_CREATED);
            true
        }
        Err(EEXIST) => false,
        Err(_) => {
            stat(STAT_INSERT_FAILED);
            false
        }
    }
}

#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn socket_cookie(ops: *mut bpf_sock_ops) -> u64 {
    // SAFETY: the helper takes the program's context.
    unsafe { bpf_get_socket_cookie(ops.cast()) }
}

/// A record for the callback's socket: its identity and current figures.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn fresh_record(ops: *mut bpf_sock_ops, msk: u64) -> SubflowRecord {
    let family = ctx_field!(ops, family);
    let (local_addr, remote_addr) = if family == mptcpd_common::AF_INET {
        (
            [ctx_field!(ops, local_ip4), 0, 0, 0],
            [ctx_field!(ops, remote_ip4), 0, 0, 0],
        )
    } else {
        (ctx_addr6!(ops, local_ip6), ctx_addr6!(ops, remote_ip6))
    };
    // SAFETY: the helpers take the program's context.
    let (cookie, netns_cookie) = unsafe {
        (
            bpf_get_socket_cookie(ops.cast()),
            bpf_get_netns_cookie(ops.cast()),
        )
    };
    let mut record = SubflowRecord {
        reset_reason: RESET_REASON_UNKNOWN,
        cookie,
        netns_cookie,
        family,
        local_addr,
        remote_addr,
        local_port: ctx_field!(ops, local_port),
        // The kernel puts the network-order port in the upper 16 bits.
        remote_port: u32::from_be(ctx_field!(ops, remote_port)),
        token: read_kernel_u32(msk, config().mptcp_sock_token),
        ..SubflowRecord::default()
    };
    refresh(&raw mut record, ops);
    record
}

/// Copies the socket's current figures into `record`.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn refresh(record: *mut SubflowRecord, ops: *mut bpf_sock_ops) {
    // SAFETY: `record` is a live map element or our stack.
    let r = unsafe { &mut *record };
    r.state = ctx_field!(ops, state);
    // The kernel keeps srtt << 3.
    r.srtt_us = ctx_field!(ops, srtt_us) >> 3;
    r.rtt_min_us = ctx_field!(ops, rtt_min);
    r.snd_cwnd = ctx_field!(ops, snd_cwnd);
    r.bytes_acked = ctx_field!(ops, bytes_acked);
    r.bytes_received = ctx_field!(ops, bytes_received);
    r.segs_in = ctx_field!(ops, segs_in);
    r.segs_out = ctx_field!(ops, segs_out);
    r.total_retrans = ctx_field!(ops, total_retrans);
    let sk = ctx_field!(ops, __bindgen_anon_2.sk);
    if !sk.is_null() {
        // A BTF pointer to the same socket: the verifier forbids arithmetic on `sk` itself.
        // SAFETY: a non-null socket from the context, the helper's argument type.
        let tp = unsafe { bpf_skc_to_tcp_sock(sk.cast()) };
        if !tp.is_null() {
            // The kernel keeps four times the variance (`tcpi_rttvar` is `mdev_us >> 2`).
            r.rttvar_us = read_kernel_u32(tp as u64, config().tcp_sock_mdev_us) >> 2;
        }
    }
    // SAFETY: a helper without arguments.
    r.last_activity_ns = unsafe { bpf_ktime_get_ns() };
}

/// An abrupt close that no reset tracepoint marked, with no socket error: a local abort
/// (`tcp_disconnect`, a close with `SO_LINGER` 0 or unread data), after which the kernel sends
/// the reset. A timeout or a received reset leaves `sk_err` set.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn mark_local_abort(record: *mut SubflowRecord, ops: *mut bpf_sock_ops) {
    // SAFETY: a live map element.
    let r = unsafe { &mut *record };
    let offset = config().sock_sk_err;
    if r.reset_direction != RESET_NONE || offset == 0 {
        return;
    }
    let sk = ctx_field!(ops, __bindgen_anon_2.sk);
    if sk.is_null() {
        return;
    }
    // SAFETY: a non-null socket from the context, the helper's argument type.
    let tp = unsafe { bpf_skc_to_tcp_sock(sk.cast()) };
    if !tp.is_null() && read_kernel_u32(tp as u64, offset) == 0 {
        r.reset_direction = RESET_SENT;
        r.reset_reason = RESET_REASON_UNKNOWN;
    }
}

/// Counts one retransmission in the burst window; the one that reaches the threshold emits.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn count_retransmission(record: *mut SubflowRecord) {
    // SAFETY: a live map element. Concurrent callbacks of one socket run under its lock.
    let r = unsafe { &mut *record };
    let now = r.last_activity_ns;
    if now.wrapping_sub(r.burst_start_ns) > RETRANS_BURST_WINDOW_NS {
        r.burst_start_ns = now;
        r.burst_retrans = 0;
    }
    r.burst_retrans = r.burst_retrans.wrapping_add(1);
    if r.burst_retrans == RETRANS_BURST_THRESHOLD {
        emit(EVENT_RETRANS_BURST, r.burst_retrans, record);
    }
}

/// Pushes an event with a copy of the record; a full ring buffer is counted.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn emit(kind: u32, detail: u32, record: *const SubflowRecord) {
    let Some(mut entry) = TELEMETRY_EVENTS.reserve::<TelemetryEvent>(0) else {
        stat(STAT_EVENTS_LOST);
        return;
    };
    let event = entry.as_mut_ptr();
    // Field by field: no 152-byte event on the stack.
    // SAFETY: the reservation holds a whole event; `record` is a live map element.
    unsafe { (&raw mut (*event).kind).write(kind) };
    // SAFETY: as above.
    unsafe { (&raw mut (*event).detail).write(detail) };
    // SAFETY: as above.
    unsafe { (&raw mut (*event).time_ns).write((*record).last_activity_ns) };
    // SAFETY: as above.
    unsafe { core::ptr::copy_nonoverlapping(record, &raw mut (*event).record, 1) };
    entry.submit(0);
}

#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn stat(slot: u32) {
    if let Some(count) = TELEMETRY_STATS.get_ptr_mut(slot) {
        // SAFETY: a live array element; other CPUs add too.
        unsafe { atomic::add(count, 1) };
    }
}
