//! Tests that need a kernel feature: the runner says which features the kernel must have
//! (`MPTCPD_EXPECT_FEATURES`, set by `cargo xtask vm-test` per kernel); a missing feature that was
//! expected fails the test, one that was not is skipped with the kernel's reason.

/// Comma-separated features the kernel under test must have.
pub const EXPECT_ENV: &str = "MPTCPD_EXPECT_FEATURES";

/// Whether the runner expects `feature` on this kernel.
#[must_use]
pub fn expected(feature: &str) -> bool {
    std::env::var(EXPECT_ENV).is_ok_and(|list| list.split(',').any(|f| f.trim() == feature))
}

/// Reports that `feature` is missing for `test`: a failure if it was expected, else a skip.
///
/// # Panics
/// When the feature was expected, or under `CI=true` (see [`crate::skip::skip`]).
pub fn missing(feature: &str, test: &str, reason: &str) {
    assert!(
        !expected(feature),
        "{test}: this kernel was expected to support {feature}, but: {reason}"
    );
    crate::skip::skip(test, &format!("no {feature} here: {reason}"));
}
