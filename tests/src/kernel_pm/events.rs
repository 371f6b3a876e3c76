//! Helpers for tests of `mptcp_pm` against the kernel: waiting for an event, reading a
//! kernel refusal.

use std::time::Duration;

use mptcp_pm::{Event, EventItem, EventStream, PmError};

/// How long a test waits for an event before it calls it a hang.
pub const WAIT: Duration = Duration::from_secs(5);

/// The next event `pick` accepts, skipping others.
///
/// # Panics
/// After [`WAIT`], when the socket fails, or on an overrun or an undecodable message.
pub async fn wait_for<T>(
    events: &mut EventStream,
    what: &str,
    pick: impl Fn(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let item = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("event socket");
        match item {
            EventItem::Event(event) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
            }
            other => panic!("waiting for {what}: {other:?}"),
        }
    }
}

/// The errno and extended-ack message of a request the kernel refused.
///
/// # Panics
/// When the request succeeded or failed for another reason than a kernel refusal.
pub fn kernel_error<T: std::fmt::Debug>(result: Result<T, PmError>) -> (i32, String) {
    match result {
        Err(err) => (
            err.errno()
                .unwrap_or_else(|| panic!("not a kernel error: {err}")),
            err.kernel_message().unwrap_or_default().to_owned(),
        ),
        Ok(answer) => panic!("the kernel accepted the request: {answer:?}"),
    }
}
