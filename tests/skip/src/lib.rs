//! Skipping a test that cannot run here (no root, no kernel feature, no tool): a visible line
//! outside CI, a failure with `CI=true`, so CI never passes on tests that did not run.
//!
//! Its own crate so that every test of the workspace counts skips the same way: the harness
//! (`mptcpd-tests`) re-exports it, and crates that cannot depend on the harness (the daemon's
//! unit tests, xtask's) take it as a dev-dependency. `cargo xtask test` counts the lines.

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
