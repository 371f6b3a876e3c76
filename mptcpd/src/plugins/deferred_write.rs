//! When the state file's deferred write is due: removals are written once a burst of them is
//! over (`Owned::forget_removed`), at most [`MAX_DELAY`] after the first.

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

/// Quiet time after the last removal before the file is written.
pub(super) const QUIET: Duration = Duration::from_millis(100);
/// Longest a removal waits for its write, however long the burst.
pub(super) const MAX_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(super) struct DeferredWrite {
    /// The first removal not written yet, and when the write is due.
    pending: Mutex<Option<(Instant, Instant)>>,
    /// Wakes [`Self::due_passed`] when a write becomes pending.
    wanted: Notify,
}

impl DeferredWrite {
    /// A removal was left unwritten now: the write is due after [`QUIET`] more.
    pub(super) fn push_back(&self) {
        let now = Instant::now();
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let first = pending.map_or(now, |(first, _)| first);
        *pending = Some((first, (now + QUIET).min(first + MAX_DELAY)));
        drop(pending);
        self.wanted.notify_one();
    }

    /// When the pending write is due, if one is.
    pub(super) fn due(&self) -> Option<Instant> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|(_, due)| due)
    }

    /// Nothing is pending any more (the write is being made).
    pub(super) fn clear(&self) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Returns once a pending write is due; waits for one to be pending first.
    pub(super) async fn due_passed(&self) {
        loop {
            match self.due() {
                Some(due) if due <= Instant::now() => return,
                Some(due) => tokio::time::sleep_until(due).await,
                None => self.wanted.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_written_after_its_quiet_time_and_never_later_than_the_cap() {
        let deferred = DeferredWrite::default();
        assert_eq!(deferred.due(), None);
        let start = Instant::now();
        deferred.push_back();
        assert_eq!(deferred.due(), Some(start + QUIET));
        tokio::time::advance(Duration::from_millis(60)).await;
        deferred.push_back();
        assert_eq!(
            deferred.due(),
            Some(start + Duration::from_millis(60) + QUIET)
        );

        // Removals every 50 ms push the write back, until the cap.
        for _ in 0..18 {
            tokio::time::advance(Duration::from_millis(50)).await;
            deferred.push_back();
        }
        assert_eq!(deferred.due(), Some(start + MAX_DELAY));
        deferred.due_passed().await;
        assert_eq!(Instant::now(), start + MAX_DELAY);
        deferred.clear();
        assert_eq!(deferred.due(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_hears_of_a_removal_made_after_it_began_waiting() {
        let deferred = std::sync::Arc::new(DeferredWrite::default());
        let waiter = tokio::spawn({
            let deferred = std::sync::Arc::clone(&deferred);
            async move {
                deferred.due_passed().await;
                Instant::now()
            }
        });
        tokio::task::yield_now().await;
        let removed = Instant::now();
        deferred.push_back();
        assert_eq!(waiter.await.unwrap(), removed + QUIET);
    }
}
