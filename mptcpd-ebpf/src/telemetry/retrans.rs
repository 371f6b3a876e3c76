//! MPTCP-level retransmissions where `MPTCP_INFO` lacks them (`mptcpi_retransmits` is Linux
//! 6.5+): a kprobe on `__mptcp_retrans(struct sock *sk)`, the MPTCP socket's retransmission
//! round (the retransmit timer's and the worker's), counting per connection token. Loaded only
//! on such kernels; a round that found nothing to resend counts too (the kprobe sees the call,
//! not what it sent).

use aya_ebpf::{bindings::BPF_NOEXIST, macros::kprobe, programs::ProbeContext};
use mptcpd_ebpf::atomic;

#[kprobe]
#[expect(
    clippy::needless_pass_by_value,
    reason = "aya's kprobe macro hands the context over by value"
)]
fn mptcp_retrans(ctx: ProbeContext) -> u32 {
    let Some(msk) = ctx.arg::<u64>(0) else {
        return 0;
    };
    let token = crate::read_kernel_u32(msk, crate::config().mptcp_sock_token);
    if token == 0 {
        return 0;
    }
    if let Some(count) = crate::TELEMETRY_MPTCP_RETRANS.get_ptr_mut(&token) {
        // SAFETY: a live map element; the worker and the release callback may race.
        unsafe { atomic::add(count, 1) };
        return 0;
    }
    // Another CPU may insert first: NOEXIST keeps its count (one round lost at worst).
    let _ignored = crate::TELEMETRY_MPTCP_RETRANS.insert(&token, &1, u64::from(BPF_NOEXIST));
    0
}
