//! Step checkpoints, written once for both backends: the fenced save and
//! the read, in each backend's [`Dialect`], and the row they read.

use diesel::sql_types::{BigInt, Integer, Text};
use diesel::QueryableByName;
use tasker::store::{Checkpoint, StoreError};
use tasker::StepId;

use crate::dialect::Dialect;
use crate::rows::time;

/// Saves a checkpoint (`$1` step id, `$2` attempt, `$3` the JSON text)
/// when attempt `$2` holds the step; affects one row when it did, none
/// otherwise. The step row is share-locked, so lease recovery and operator
/// actions wait for the save (or the save, taken after them, sees the
/// step's new state and writes nothing); the update's own condition keeps
/// an older attempt from replacing a newer one's checkpoint.
pub(crate) fn save_sql(d: &Dialect) -> String {
    (d.params)(format!(
        "INSERT INTO tasker_step_checkpoints (workflow_step_id, task_id, attempt, checkpoint, saved_at)
         SELECT s.workflow_step_id, s.task_id, s.attempts, {value}, {now}
         FROM tasker_workflow_steps s
         WHERE s.workflow_step_id = $1 AND s.state = 'in_progress' AND s.attempts = $2{lock}
         ON CONFLICT (workflow_step_id) DO UPDATE
         SET attempt = excluded.attempt, checkpoint = excluded.checkpoint, saved_at = excluded.saved_at
         WHERE tasker_step_checkpoints.attempt <= excluded.attempt",
        value = (d.json_param)(3),
        now = d.now,
        lock = d.lock_shared,
    ))
}

/// Reads a step's checkpoint (`$1` step id).
pub(crate) fn load_sql(d: &Dialect) -> String {
    (d.params)(format!(
        "SELECT CAST(checkpoint AS TEXT) AS checkpoint, attempt, {saved} AS saved_ms
         FROM tasker_step_checkpoints WHERE workflow_step_id = $1",
        saved = (d.ms)("saved_at"),
    ))
}

/// A stored checkpoint.
#[derive(QueryableByName)]
pub(crate) struct CheckpointRow {
    #[diesel(sql_type = Text)]
    checkpoint: String,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = BigInt)]
    saved_ms: i64,
}

impl CheckpointRow {
    /// The record; a stored value that is not JSON (written by hand) is an
    /// error naming the step.
    pub(crate) fn into_checkpoint(self, step_id: StepId) -> Result<Checkpoint, StoreError> {
        let value = serde_json::from_str(&self.checkpoint).map_err(|e| {
            StoreError::Invalid(format!(
                "the stored checkpoint of step {step_id} is not JSON ({e}); delete its row from \
                 tasker_step_checkpoints to let the step start from the beginning"
            ))
        })?;
        Ok(Checkpoint {
            value,
            attempt: u32::try_from(self.attempt).unwrap_or(0),
            saved_at: time(self.saved_ms),
        })
    }
}
