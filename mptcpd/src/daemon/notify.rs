//! systemd readiness (`Type=notify`). Without `NOTIFY_SOCKET` these do nothing; a test harness
//! sets `NOTIFY_SOCKET` to learn when the daemon is ready, as systemd does.

use sd_notify::NotifyState;

pub(super) fn ready() {
    send(&[NotifyState::Ready]);
}

/// Sent before a reload; systemd >= 253 (`Type=notify-reload`) wants the monotonic time with it.
pub(super) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(e) => {
            tracing::warn!("reading the monotonic clock: {e}");
            send(&[NotifyState::Reloading]);
        }
    }
}

pub(super) fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!("sd_notify: {e}");
    }
}
