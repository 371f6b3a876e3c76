//! What mptcpd's eBPF objects share: the panic handler, the license, the atomic add, the
//! read of a kernel field at a BTF offset.
//! For the host this library is empty: it lets the daemon name `mptcpd-ebpf` as a build
//! dependency, so that cargo rebuilds the embedded objects when these sources change.
#![no_std]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(
    target_arch = "bpf",
    expect(
        internal_features,
        reason = "atomic_xadd: the BPF target has no fetch_add"
    )
)]

#[cfg(target_arch = "bpf")]
pub mod atomic;
#[cfg(target_arch = "bpf")]
pub mod kernel;

#[cfg(all(target_arch = "bpf", not(test)))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // The verifier proves the programs cannot panic; this only satisfies `no_std`.
    loop {}
}

/// GPL-compatible: tracing programs may only use GPL helpers otherwise (and the kernel then
/// allows every helper the programs may need).
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
pub static LICENSE: [u8; 13] = *b"Dual BSD/GPL\0";
