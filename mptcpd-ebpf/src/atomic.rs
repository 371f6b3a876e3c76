//! An atomic add on a map value: `lock *(u64 *)(dst) += n` (`BPF_STX | BPF_ATOMIC | BPF_DW`,
//! `BPF_ADD`). The BPF target offers no `AtomicU64::fetch_add`, but LLVM lowers the intrinsic
//! to that instruction. A plain `+= 1` loses counts: a program can be preempted between its
//! load and its store by another run of it on the same CPU (`preempt=full`).

/// Adds `n` to `*dst` atomically.
///
/// # Safety
/// `dst` points to a live, aligned `u64` (a map value) for the duration of the call.
#[expect(clippy::inline_always, reason = "our loader links no BPF-to-BPF calls")]
#[inline(always)]
pub unsafe fn add(dst: *mut u64, n: u64) {
    // SAFETY: the caller's contract; the result (the old value) is unused, so LLVM emits the
    // add without BPF_FETCH.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            dst, n,
        );
    }
}
