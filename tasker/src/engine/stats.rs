//! What a worker has done: [`WorkerStats`] and its snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub(super) claim_queries: AtomicU64,
    pub(super) claimed: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) stale: AtomicU64,
}

/// A snapshot of [`WorkerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Claim round trips made (including those that found nothing).
    pub claim_queries: u64,
    /// Attempts started.
    pub claimed: u64,
    /// Attempts that completed their step.
    pub completed: u64,
    /// Attempts that failed and were scheduled for retry.
    pub retried: u64,
    /// Attempts that failed their step for good.
    pub failed: u64,
    /// Results discarded because the claim was no longer this worker's.
    pub stale: u64,
}

impl WorkerStats {
    /// The current counts.
    pub fn counts(&self) -> WorkerCounts {
        WorkerCounts {
            claim_queries: self.claim_queries.load(Ordering::Relaxed),
            claimed: self.claimed.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
        }
    }
}

/// One line for people: what the worker's attempts came to.
///
/// ```
/// let counts = tasker::WorkerCounts { claim_queries: 4, claimed: 12, completed: 10, retried: 1, failed: 1, stale: 0 };
/// assert_eq!(
///     counts.to_string(),
///     "12 attempts: 10 completed, 1 to be retried, 1 failed, 0 discarded (4 claim queries)"
/// );
/// ```
impl std::fmt::Display for WorkerCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} attempts: {} completed, {} to be retried, {} failed, {} discarded ({} claim queries)",
            self.claimed, self.completed, self.retried, self.failed, self.stale, self.claim_queries
        )
    }
}
