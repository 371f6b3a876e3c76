//! Skipping tests that lack root or a kernel feature: a visible line outside CI, a failure with
//! `CI=true`, so CI never passes on tests that did not run (the line and the rule are
//! `mptcpd-test-skip`'s, shared with the crates that cannot depend on this harness).

pub use mptcpd_test_skip::{in_ci, skip};

/// `true` when running as root; otherwise skips `test` and returns `false`.
#[must_use]
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip(test, "needs root (namespaces, BPF, cgroups)");
    }
    root
}
