//! Skipping tests that lack root or a kernel feature: a visible line outside CI, a failure with
//! `CI=true`, so CI never passes on tests that did not run.

use std::io::Write as _;

/// Whether this run is CI (`CI=true`).
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips `test` for `reason`: prints `skipped: TEST: REASON` on stderr (past libtest's capture,
/// so `cargo xtask test` can count it), or panics under CI.
///
/// # Panics
/// With `CI=true`.
pub fn skip(test: &str, reason: &str) {
    assert!(!in_ci(), "{test}: {reason} (CI=true: a skipped test fails)");
    // Written to the real stderr on purpose: libtest captures only the print macros.
    let _ignored = writeln!(std::io::stderr(), "skipped: {test}: {reason}");
}

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
