//! Which ready step is claimed first: [`Priority`] levels and the
//! [`ClaimOrder`] policy that turns them into a place in the queue.
//!
//! Every step waits in one queue ordered by its *claim time*: the time it
//! became ready, moved earlier by a *head start* the policy gives it when
//! the task is created. The default policy, [`PriorityAging`], gives each
//! priority level one `aging` interval: with `aging = 30s`, a `high` step
//! is claimed before `normal` steps that became ready up to 30 s before it,
//! but after those that have waited longer. So higher priorities go first,
//! and no step waits behind later arrivals for more than
//! `aging × (its distance from the highest level)`: low priority ages, it
//! never starves. The order lives in one indexed column, so claiming costs
//! the same with priorities as without.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How urgent a task or step is: `low`, `normal` (the default), `high` or
/// `critical`, the guide's names.
///
/// ```
/// use tasker::Priority;
///
/// assert_eq!("high".parse::<Priority>().unwrap(), Priority::High);
/// assert!(Priority::Critical > Priority::Normal);
/// assert_eq!(Priority::Low.level(), -1);
/// let err = "urgent".parse::<Priority>().unwrap_err();
/// assert_eq!(err, "unknown priority `urgent`; use low, normal, high or critical");
/// ```
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Behind everything else that is ready.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Ahead of normal work.
    High,
    /// Ahead of everything.
    Critical,
}

impl Priority {
    /// Every level, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    /// The level as a number: low −1, normal 0, high 1, critical 2 (how
    /// stores keep it).
    pub fn level(self) -> i16 {
        match self {
            Priority::Low => -1,
            Priority::Normal => 0,
            Priority::High => 1,
            Priority::Critical => 2,
        }
    }

    /// The priority of a stored level; levels out of range are clamped.
    pub fn from_level(level: i16) -> Priority {
        match level {
            i16::MIN..=-1 => Priority::Low,
            0 => Priority::Normal,
            1 => Priority::High,
            _ => Priority::Critical,
        }
    }

    /// The name: `low`, `normal`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown priority `{s}`; use low, normal, high or critical"))
    }
}

/// A step about to be queued, as a [`ClaimOrder`] sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct QueuedStep<'a> {
    /// The handler's namespace.
    pub namespace: &'a str,
    /// The handler's name.
    pub handler: &'a str,
    /// The step's name.
    pub step: &'a str,
    /// The step's priority: its configured one, else its task's.
    pub priority: Priority,
    /// The task's priority.
    pub task_priority: Priority,
    /// The task's context.
    pub context: &'a serde_json::Value,
}

/// Where a step goes in the claim queue: the *head start* it gets over
/// steps that became ready at the same time (negative: it goes behind
/// them). Decided once per step, when its task is created, so claiming
/// stays one indexed scan; set with
/// [`TaskerBuilder::claim_order`](crate::TaskerBuilder::claim_order).
///
/// The guide's custom coordinator, as a policy: for example, a shop that
/// wants refunds before everything else, whatever their priority:
///
/// ```
/// use std::time::Duration;
/// use tasker::{ClaimOrder, HeadStart, PriorityAging, QueuedStep};
///
/// struct RefundsFirst(PriorityAging);
///
/// impl ClaimOrder for RefundsFirst {
///     fn head_start(&self, step: &QueuedStep<'_>) -> HeadStart {
///         if step.handler == "refund" {
///             HeadStart::ahead(Duration::from_secs(3600))
///         } else {
///             self.0.head_start(step)
///         }
///     }
/// }
/// ```
pub trait ClaimOrder: Send + Sync + 'static {
    /// The head start of `step`.
    fn head_start(&self, step: &QueuedStep<'_>) -> HeadStart;
}

/// A signed head start in the claim queue, in milliseconds: positive moves
/// a step ahead of steps that became ready at the same time, negative
/// behind them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeadStart(i64);

impl HeadStart {
    /// No head start: first come, first served.
    pub const NONE: HeadStart = HeadStart(0);

    /// Ahead by `by`.
    pub fn ahead(by: Duration) -> Self {
        HeadStart(i64::try_from(by.as_millis()).unwrap_or(i64::MAX))
    }

    /// Behind by `by`.
    pub fn behind(by: Duration) -> Self {
        HeadStart(-i64::try_from(by.as_millis()).unwrap_or(i64::MAX))
    }

    /// The head start in milliseconds (negative: behind), bounded to ±100
    /// years so that no claim time leaves the range databases store.
    pub fn as_millis(self) -> i64 {
        const BOUND: i64 = 100 * 365 * 24 * 3600 * 1000;
        self.0.clamp(-BOUND, BOUND)
    }
}

/// The default [`ClaimOrder`]: one `aging` interval of head start per
/// priority level.
///
/// Every step waits in one queue ordered by its *claim time*: the time it
/// became ready, moved earlier by the head start this policy gives it.
/// With `aging = 30s`, a `high` step is claimed before `normal` steps that
/// became ready up to 30 s before it, but after those that have waited
/// longer. So higher priorities go first, and no step waits behind later
/// arrivals for more than `aging × (its distance from the highest level)`:
/// low priority ages, it never starves.
///
/// ```
/// use std::time::Duration;
/// use tasker::{ClaimOrder, HeadStart, Priority, PriorityAging};
///
/// let policy = PriorityAging::new(Duration::from_secs(30));
/// assert_eq!(policy.for_priority(Priority::High), HeadStart::ahead(Duration::from_secs(30)));
/// assert_eq!(policy.for_priority(Priority::Low), HeadStart::behind(Duration::from_secs(30)));
/// assert_eq!(policy.for_priority(Priority::Normal), HeadStart::NONE);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityAging {
    /// The head start of one priority level.
    pub aging: Duration,
}

impl PriorityAging {
    /// The default interval per level.
    pub const DEFAULT_AGING: Duration = Duration::from_secs(30);

    /// One `aging` interval per level.
    pub fn new(aging: Duration) -> Self {
        PriorityAging { aging }
    }

    /// The head start of a priority.
    pub fn for_priority(&self, priority: Priority) -> HeadStart {
        let per_level = i64::try_from(self.aging.as_millis()).unwrap_or(i64::MAX);
        HeadStart(per_level.saturating_mul(i64::from(priority.level())))
    }
}

impl Default for PriorityAging {
    fn default() -> Self {
        PriorityAging::new(Self::DEFAULT_AGING)
    }
}

impl ClaimOrder for PriorityAging {
    fn head_start(&self, step: &QueuedStep<'_>) -> HeadStart {
        self.for_priority(step.priority)
    }
}
