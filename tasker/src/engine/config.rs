//! How an engine runs: [`EngineConfig`], [`Backoff`] and the
//! [`CoordinationMode`] it picks for a store.

use std::time::Duration;

use crate::config::Config;
use crate::state::TaskState;
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
    /// Finished tasks workers delete in the background; `None` (the
    /// default) keeps everything.
    pub retention: Option<RetentionPolicy>,
    /// Head start per priority level for the default claim order
    /// ([`PriorityAging`](crate::PriorityAging)); ignored when the builder
    /// is given a [`ClaimOrder`](crate::ClaimOrder) of its own.
    pub priority_aging: Duration,
    /// Named limits held across every worker of the database, for
    /// `handlers:` entries to name with `limit:` (see [`Limit`](crate::Limit)).
    /// Every worker that serves a limited step must declare its limit: a
    /// worker that does not claims the step unlimited.
    pub limits: std::collections::BTreeMap<String, crate::Limit>,
}

/// What workers purge in the background, and how often. Each rule names
/// states and an age; every `every`, one worker engine deletes what the
/// rules name in batches of `batch` tasks, one short transaction each,
/// pausing between batches so claims are never locked out for long.
///
/// ```
/// use std::time::Duration;
/// use tasker::{RetentionPolicy, TaskState};
///
/// let policy = RetentionPolicy::default()
///     .keep(&[TaskState::Complete], Duration::from_secs(7 * 24 * 3600))
///     .keep(&[TaskState::Cancelled, TaskState::ResolvedManually], Duration::from_secs(30 * 24 * 3600));
/// assert_eq!(policy.rules.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    /// What to purge.
    pub rules: Vec<RetentionRule>,
    /// How often to look (default 10 minutes).
    pub every: Duration,
    /// Tasks per batch (default 500).
    pub batch: u32,
}

/// One rule of a [`RetentionPolicy`]: tasks in `states` whose last change
/// is older than `older_than`.
#[derive(Debug, Clone)]
pub struct RetentionRule {
    /// Finished states (or `error`).
    pub states: Vec<TaskState>,
    /// Minimum age since the task's last change.
    pub older_than: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            rules: Vec::new(),
            every: Duration::from_secs(600),
            batch: 500,
        }
    }
}

impl RetentionPolicy {
    /// Adds a rule: purge tasks in `states` older than `older_than`.
    pub fn keep(mut self, states: &[TaskState], older_than: Duration) -> Self {
        self.rules.push(RetentionRule {
            states: states.to_vec(),
            older_than,
        });
        self
    }
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
            retention: None,
            priority_aging: crate::priority::PriorityAging::DEFAULT_AGING,
            limits: std::collections::BTreeMap::new(),
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

impl Config {
    /// Lays the `engine:` section over `engine` (what it leaves out stays).
    pub fn apply_engine(&self, engine: &mut EngineConfig) {
        let e = &self.settings.engine;
        set(&mut engine.concurrency, e.concurrency);
        set(&mut engine.claim_batch, e.claim_batch);
        set(&mut engine.lease, e.lease);
        set(&mut engine.poll_interval, e.poll_interval);
        set(&mut engine.subscriber_timeout, e.subscriber_timeout);
        set(&mut engine.subscriber_queue, e.subscriber_queue);
        if let Some(worker_id) = &e.worker_id {
            engine.worker_id.clone_from(worker_id);
        }
        set(&mut engine.backoff.base, e.backoff.base);
        set(&mut engine.backoff.cap, e.backoff.cap);
        set(&mut engine.backoff.jitter, e.backoff.jitter);
        set(&mut engine.priority_aging, e.priority_aging);
        engine
            .limits
            .extend(e.limits.iter().map(|(name, limit)| (name.clone(), *limit)));
        let d = &e.step_defaults;
        set(&mut engine.step_defaults.retry_limit, d.retry_limit);
        set(&mut engine.step_defaults.retryable, d.retryable);
        if d.timeout.is_some() {
            engine.step_defaults.timeout = d.timeout;
        }
        if let Some(retention) = &e.retention {
            let mut policy = RetentionPolicy::default();
            set(&mut policy.every, retention.every);
            set(&mut policy.batch, retention.batch);
            for rule in &retention.rules {
                policy = policy.keep(&rule.states, rule.older_than);
            }
            engine.retention = Some(policy);
        }
    }
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}
