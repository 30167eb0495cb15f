//! The fan-out primitives on SQLite (see `crate::fan_out`), inside the
//! one write transaction.

use diesel::sql_types::{BigInt, Bool, Integer, Text};
use diesel::{sql_query, RunQueryDsl};

use std::time::Duration;

use serde_json::Value;
use tasker::store::{Completed, Completion, Outcome};
use tasker::{StepError, StepId, StepState};

use super::complete::record_one;
use super::primitives::SqliteOps;
use super::writes::{set_steps_state, step_audit};
use super::{now_ms, StepStateRow};
use crate::fan_out::{
    AttemptRow, FanOutCount, FanOutPrimitives, FanOutRow, OutputRow, PlaceRow, Role, COLLECTED_SQL,
    COLLECTS_SQL, ROLE_SQL,
};
use crate::operator::Tx;
use crate::rows::{CountRow, IdRow};

impl FanOutPrimitives for SqliteOps<'_> {
    async fn lock_running(&mut self, step_id: i64, attempt: u32) -> Tx<Option<(i64, i32)>> {
        // The write transaction holds the database: no row lock needed.
        Ok(sql_query(
            "SELECT task_id, position FROM tasker_workflow_steps
             WHERE workflow_step_id = ? AND attempts = ? AND state = 'in_progress'",
        )
        .bind::<BigInt, _>(step_id)
        .bind::<Integer, _>(attempt as i32)
        .get_results::<PlaceRow>(self.conn)?
        .pop()
        .map(|r| (r.task_id, r.position)))
    }

    async fn insert_instances(
        &mut self,
        group: i64,
        items: &[String],
        ready: u32,
        source: &str,
        actor: &str,
    ) -> Tx<()> {
        let now = now_ms();
        let parents = sql_query(
            "SELECT e.from_step_id AS id FROM tasker_workflow_step_edges e
             JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
             WHERE e.to_step_id = ? AND p.name <> ?",
        )
        .bind::<BigInt, _>(group)
        .bind::<Text, _>(source)
        .load::<IdRow>(self.conn)?;
        for (index, item) in items.iter().enumerate() {
            let state = if (index as u32) < ready {
                "ready"
            } else {
                "pending"
            };
            let id = sql_query(
                "INSERT INTO tasker_workflow_steps (task_id, named_task_id, name, position, state,
                   max_attempts, attempt_budget, timeout_ms, pending_parents, priority,
                   head_start_ms, claim_at, deadline_at, run_at, created_at, updated_at,
                   item_index, item)
                 SELECT task_id, named_task_id, name, position, ?, attempt_budget, attempt_budget,
                   timeout_ms, 0, priority, head_start_ms, ? - head_start_ms, deadline_at, ?, ?, ?,
                   ?, ?
                 FROM tasker_workflow_steps WHERE workflow_step_id = ?
                 RETURNING workflow_step_id AS id, task_id",
            )
            .bind::<Text, _>(state)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(now)
            .bind::<Integer, _>(index as i32)
            .bind::<Text, _>(item)
            .bind::<BigInt, _>(group)
            .get_result::<InsertedRow>(self.conn)?;
            step_audit(
                self.conn,
                (id.id, id.task_id),
                None,
                state,
                None,
                actor,
                None,
            )?;
            for parent in &parents {
                sql_query(
                    "INSERT INTO tasker_workflow_step_edges (from_step_id, to_step_id, task_id)
                     VALUES (?, ?, ?)",
                )
                .bind::<BigInt, _>(parent.id)
                .bind::<BigInt, _>(id.id)
                .bind::<BigInt, _>(id.task_id)
                .execute(self.conn)?;
            }
        }
        Ok(())
    }

    async fn open_fan_out(
        &mut self,
        group: i64,
        (task_id, position): (i64, i32),
        (items, concurrency): (u32, u32),
        collect: bool,
    ) -> Tx<()> {
        let now = now_ms();
        sql_query(
            "INSERT INTO tasker_step_fan_outs
               (workflow_step_id, task_id, position, items, concurrency, unfinished, collect_errors)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind::<BigInt, _>(group)
        .bind::<BigInt, _>(task_id)
        .bind::<Integer, _>(position)
        .bind::<Integer, _>(items as i32)
        .bind::<Integer, _>(concurrency as i32)
        .bind::<Integer, _>(items as i32)
        .bind::<Bool, _>(collect)
        .execute(self.conn)?;
        sql_query(
            "UPDATE tasker_workflow_steps SET lease_expires_at = NULL, worker_id = NULL,
               updated_at = ? WHERE workflow_step_id = ?",
        )
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(group)
        .execute(self.conn)?;
        sql_query(
            "UPDATE tasker_tasks SET unfinished_steps = unfinished_steps + ?, updated_at = ?
             WHERE task_id = ?",
        )
        .bind::<Integer, _>(items as i32)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(task_id)
        .execute(self.conn)?;
        Ok(())
    }

    async fn count_off_items(&mut self, step_ids: &[i64]) -> Tx<Vec<(FanOutCount, i32, i64)>> {
        // One at a time (the write transaction holds the database); per
        // group, the row after the last one.
        let mut counted: Vec<(FanOutCount, i32, i64)> = Vec::new();
        for &step_id in step_ids {
            let Some(row) = sql_query(COUNT_OFF_SQL)
                .bind::<BigInt, _>(step_id)
                .get_results::<FanOutRow>(self.conn)?
                .pop()
            else {
                continue;
            };
            let count = FanOutCount::from(row);
            match counted.iter_mut().find(|(c, _, _)| c.group == count.group) {
                Some(seen) => {
                    seen.0 = count;
                    seen.1 += 1;
                }
                None => counted.push((count, 1, step_id)),
            }
        }
        Ok(counted)
    }

    async fn release_items(
        &mut self,
        (task_id, position): (i64, i32),
        from: i32,
        to: i32,
        actor: &str,
    ) -> Tx<u32> {
        let released = sql_query(
            "UPDATE tasker_workflow_steps SET state = 'ready', updated_at = ?
             WHERE task_id = ? AND position = ? AND COALESCE(item_index, -1) >= ?
               AND COALESCE(item_index, -1) < ? AND state = 'pending'
             RETURNING workflow_step_id AS id",
        )
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(task_id)
        .bind::<Integer, _>(position)
        .bind::<Integer, _>(from)
        .bind::<Integer, _>(to)
        .get_results::<IdRow>(self.conn)?;
        for step in &released {
            step_audit(
                self.conn,
                (step.id, task_id),
                Some("pending"),
                "ready",
                None,
                actor,
                None,
            )?;
        }
        Ok(released.len() as u32)
    }

    async fn instance_outputs(
        &mut self,
        group: i64,
        (task_id, position): (i64, i32),
    ) -> Tx<(u32, Vec<OutputRow>)> {
        let attempt = sql_query(
            "SELECT attempts AS count FROM tasker_workflow_steps WHERE workflow_step_id = ?",
        )
        .bind::<BigInt, _>(group)
        .get_result::<CountRow>(self.conn)?;
        let outputs = sql_query(
            "SELECT results, state = 'error' AS failed FROM tasker_workflow_steps
             WHERE task_id = ? AND position = ? AND item_index IS NOT NULL ORDER BY item_index",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Integer, _>(position)
        .load::<OutputRow>(self.conn)?;
        Ok((attempt.count as u32, outputs))
    }

    async fn complete_group(
        &mut self,
        group: i64,
        attempt: u32,
        output: Value,
        actor: &str,
    ) -> Tx<Completed> {
        record_one(
            self.conn,
            &Completion {
                step_id: StepId(group),
                attempt,
                outcome: Outcome::Complete(output),
                worker: actor.to_owned(),
                duration: Duration::ZERO,
                take_next: None,
                annotations: Vec::new(),
                skip: Vec::new(),
                item_index: None,
            },
        )
    }

    async fn collects(&mut self, step_id: i64) -> Tx<bool> {
        Ok(sql_query(COLLECTS_SQL)
            .bind::<BigInt, _>(step_id)
            .get_results::<CountRow>(self.conn)?
            .iter()
            .any(|r| r.count == 1))
    }

    async fn collected(&mut self, step_id: i64) -> Tx<bool> {
        let row = sql_query(COLLECTED_SQL)
            .bind::<BigInt, _>(step_id)
            .get_result::<CountRow>(self.conn)?;
        Ok(row.count > 0)
    }

    async fn collect_failure(
        &mut self,
        (step_id, attempt): (i64, u32),
        error: &StepError,
        result: &Value,
        actor: &str,
    ) -> Tx<bool> {
        let now = now_ms();
        let Some(step) = sql_query(
            "UPDATE tasker_workflow_steps SET state = 'error', lease_expires_at = NULL,
               last_error = ?, results = ?, updated_at = ?
             WHERE workflow_step_id = ? AND attempts = ? AND state = 'in_progress'
             RETURNING workflow_step_id, task_id, state, attempts",
        )
        .bind::<Text, _>(serde_json::to_string(error).expect("errors serialize"))
        .bind::<Text, _>(result.to_string())
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(step_id)
        .bind::<Integer, _>(attempt as i32)
        .get_results::<StepStateRow>(self.conn)?
        .pop() else {
            return Ok(false);
        };
        step_audit(
            self.conn,
            (step.workflow_step_id, step.task_id),
            Some("in_progress"),
            "error",
            Some(step.attempts),
            actor,
            Some(&error.to_string()),
        )?;
        self.count_off(step.task_id, 1)?;
        Ok(true)
    }

    async fn expired_collected_items(&mut self, all: bool) -> Tx<Vec<(i64, u32)>> {
        let lease = if all {
            "s.lease_expires_at IS NOT NULL"
        } else {
            "s.lease_expires_at < ?"
        };
        let mut query = sql_query(format!(
            "SELECT s.workflow_step_id, s.attempts FROM tasker_workflow_steps s
             JOIN tasker_step_fan_outs f ON f.task_id = s.task_id AND f.position = s.position
             WHERE s.state = 'in_progress' AND {lease} AND s.attempts >= s.max_attempts
               AND s.item_index IS NOT NULL AND f.collect_errors
             ORDER BY s.workflow_step_id LIMIT 1000"
        ))
        .into_boxed();
        if !all {
            query = query.bind::<BigInt, _>(now_ms());
        }
        Ok(query
            .load::<AttemptRow>(self.conn)?
            .into_iter()
            .map(|r| (r.workflow_step_id, r.attempts as u32))
            .collect())
    }

    async fn role(&mut self, step_id: i64) -> Tx<Role> {
        let row = sql_query(ROLE_SQL)
            .bind::<BigInt, _>(step_id)
            .get_result::<CountRow>(self.conn)?;
        Ok(Role::from_code(row.count))
    }

    async fn cancel_instances(&mut self, group: i64, actor: &str) -> Tx<()> {
        let doomed = sql_query(
            "SELECT i.workflow_step_id, i.task_id, i.state, i.attempts
             FROM tasker_workflow_steps g
             JOIN tasker_workflow_steps i ON i.task_id = g.task_id AND i.position = g.position
             WHERE g.workflow_step_id = ? AND i.item_index IS NOT NULL
               AND (i.state IN ('pending', 'ready', 'in_progress')
                 OR (i.state = 'error' AND i.results IS NULL))",
        )
        .bind::<BigInt, _>(group)
        .load::<StepStateRow>(self.conn)?;
        set_steps_state(self.conn, &doomed, StepState::Cancelled, actor)?;
        if let Some(first) = doomed.first() {
            self.count_off(first.task_id, doomed.len())?;
        }
        Ok(())
    }
}

/// An inserted instance: its id and task.
#[derive(diesel::QueryableByName)]
struct InsertedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    task_id: i64,
}

/// Counts one instance off its group.
const COUNT_OFF_SQL: &str = "UPDATE tasker_step_fan_outs SET unfinished = unfinished - 1
     WHERE (task_id, position) = (SELECT task_id, position FROM tasker_workflow_steps
                                  WHERE workflow_step_id = ? AND item_index IS NOT NULL)
     RETURNING workflow_step_id, task_id, position, items, concurrency, unfinished,
               collect_errors";
