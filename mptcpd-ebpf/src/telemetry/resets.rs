//! Who reset a subflow, and why: `tp_btf` programs on `tcp:tcp_send_reset` and
//! `tcp:tcp_receive_reset` mark the record of the socket, if it has one. Both fire before the
//! kernel closes the socket where it resets it (`tcp_reset` on receipt; `mptcp_subflow_reset`,
//! `tcp_abort` on sending), so the close's `EVENT_RESET` carries the mark. A local abort
//! (close with `SO_LINGER` 0 or unread data, `tcp_disconnect`) closes first and sends after:
//! the `sock_ops` program marks those itself (sent, reason unknown).

use aya_ebpf::{
    helpers::generated::bpf_get_socket_cookie, macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use mptcpd_common::telemetry::{RESET_REASON_UNKNOWN, RESET_RECEIVED, RESET_SENT};

/// `tcp_send_reset(const struct sock *sk, const struct sk_buff *skb, enum sk_rst_reason
/// reason)`, Linux 6.10+ (the verifier refuses the third argument before).
#[btf_tracepoint(function = "tcp_send_reset")]
#[expect(
    clippy::needless_pass_by_value,
    reason = "aya's tp_btf macro hands the context over by value"
)]
fn reset_sent_why(ctx: BtfTracePointContext) -> i32 {
    let reason: u32 = ctx.arg(2);
    mark(ctx.arg(0), RESET_SENT, reason);
    0
}

/// `tcp_send_reset(const struct sock *sk, const struct sk_buff *skb)`, before 6.10.
#[btf_tracepoint(function = "tcp_send_reset")]
#[expect(
    clippy::needless_pass_by_value,
    reason = "aya's tp_btf macro hands the context over by value"
)]
fn reset_sent(ctx: BtfTracePointContext) -> i32 {
    mark(ctx.arg(0), RESET_SENT, RESET_REASON_UNKNOWN);
    0
}

/// `tcp_receive_reset(struct sock *sk)`: no reason on any kernel.
#[btf_tracepoint(function = "tcp_receive_reset")]
#[expect(
    clippy::needless_pass_by_value,
    reason = "aya's tp_btf macro hands the context over by value"
)]
fn reset_received(ctx: BtfTracePointContext) -> i32 {
    mark(ctx.arg(0), RESET_RECEIVED, RESET_REASON_UNKNOWN);
    0
}

/// Marks the record of socket `sk` (null for a reset sent without a socket).
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
fn mark(sk: *mut core::ffi::c_void, direction: u32, reason: u32) {
    if sk.is_null() {
        return;
    }
    // SAFETY: a socket the tracepoint hands over (`bpf_get_socket_ptr_cookie` for tracing
    // programs takes it as is).
    let cookie = unsafe { bpf_get_socket_cookie(sk) };
    if let Some(record) = crate::TELEMETRY_SUBFLOWS.get_ptr_mut(&cookie) {
        // SAFETY: a live map element; the socket's lock is held by the caller.
        unsafe {
            (*record).reset_direction = direction;
            (*record).reset_reason = reason;
        }
    }
}
