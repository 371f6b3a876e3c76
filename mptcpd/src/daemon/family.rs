//! Waiting for the `mptcp_pm` generic-netlink family: as the C daemon, warn when it has not
//! appeared after 10 s and keep waiting.

use mptcpd_common::Chain;
use std::{future::Future, time::Duration};

use tokio::time::Instant;

use mptcp_pm::{PmClient, PmError};

/// When the C daemon warns (`FAMILY_TIMEOUT_SECONDS`).
const WARN_AFTER: Duration = Duration::from_secs(10);
/// How often the family is asked for meanwhile.
const RETRY: Duration = Duration::from_millis(500);

/// A client once the family exists.
pub(super) async fn connect() -> Result<PmClient, PmError> {
    wait_for(PmClient::connect, WARN_AFTER, || {
        tracing::warn!(
            "the mptcp_pm generic netlink family has not appeared after {} s; still waiting",
            WARN_AFTER.as_secs()
        );
    })
    .await
}

/// Calls `attempt` until it returns anything but "family unavailable"; `warn` runs once if
/// that takes `warn_after` or longer.
async fn wait_for<T, F, Fut>(
    mut attempt: F,
    warn_after: Duration,
    warn: impl FnOnce(),
) -> Result<T, PmError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PmError>>,
{
    let start = Instant::now();
    let mut warn = Some(warn);
    loop {
        match attempt().await {
            Err(PmError::FamilyUnavailable(e)) => {
                tracing::debug!("mptcp_pm not available yet: {}", Chain(&e));
            }
            other => return other,
        }
        if start.elapsed() >= warn_after
            && let Some(warn) = warn.take()
        {
            warn();
        }
        tokio::time::sleep(RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, time::Duration};

    use super::{RETRY, wait_for};
    use mptcp_pm::{PmError, wire::KernelError};

    fn absent() -> PmError {
        PmError::FamilyUnavailable(KernelError {
            errno: libc::ENOENT,
            message: None,
            offset: None,
        })
    }

    /// Runs `wait_for` on paused time against a family that appears after `absent_for`
    /// attempts; returns the attempts made and the warnings given.
    fn run(absent_for: u32, warn_after: Duration) -> (u32, u32, Result<u32, PmError>) {
        let attempts = Cell::new(0);
        let warnings = Cell::new(0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let result = runtime.block_on(wait_for(
            || {
                attempts.set(attempts.get() + 1);
                let n = attempts.get();
                async move {
                    if n <= absent_for {
                        Err(absent())
                    } else {
                        Ok(n)
                    }
                }
            },
            warn_after,
            || warnings.set(warnings.get() + 1),
        ));
        (attempts.get(), warnings.get(), result)
    }

    #[test]
    fn waits_and_warns_once_when_slow() {
        // 40 failed attempts span 20 s of (paused) time: one warning, then success.
        let (attempts, warnings, result) = run(40, RETRY * 20);
        assert_eq!(attempts, 41);
        assert_eq!(warnings, 1);
        assert_eq!(result.unwrap(), 41);
    }

    #[test]
    fn no_warning_when_quick_and_other_errors_end_the_wait() {
        let (attempts, warnings, result) = run(0, RETRY * 20);
        assert_eq!((attempts, warnings), (1, 0));
        assert_eq!(result.unwrap(), 1);

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let result: Result<(), PmError> = runtime.block_on(wait_for(
            || async { Err(PmError::Closed) },
            RETRY,
            || panic!("no warning for a hard error"),
        ));
        assert!(matches!(result, Err(PmError::Closed)));
    }
}
