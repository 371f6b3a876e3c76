//! mptcpd's eBPF programs. One object, embedded in the daemon; each program in its own module.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![expect(
    internal_features,
    reason = "atomic_xadd: the BPF target has no fetch_add"
)]

mod atomic;
mod sock_create;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // The verifier proves the programs cannot panic; this only satisfies `no_std`.
    loop {}
}

/// GPL-compatible, so the kernel allows every helper the programs may need.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual BSD/GPL\0";
