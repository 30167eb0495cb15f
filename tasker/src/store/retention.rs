//! What retention works on: which tasks a purge deletes, and the dead
//! letters (failed steps of failed tasks) an operator looks at.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;
use crate::ids::{StepId, TaskId};
use crate::state::TaskState;
use crate::step::StepError;

/// Which tasks [`Store::purge_tasks`](super::Store::purge_tasks) deletes, with their steps and audit
/// rows: tasks in one of `states` (finished ones, or `error`; never
/// `pending` or `in_progress`) last changed before `finished_before`,
/// optionally of one namespace and handler name, at most `batch` per call.
#[derive(Debug, Clone)]
pub struct PurgeFilter {
    /// States to purge: `complete`, `cancelled`, `resolved_manually`, `error`.
    pub states: Vec<TaskState>,
    /// Only tasks whose last change is older than this.
    pub finished_before: DateTime<Utc>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this handler name.
    pub name: Option<String>,
    /// Tasks deleted per call (one short transaction), 1 to
    /// [`PurgeFilter::MAX_BATCH`].
    pub batch: u32,
}

impl PurgeFilter {
    /// The largest batch: one transaction never holds more rows than this
    /// many tasks' worth, so workers are not locked out for long.
    pub const MAX_BATCH: u32 = 5_000;

    /// Refuses what must never be purged (unfinished states), an empty
    /// state list and a batch out of range.
    pub fn check(&self) -> Result<(), StoreError> {
        let invalid = |rule: String| {
            Err(StoreError::Invalid(format!(
                "purge: {rule}; purge only tasks in complete, cancelled, resolved_manually or error"
            )))
        };
        if self.states.is_empty() {
            return invalid("no state given".to_owned());
        }
        if let Some(state) = self
            .states
            .iter()
            .find(|s| !s.is_finished() && **s != TaskState::Error)
        {
            return invalid(format!(
                "tasks in `{state}` are still running or waiting to run"
            ));
        }
        if self.batch == 0 || self.batch > Self::MAX_BATCH {
            return Err(StoreError::Invalid(format!(
                "purge: a batch of {} tasks; use 1 to {}",
                self.batch,
                Self::MAX_BATCH
            )));
        }
        Ok(())
    }
}

/// Which failed steps [`Store::dead_letters`](super::Store::dead_letters) lists.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this handler name.
    pub name: Option<String>,
    /// Only errors of this class (`StepError::class`, e.g. `PaymentError`).
    pub error_class: Option<String>,
    /// Only steps that failed at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (most recent failure first); 0 means 100.
    pub limit: u32,
}

/// A step in `error` of a task in `error`: what an operator looks at and
/// retries or resolves.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The task.
    pub task_id: TaskId,
    /// Its handler's namespace.
    pub namespace: String,
    /// Its handler's name.
    pub name: String,
    /// Its handler's version.
    pub version: String,
    /// The failed step.
    pub step_id: StepId,
    /// The step's name.
    pub step: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: Option<StepError>,
    /// When the step failed for good.
    pub failed_at: DateTime<Utc>,
}
