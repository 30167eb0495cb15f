//! The operator's transaction primitives on SQLite (see `crate::operator`).

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::{sql_query, RunQueryDsl, SqliteConnection};
use serde_json::Value;
use tasker::{StepError, StepState, TaskState};

use super::writes::{
    release_children, set_steps_state, set_task_state, step_audit, step_state, task_state,
};
use super::{now_ms, StepStateRow};
use crate::dialect::Dialect;
use crate::operator::{self, StepCounts, Tx};
use crate::operator::{SkipPrimitives, Unblocked};
use crate::retention;
use crate::rows::{
    parse_state, ChildRow, CountRow, IdRow, StepCountsRow, StepNameRow, SATISFIED_SQL,
    STEP_COUNTS_SQL,
};

/// The operator primitives on the SQLite connection, inside the action's
/// immediate transaction (which holds the only write lock, so `lock_*`
/// only read).
pub(super) struct SqliteOps<'c> {
    pub(super) conn: &'c mut SqliteConnection,
}

impl SqliteOps<'_> {
    pub(super) fn step_counts_now(&mut self, task_id: i64) -> Tx<StepCounts> {
        let row = sql_query(STEP_COUNTS_SQL)
            .bind::<BigInt, _>(task_id)
            .get_result::<StepCountsRow>(self.conn)?;
        Ok(row.into())
    }

    fn unfinished_steps(&mut self, sql: &str, id: i64) -> Tx<Vec<StepStateRow>> {
        Ok(sql_query(sql)
            .bind::<BigInt, _>(id)
            .load::<StepStateRow>(self.conn)?)
    }

    pub(super) fn count_off(&mut self, task_id: i64, n: usize) -> Tx<()> {
        sql_query(
            "UPDATE tasker_tasks SET unfinished_steps = unfinished_steps - ?, updated_at = ?
             WHERE task_id = ?",
        )
        .bind::<Integer, _>(n as i32)
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(task_id)
        .execute(self.conn)?;
        Ok(())
    }
}

