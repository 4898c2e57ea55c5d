//! The bound on one registry's requests in flight (`--registry-jobs`), and how it
//! gives way when the registry says it is overwhelmed.
//!
//! A request holds a permit from before it is sent until its answer is dropped. When
//! the registry answers `429 Too Many Requests`, the bound is halved for the rest of
//! the command (at least one request), as a TCP sender halves its window on loss:
//! retrying at the same concurrency would meet the same limit. The cut takes effect
//! as answers come back: the permits it removes are taken, in turn with the waiting
//! requests, and forgotten. One crowd of requests in flight when the registry began
//! refusing is one signal: a 429 to a request sent before the last cut does not cut
//! again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// One registry's requests in flight.
#[derive(Debug)]
pub(super) struct Window {
    permits: Arc<Semaphore>,
    /// The bound now: `--registry-jobs`, halved by each cut.
    limit: AtomicUsize,
    /// When the bound was last cut.
    cut_at: Mutex<Option<Instant>>,
}

impl Window {
    pub(super) fn new(limit: usize) -> Window {
        let limit = limit.max(1);
        Window {
            permits: Arc::new(Semaphore::new(limit)),
            limit: AtomicUsize::new(limit),
            cut_at: Mutex::new(None),
        }
    }

    /// A place among the requests in flight, held until dropped.
    pub(super) async fn enter(&self) -> Result<OwnedSemaphorePermit, AcquireError> {
        Arc::clone(&self.permits).acquire_owned().await
    }

    /// The bound now.
    pub(super) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// The registry answered 429 to a request sent at `sent`: halves the bound
    /// unless it is one already, or the request went out before the last cut.
    /// Answers the new bound when it was cut. Call within the command's runtime.
    pub(super) fn too_many(&self, sent: Instant) -> Option<usize> {
        let mut cut_at = self.cut_at.lock().expect("window");
        if cut_at.is_some_and(|at| sent < at) {
            return None;
        }
        let current = self.limit();
        let halved = (current / 2).max(1);
        if halved == current {
            return None;
        }
        self.limit.store(halved, Ordering::Relaxed);
        *cut_at = Some(Instant::now());
        let cut = u32::try_from(current - halved).unwrap_or(u32::MAX);
        let permits = Arc::clone(&self.permits);
        // Taken as they come free (in turn with waiting requests) and never given
        // back; the task ends with the runtime if the command ends first.
        tokio::spawn(async move {
            if let Ok(taken) = permits.acquire_many_owned(cut).await {
                taken.forget();
            }
        });
        Some(halved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_429_halves_the_requests_in_flight_once_per_crowd() {
        let window = Window::new(8);
        let sent = Instant::now();
        let crowd: Vec<_> = futures_util::future::join_all((0..8).map(|_| window.enter()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(window.permits.try_acquire().is_err());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        // The whole crowd is refused: one cut.
        assert_eq!(window.too_many(sent), Some(4));
        for _ in 0..7 {
            assert_eq!(window.too_many(sent), None);
        }
        drop(crowd);
        tokio::task::yield_now().await;
        let held: Vec<_> =
            std::iter::from_fn(|| Arc::clone(&window.permits).try_acquire_owned().ok())
                .take(8)
                .collect();
        assert_eq!(held.len(), 4, "at most 4 at once after the cut");
        // A request sent after the cut and refused again: cut again, down to 1.
        let later = Instant::now();
        assert_eq!(window.too_many(later), Some(2));
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        assert_eq!(window.too_many(Instant::now()), Some(1));
        assert_eq!(window.too_many(Instant::now()), None);
        assert_eq!(window.limit(), 1);
        drop(held);
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert_eq!(window.permits.available_permits(), 1);
    }
}
