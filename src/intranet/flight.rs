//! Single-flight for slow calls to other services (the provider's discovery document and
//! keys, a Redis connection): callers that need the same answer at the same time share one
//! attempt. The attempt runs as a task of its own, so it finishes (and stores what it found)
//! even when every caller has stopped waiting, and no lock is held while it runs: the mutex
//! here only guards which attempt is current.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

/// An attempt callers can await together; `None` if its task panicked or was cancelled (the
/// runtime shutting down).
pub type Attempt<T> = Shared<BoxFuture<'static, Option<T>>>;

/// At most one attempt at a time (see the module docs).
pub struct Flight<T> {
    current: Mutex<Option<(Attempt<T>, Arc<AtomicBool>)>>,
}

impl<T> Default for Flight<T> {
    fn default() -> Self {
        Self {
            current: Mutex::new(None),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Flight<T> {
    fn lock(&self) -> MutexGuard<'_, Option<(Attempt<T>, Arc<AtomicBool>)>> {
        // Nothing inside can be left half-changed by a panic: take it as it is.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The attempt still running, if any.
    pub fn in_flight(&self) -> Option<Attempt<T>> {
        let current = self.lock();
        match current.as_ref() {
            Some((attempt, done)) if !done.load(Ordering::Acquire) => Some(attempt.clone()),
            _ => None,
        }
    }

    /// Joins the attempt still running, or spawns `start()` as a new one (on the current
    /// Tokio runtime).
    pub fn join_or_start<F>(&self, start: impl FnOnce() -> F) -> Attempt<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut current = self.lock();
        if let Some((attempt, done)) = current.as_ref()
            && !done.load(Ordering::Acquire)
        {
            return attempt.clone();
        }
        let done = Arc::new(AtomicBool::new(false));
        let work = start();
        let task = tokio::spawn({
            let done = done.clone();
            async move {
                let out = work.await;
                done.store(true, Ordering::Release);
                out
            }
        });
        let attempt = async move { task.await.ok() }.boxed().shared();
        *current = Some((attempt.clone(), done));
        attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_attempt_and_later_ones_start_another() {
        let flight: Flight<usize> = Flight::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let start = || {
            let runs = runs.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                runs.fetch_add(1, Ordering::SeqCst) + 1
            }
        };
        let a = flight.join_or_start(start);
        let b = flight.join_or_start(start);
        assert!(flight.in_flight().is_some());
        assert_eq!((a.await, b.await), (Some(1), Some(1)), "one attempt, shared");
        assert!(flight.in_flight().is_none(), "finished");
        assert_eq!(flight.join_or_start(start).await, Some(2), "a new attempt");
    }

    #[tokio::test]
    async fn an_attempt_finishes_when_nobody_waits_for_it() {
        let flight: Flight<()> = Flight::default();
        let stored = Arc::new(AtomicBool::new(false));
        let attempt = flight.join_or_start({
            let stored = stored.clone();
            || async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                stored.store(true, Ordering::SeqCst);
            }
        });
        drop(attempt);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(stored.load(Ordering::SeqCst), "the task ran to the end");
        assert!(flight.in_flight().is_none());
    }
}
