//! Kernel-feature probes, a separate object from the daemon's programs: each counts its hits,
//! so that a probe proves the program type both attaches and fires.
#![no_std]
#![no_main]

// The panic handler and the license.
use mptcpd_ebpf as _;

use aya_ebpf::{
    macros::{fentry, kprobe, map},
    maps::PerCpuArray,
    programs::{FEntryContext, ProbeContext},
};
use mptcpd_common::probes::{FENTRY_SLOT, KPROBE_SLOT, SLOTS};

#[map]
static PROBE_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(SLOTS, 0);

fn hit(slot: u32) {
    if let Some(count) = PROBE_HITS.get_ptr_mut(slot) {
        // SAFETY: this CPU's slot of an array element, written by nothing else meanwhile.
        unsafe { *count += 1 };
    }
}

#[kprobe]
fn probe_kprobe(_ctx: ProbeContext) -> u32 {
    hit(KPROBE_SLOT);
    0
}

#[fentry(function = "tcp_connect")]
fn probe_fentry(_ctx: FEntryContext) -> i32 {
    hit(FENTRY_SLOT);
    0
}
