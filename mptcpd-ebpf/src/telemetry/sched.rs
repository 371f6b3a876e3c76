//! How often the MPTCP packet scheduler looks at each subflow: a `tp_btf` program on
//! `mptcp:mptcp_subflow_get_send`, which the kernel fires once per subflow it evaluates
//! (`struct mptcp_subflow_context *`). The subflow's socket and its cookie are read at offsets
//! user space found in BTF; the cookie exists once `sock_ops` asked for it (every subflow with
//! a record).

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use mptcpd_ebpf::kernel::read;

#[btf_tracepoint(function = "mptcp_subflow_get_send")]
#[expect(
    clippy::needless_pass_by_value,
    reason = "aya's tp_btf macro hands the context over by value"
)]
fn sched_get_send(ctx: BtfTracePointContext) -> i32 {
    let subflow: u64 = ctx.arg(0);
    let config = crate::config();
    if config.subflow_tcp_sock == 0 || config.sock_skc_cookie == 0 {
        return 0;
    }
    // Bounded offsets: the verifier accepts the sum with a BTF pointer.
    let ssk = read::<u64>(subflow, config.subflow_tcp_sock & 0xffff);
    if ssk == 0 {
        return 0;
    }
    let cookie = read::<u64>(ssk, config.sock_skc_cookie & 0xffff);
    if let Some(record) = crate::TELEMETRY_SUBFLOWS.get_ptr_mut(&cookie) {
        // SAFETY: a live map element; the scheduler runs under the connection's lock, the only
        // writer of this count.
        unsafe { (*record).sched_evaluated = (*record).sched_evaluated.wrapping_add(1) };
    }
    0
}