impl operator::Primitives for SqliteOps<'_> {
    async fn lock_task(&mut self, task_id: i64) -> Tx<TaskState> {
        Ok(parse_state(&task_state(self.conn, task_id)?.state)?)
    }

    async fn task_of_step(&mut self, step_id: i64) -> Tx<i64> {
        Ok(step_state(self.conn, step_id)?.task_id)
    }

    async fn lock_step(&mut self, step_id: i64) -> Tx<StepState> {
        Ok(parse_state(&step_state(self.conn, step_id)?.state)?)
    }

    async fn retry_failed(&mut self, task_id: i64, step_id: Option<i64>, actor: &str) -> Tx<()> {
        let failed = sql_query(
            "SELECT workflow_step_id, task_id, state, attempts FROM tasker_workflow_steps
             WHERE task_id = ? AND state = 'error' AND results IS NULL
               AND (? IS NULL OR workflow_step_id = ?)",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Nullable<BigInt>, _>(step_id)
        .bind::<Nullable<BigInt>, _>(step_id)
        .load::<StepStateRow>(self.conn)?;
        for step in &failed {
            sql_query(
                "UPDATE tasker_workflow_steps SET state = 'ready', run_at = ?, claim_at = ? - head_start_ms,
                   max_attempts = attempts + attempt_budget, updated_at = ? WHERE workflow_step_id = ?",
            )
            .bind::<BigInt, _>(now_ms())
            .bind::<BigInt, _>(now_ms())
            .bind::<BigInt, _>(now_ms())
            .bind::<BigInt, _>(step.workflow_step_id)
            .execute(self.conn)?;
            step_audit(
                self.conn,
                (step.workflow_step_id, step.task_id),
                Some("error"),
                "ready",
                Some(step.attempts),
                actor,
                None,
            )?;
        }
        Ok(())
    }

    async fn close_steps(&mut self, task_id: i64, to: StepState, actor: &str) -> Tx<()> {
        let open = self.unfinished_steps(
            "SELECT workflow_step_id, task_id, state, attempts FROM tasker_workflow_steps
             WHERE task_id = ? AND (state IN ('pending', 'ready', 'in_progress')
               OR (state = 'error' AND results IS NULL))",
            task_id,
        )?;
        set_steps_state(self.conn, &open, to, actor)?;
        sql_query("UPDATE tasker_tasks SET unfinished_steps = 0, updated_at = ? WHERE task_id = ?")
            .bind::<BigInt, _>(now_ms())
            .bind::<BigInt, _>(task_id)
            .execute(self.conn)?;
        Ok(())
    }

    async fn cancel_from(&mut self, step_id: i64, actor: &str) -> Tx<()> {
        let doomed = self.unfinished_steps(
            "WITH RECURSIVE down(id) AS (
               SELECT ?
               UNION SELECT e.to_step_id FROM tasker_workflow_step_edges e JOIN down ON e.from_step_id = down.id
             )
             SELECT s.workflow_step_id, s.task_id, s.state, s.attempts
             FROM tasker_workflow_steps s JOIN down ON s.workflow_step_id = down.id
             WHERE (s.state IN ('pending', 'ready', 'in_progress')
               OR (s.state = 'error' AND s.results IS NULL))",
            step_id,
        )?;
        set_steps_state(self.conn, &doomed, StepState::Cancelled, actor)?;
        if let Some(first) = doomed.first() {
            self.count_off(first.task_id, doomed.len())?;
        }
        Ok(())
    }

    async fn resolve_step(
        &mut self,
        step_id: i64,
        from: StepState,
        output: &Value,
        actor: &str,
    ) -> Tx<()> {
        let step = sql_query(
            "UPDATE tasker_workflow_steps SET state = 'resolved_manually', results = ?,
               lease_expires_at = NULL, updated_at = ? WHERE workflow_step_id = ?
             RETURNING workflow_step_id, task_id, state, attempts",
        )
        .bind::<Text, _>(output.to_string())
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(step_id)
        .get_result::<StepStateRow>(self.conn)?;
        step_audit(
            self.conn,
            (step_id, step.task_id),
            Some(from.as_str()),
            StepState::ResolvedManually.as_str(),
            Some(step.attempts),
            actor,
            None,
        )?;
        release_children(self.conn, step_id, step.task_id, actor)?;
        self.count_off(step.task_id, 1)
    }

    async fn step_counts(&mut self, task_id: i64) -> Tx<StepCounts> {
        self.step_counts_now(task_id)
    }

    async fn set_task_state(
        &mut self,
        task_id: i64,
        from: TaskState,
        to: TaskState,
        actor: &str,
    ) -> Tx<()> {
        set_task_state(self.conn, task_id, from.as_str(), to.as_str(), actor).map(drop)
    }

    async fn lift_deadline(&mut self, task_id: i64) -> Tx<()> {
        for sql in [
            "UPDATE tasker_tasks SET deadline_at = NULL WHERE task_id = ? AND deadline_at IS NOT NULL",
            "UPDATE tasker_workflow_steps SET deadline_at = NULL WHERE task_id = ? AND deadline_at IS NOT NULL",
        ] {
            sql_query(sql).bind::<BigInt, _>(task_id).execute(self.conn)?;
        }
        Ok(())
    }

    async fn due_deadlines(&mut self, limit: u32) -> Tx<Vec<(i64, i64)>> {
        let now = now_ms();
        let rows = sql_query(
            "SELECT task_id, named_task_id FROM tasker_tasks
             WHERE deadline_at <= ? AND deadline_at IS NOT NULL AND state IN ('pending', 'in_progress')
             UNION
             SELECT task_id, named_task_id FROM tasker_workflow_steps
             WHERE deadline_at <= ? AND deadline_at IS NOT NULL AND state = 'ready'
             LIMIT ?",
        )
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(i64::from(limit))
        .load::<DueRow>(self.conn)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.task_id, r.named_task_id))
            .collect())
    }

    async fn deadline_passed(&mut self, task_id: i64) -> Tx<bool> {
        let rows = sql_query(
            "SELECT task_id AS id FROM tasker_tasks WHERE task_id = ? AND deadline_at <= ?",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<BigInt, _>(now_ms())
        .load::<IdRow>(self.conn)?;
        Ok(!rows.is_empty())
    }

    async fn stop_ready_steps(
        &mut self,
        task_id: i64,
        error: &StepError,
        actor: &str,
    ) -> Tx<Vec<(i64, String)>> {
        let now = now_ms();
        let stopped = sql_query(
            "UPDATE tasker_workflow_steps SET state = 'error', last_error = ?, updated_at = ?
             WHERE task_id = ? AND state = 'ready' AND deadline_at <= ?
             RETURNING workflow_step_id, name",
        )
        .bind::<Text, _>(serde_json::to_string(error).expect("errors serialize"))
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(task_id)
        .bind::<BigInt, _>(now)
        .load::<StoppedRow>(self.conn)?;
        let message = error.to_string();
        let mut steps = Vec::with_capacity(stopped.len());
        for step in stopped {
            step_audit(
                self.conn,
                (step.workflow_step_id, task_id),
                Some("ready"),
                "error",
                None,
                actor,
                Some(&message),
            )?;
            steps.push((step.workflow_step_id, step.name));
        }
        steps.sort_unstable();
        Ok(steps)
    }
}

