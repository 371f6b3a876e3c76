//! Kernel features mptcpd probes for: where the kernel has them they attach and fire. The
//! `vm_` tests run only in `cargo xtask vm-test`, which boots kernels that have kprobes and BPF
//! trampolines (the host kernel has neither); the runner states which kernel must have what.

use std::net::SocketAddr;

use mptcpd_bpf::{KernelFeatures, Probes, Support};
use mptcpd_common::Chain;
use mptcpd_tests::{features, net::netns::NetNs, skip, sockets::mptcp};

/// Opens MPTCP connections over loopback in a fresh namespace: each calls `tcp_connect`.
fn connect_a_few_times(n: usize) {
    let ns = NetNs::new("mptcpd-t-feat").unwrap();
    ns.run(|| {
        let listener = mptcp::listen(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..n {
            let _client = mptcp::connect(addr).unwrap();
            let _server = listener.accept().unwrap();
        }
    })
    .unwrap();
}

#[test]
fn probing_names_a_reason_for_every_missing_feature() {
    if !skip::require_root("probing_names_a_reason_for_every_missing_feature") {
        return;
    }
    let found = KernelFeatures::probe();
    for (feature, reason) in found.missing() {
        assert!(
            !reason.trim().is_empty(),
            "{feature} missing without a reason"
        );
        assert!(
            !features::expected(feature),
            "{feature} expected here, but: {reason}"
        );
        eprintln!("kernel feature {feature}: not available: {reason}");
    }
    for (feature, support) in [
        ("kprobe", &found.kprobe),
        ("fentry", &found.fentry),
        ("fmod_ret", &found.fmod_ret),
    ] {
        if features::expected(feature) {
            assert_eq!(support, &Support::Yes, "{feature}");
        }
    }
}

#[test]
fn vm_kprobe_attaches_and_fires() {
    if !skip::require_root("vm_kprobe_attaches_and_fires") {
        return;
    }
    let mut probes = Probes::load().unwrap();
    if let Err(e) = probes.attach_kprobe() {
        features::missing(
            "kprobe",
            "vm_kprobe_attaches_and_fires",
            &Chain(&e).to_string(),
        );
        return;
    }
    let before = probes.hits().unwrap();
    connect_a_few_times(3);
    let after = probes.hits().unwrap();
    assert!(after.kprobe >= before.kprobe + 3, "{before:?} -> {after:?}");
}

#[test]
fn vm_fentry_attaches_and_fires() {
    if !skip::require_root("vm_fentry_attaches_and_fires") {
        return;
    }
    let mut probes = Probes::load().unwrap();
    if let Err(e) = probes.attach_fentry() {
        features::missing(
            "fentry",
            "vm_fentry_attaches_and_fires",
            &Chain(&e).to_string(),
        );
        return;
    }
    let before = probes.hits().unwrap();
    connect_a_few_times(3);
    let after = probes.hits().unwrap();
    assert!(after.fentry >= before.fentry + 3, "{before:?} -> {after:?}");
}
