//! Reading a kernel field at an offset user space found in the kernel's BTF.

use aya_ebpf::helpers::generated::bpf_probe_read_kernel;

/// The `T` at kernel address `base + offset`, or `T::default()` if it cannot be read.
#[expect(
    clippy::inline_always,
    reason = "our fmod_ret loader links no BPF-to-BPF calls"
)]
#[expect(
    clippy::cast_possible_truncation,
    reason = "T is a kernel field: a few bytes, far below u32::MAX"
)]
#[inline(always)]
#[must_use]
pub fn read<T: Copy + Default>(base: u64, offset: u64) -> T {
    // Initialised: the helper zeroes it on failure, but the verifier wants it written first.
    let mut value = T::default();
    // SAFETY: the helper checks the source address; the destination is a `T` on our stack.
    let rc = unsafe {
        bpf_probe_read_kernel(
            (&raw mut value).cast(),
            size_of::<T>() as u32,
            base.wrapping_add(offset) as *const core::ffi::c_void,
        )
    };
    if rc == 0 { value } else { T::default() }
}