#[derive(diesel::QueryableByName)]
struct DueRow {
    #[diesel(sql_type = BigInt)]
    task_id: i64,
    #[diesel(sql_type = BigInt)]
    named_task_id: i64,
}

#[derive(diesel::QueryableByName)]
struct StoppedRow {
    #[diesel(sql_type = BigInt)]
    workflow_step_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
}

/// SQLite's way of writing what `crate::retention` needs. Times are epoch
/// milliseconds already; the immediate transaction holds the only write
/// lock, so nothing else needs locking.
pub(super) const DIALECT: Dialect = Dialect {
    params: crate::dialect::numbered_params,
    time_param: |n| format!("${n}"),
    ms: |column| column.to_owned(),
    error_class: |column| format!("json_extract({column}, '$.class')"),
    lock_tasks: "",
    lock_shared: "",
    json_param: |n| format!("${n}"),
    now: "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
    lateral: false,
};

impl retention::RetentionOps for SqliteOps<'_> {
    async fn task_ids(&mut self, sql: &str, binds: &retention::Binds<'_>) -> Tx<Vec<i64>> {
        Ok(retention::bind_all!(sql_query(sql), binds)
            .load::<IdRow>(self.conn)?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    async fn dead_letter_rows(
        &mut self,
        sql: &str,
        binds: &retention::Binds<'_>,
    ) -> Tx<Vec<retention::DeadLetterRow>> {
        Ok(retention::bind_all!(sql_query(sql), binds)
            .load::<retention::DeadLetterRow>(self.conn)?)
    }

    async fn execute(&mut self, sql: &str) -> Tx<usize> {
        Ok(sql_query(sql).execute(self.conn)?)
    }
}

/// Inside the completion's immediate transaction (the only writer).
impl SkipPrimitives for SqliteOps<'_> {
    async fn steps_named(&mut self, task_id: i64, names: &[&str]) -> Tx<Vec<(i64, String)>> {
        let names = serde_json::to_string(names).expect("names serialize");
        let rows = sql_query(
            "SELECT workflow_step_id, name FROM tasker_workflow_steps
             WHERE task_id = ? AND name IN (SELECT value FROM json_each(?)) ORDER BY position",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Text, _>(names)
        .load::<StepNameRow>(self.conn)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.workflow_step_id, r.name))
            .collect())
    }

    async fn skip_step(&mut self, step_id: i64, task_id: i64, actor: &str) -> Tx<bool> {
        let changed = sql_query(
            "UPDATE tasker_workflow_steps SET state = 'skipped', updated_at = ?
             WHERE workflow_step_id = ? AND task_id = ? AND state = 'pending'",
        )
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(step_id)
        .bind::<BigInt, _>(task_id)
        .execute(self.conn)?;
        if changed == 0 {
            return Ok(false);
        }
        step_audit(
            self.conn,
            (step_id, task_id),
            Some(StepState::Pending.as_str()),
            StepState::Skipped.as_str(),
            None,
            actor,
            None,
        )?;
        Ok(true)
    }

    async fn unblock_children(&mut self, step_id: i64) -> Tx<Vec<Unblocked>> {
        let mut children = sql_query(
            "UPDATE tasker_workflow_steps SET pending_parents = pending_parents - 1, updated_at = ?
             WHERE workflow_step_id IN (SELECT to_step_id FROM tasker_workflow_step_edges
                                        WHERE from_step_id = ?)
             RETURNING workflow_step_id, name, pending_parents, state, position",
        )
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(step_id)
        .load::<ChildRow>(self.conn)?;
        children.retain(ChildRow::unblocked);
        children.sort_by_key(|c| c.position);
        let mut unblocked = Vec::with_capacity(children.len());
        for child in children {
            let satisfied = sql_query(SATISFIED_SQL)
                .bind::<BigInt, _>(child.workflow_step_id)
                .get_result::<CountRow>(self.conn)?;
            unblocked.push(Unblocked {
                step_id: child.workflow_step_id,
                name: child.name,
                satisfied: satisfied.count > 0,
            });
        }
        Ok(unblocked)
    }

    async fn release_step(&mut self, step_id: i64, task_id: i64, actor: &str) -> Tx<()> {
        let changed = sql_query(
            "UPDATE tasker_workflow_steps SET state = 'ready', updated_at = ?
             WHERE workflow_step_id = ? AND state = 'pending'",
        )
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(step_id)
        .execute(self.conn)?;
        if changed > 0 {
            step_audit(
                self.conn,
                (step_id, task_id),
                Some(StepState::Pending.as_str()),
                StepState::Ready.as_str(),
                None,
                actor,
                None,
            )?;
        }
        Ok(())
    }

    async fn count_off_steps(&mut self, task_id: i64, n: usize) -> Tx<()> {
        self.count_off(task_id, n)
    }
}
