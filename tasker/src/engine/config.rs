//! How an engine runs: [`EngineConfig`], [`Backoff`] and the
//! [`CoordinationMode`] it picks for a store.

use std::time::Duration;

use crate::step::StepConfig;
use crate::store::Capabilities;

/// Exponential backoff with jitter and one cap.
///
/// The delay before retry `n` (after failed attempt `n`) is `base * 2^(n-1)`,
/// capped at `cap`, then with jitter drawn uniformly from the upper half:
/// `[d/2, d]`. A step's `StepError::with_retry_after` wins over all of it.
///
/// ```
/// use std::time::Duration;
/// use tasker::Backoff;
///
/// let backoff = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(60), jitter: false };
/// assert_eq!(backoff.delay(1), Duration::from_secs(1));
/// assert_eq!(backoff.delay(3), Duration::from_secs(4));
/// assert_eq!(backoff.delay(30), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// No delay exceeds this.
    pub cap: Duration,
    /// Whether to spread delays over `[d/2, d]`.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            jitter: true,
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let full = self
            .base
            .checked_mul(1u32 << exponent)
            .map_or(self.cap, |d| d.min(self.cap));
        if !self.jitter || full.is_zero() {
            return full;
        }
        let half = full / 2;
        let spread = (full - half).as_nanos() as u64;
        half + Duration::from_nanos(fastrand::u64(0..=spread))
    }
}

/// Settings of the engine and its workers.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Step settings where a step's attribute is silent.
    pub step_defaults: StepConfig,
    /// Retry delays.
    pub backoff: Backoff,
    /// How long a claim lasts without renewal. Running steps are renewed
    /// every third of it; a dead worker's steps are reclaimed after it.
    pub lease: Duration,
    /// Idle workers look for work at least this often, notifications or not.
    pub poll_interval: Duration,
    /// Steps one worker runs at once.
    pub concurrency: usize,
    /// Steps claimed per round trip (at most the free slots).
    pub claim_batch: u32,
    /// This process's worker name in the audit trail.
    pub worker_id: String,
    /// How long one subscriber call may run before it is abandoned.
    pub subscriber_timeout: Duration,
    /// Events queued per subscriber before new ones are dropped.
    pub subscriber_queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            step_defaults: StepConfig::default(),
            backoff: Backoff::default(),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            concurrency: 16,
            claim_batch: 16,
            worker_id: default_worker_id(),
            subscriber_timeout: Duration::from_secs(5),
            subscriber_queue: 1024,
        }
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}:{}:{:04x}", std::process::id(), fastrand::u16(..))
}

/// How workers coordinate, chosen from the store's [`Capabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinationMode {
    /// Many worker processes share the store: claims skip locked rows, idle
    /// workers wake on notifications, and expired leases are recovered
    /// periodically.
    Distributed,
    /// One process owns the store: in-process wake-ups, and every step left
    /// `in_progress` by a previous process is recovered at start.
    SingleProcess,
}

impl CoordinationMode {
    /// The mode a store's capabilities call for.
    pub fn for_capabilities(capabilities: Capabilities) -> Self {
        if capabilities.distributed && capabilities.skip_locked {
            CoordinationMode::Distributed
        } else {
            CoordinationMode::SingleProcess
        }
    }
}
