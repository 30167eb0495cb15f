//! The writes every SQLite operation is made of: state changes with their
//! audit rows, releasing children, claiming, creating a task.

use std::time::Duration;

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::{sql_query, RunQueryDsl, SqliteConnection};
use serde_json::Value;
use tasker::store::{ClaimedStep, Created, NewTask, StoreError};
use tasker::{StepState, TaskId, TaskState};

use super::primitives::SqliteOps;
use super::{now_ms, StepStateRow, TaskStateRow};
use crate::operator::{self, checked, Tx, TxError};
use crate::rows::{ClaimRow, IdRow};

/// Records a step transition; `(step_id, task_id)` name the step.
pub(super) fn step_audit(
    conn: &mut SqliteConnection,
    (step_id, task_id): (i64, i64),
    from: Option<&str>,
    to: &str,
    attempt: Option<i32>,
    actor: &str,
    error: Option<&str>,
) -> Tx<()> {
    sql_query(
        "INSERT INTO tasker_workflow_step_transitions
           (workflow_step_id, task_id, from_state, to_state, attempt, actor, error, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind::<BigInt, _>(step_id)
    .bind::<BigInt, _>(task_id)
    .bind::<Nullable<Text>, _>(from)
    .bind::<Text, _>(to)
    .bind::<Nullable<Integer>, _>(attempt)
    .bind::<Text, _>(actor)
    .bind::<Nullable<Text>, _>(error)
    .bind::<BigInt, _>(now_ms())
    .execute(conn)?;
    Ok(())
}

/// Writes the annotations of an applied completion of `(step, task)`.
pub(super) fn insert_annotations(
    conn: &mut SqliteConnection,
    (step_id, task_id): (i64, i64),
    annotations: &[tasker::Annotation],
    now: i64,
) -> Tx<()> {
    for a in annotations {
        sql_query(
            "INSERT INTO tasker_task_annotations (task_id, workflow_step_id, annotation_type, annotation, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<BigInt, _>(step_id)
        .bind::<Text, _>(&a.annotation_type)
        .bind::<Text, _>(a.annotation.to_string())
        .bind::<BigInt, _>(now)
        .execute(conn)?;
    }
    Ok(())
}

pub(super) fn task_audit(
    conn: &mut SqliteConnection,
    task_id: i64,
    from: Option<&str>,
    to: &str,
    actor: &str,
) -> Tx<()> {
    sql_query(
        "INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor, created_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind::<BigInt, _>(task_id)
    .bind::<Nullable<Text>, _>(from)
    .bind::<Text, _>(to)
    .bind::<Text, _>(actor)
    .bind::<BigInt, _>(now_ms())
    .execute(conn)?;
    Ok(())
}

/// Moves a task from `from` to `to` (if it is still `from`), audited.
pub(super) fn set_task_state(
    conn: &mut SqliteConnection,
    task_id: i64,
    from: &str,
    to: &str,
    actor: &str,
) -> Tx<bool> {
    let changed = sql_query(
        "UPDATE tasker_tasks SET state = ?, updated_at = ? WHERE task_id = ? AND state = ?",
    )
    .bind::<Text, _>(to)
    .bind::<BigInt, _>(now_ms())
    .bind::<BigInt, _>(task_id)
    .bind::<Text, _>(from)
    .execute(conn)?;
    if changed > 0 {
        task_audit(conn, task_id, Some(from), to, actor)?;
    }
    Ok(changed > 0)
}

pub(super) fn task_state(conn: &mut SqliteConnection, task_id: i64) -> Tx<TaskStateRow> {
    sql_query("SELECT state, unfinished_steps FROM tasker_tasks WHERE task_id = ?")
        .bind::<BigInt, _>(task_id)
        .get_results::<TaskStateRow>(conn)?
        .pop()
        .ok_or(TxError::Store(StoreError::NotFound {
            what: "task",
            id: task_id,
        }))
}

pub(super) fn step_state(conn: &mut SqliteConnection, step_id: i64) -> Tx<StepStateRow> {
    sql_query("SELECT workflow_step_id, task_id, state, attempts FROM tasker_workflow_steps WHERE workflow_step_id = ?")
        .bind::<BigInt, _>(step_id)
        .get_results::<StepStateRow>(conn)?
        .pop()
        .ok_or(TxError::Store(StoreError::NotFound {
            what: "step",
            id: step_id,
        }))
}

/// A step completed: release its children whose parents are now all done,
/// and count it off its task; the task finishes when nothing is left
/// (see `operator::finished_state`). Returns the released children and the
/// task's new state, if it changed.
pub(super) fn finish_step(
    conn: &mut SqliteConnection,
    step_id: i64,
    task_id: i64,
    actor: &str,
) -> Tx<(Vec<i64>, Option<TaskState>)> {
    let released = release_children(conn, step_id, task_id, actor)?;
    let task = sql_query(
        "UPDATE tasker_tasks SET unfinished_steps = unfinished_steps - 1, updated_at = ?
         WHERE task_id = ? RETURNING state, unfinished_steps",
    )
    .bind::<BigInt, _>(now_ms())
    .bind::<BigInt, _>(task_id)
    .get_result::<TaskStateRow>(conn)?;
    let mut finished = None;
    // As on PostgreSQL: a worker's completion finishes an `in_progress`
    // task (operator actions keep a task with no failed step out of
    // `error`, and a task whose steps run is never `pending`).
    if task.unfinished_steps == 0 && task.state == TaskState::InProgress.as_str() {
        let counts = SqliteOps { conn }.step_counts_now(task_id)?;
        let (from, to) = checked(
            TaskState::InProgress,
            operator::finished_state(counts.cancelled),
        );
        if set_task_state(conn, task_id, from.as_str(), to.as_str(), actor)? {
            finished = Some(to);
        }
    }
    Ok((released, finished))
}

/// Decrements the children of a done step; those with no parent left go
/// `pending -> ready`, audited. Returns them.
pub(super) fn release_children(
    conn: &mut SqliteConnection,
    step_id: i64,
    task_id: i64,
    actor: &str,
) -> Tx<Vec<i64>> {
    let children = sql_query(
        "UPDATE tasker_workflow_steps SET pending_parents = pending_parents - 1,
           state = CASE WHEN pending_parents = 1 AND state = 'pending' THEN 'ready' ELSE state END,
           updated_at = ?
         WHERE workflow_step_id IN (SELECT to_step_id FROM tasker_workflow_step_edges WHERE from_step_id = ?)
         RETURNING workflow_step_id, task_id, state, attempts",
    )
    .bind::<BigInt, _>(now_ms())
    .bind::<BigInt, _>(step_id)
    .load::<StepStateRow>(conn)?;
    let mut released = Vec::new();
    for child in children
        .iter()
        .filter(|c| c.state == StepState::Ready.as_str())
    {
        step_audit(
            conn,
            (child.workflow_step_id, task_id),
            Some("pending"),
            "ready",
            None,
            actor,
            None,
        )?;
        released.push(child.workflow_step_id);
    }
    Ok(released)
}

/// Moves `steps` to the final state `to` (cancelled or resolved by hand),
/// audited.
pub(super) fn set_steps_state(
    conn: &mut SqliteConnection,
    steps: &[StepStateRow],
    to: StepState,
    actor: &str,
) -> Tx<()> {
    for step in steps {
        sql_query(
            "UPDATE tasker_workflow_steps SET state = ?, lease_expires_at = NULL, updated_at = ?
             WHERE workflow_step_id = ?",
        )
        .bind::<Text, _>(to.as_str())
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(step.workflow_step_id)
        .execute(conn)?;
        step_audit(
            conn,
            (step.workflow_step_id, step.task_id),
            Some(&step.state),
            to.as_str(),
            Some(step.attempts),
            actor,
            None,
        )?;
    }
    Ok(())
}

/// Claims a just-released child for the worker that released it, unless
/// its task's deadline has passed.
pub(super) fn take_child(
    conn: &mut SqliteConnection,
    step_id: i64,
    lease: Duration,
    worker: &str,
) -> Tx<Option<ClaimedStep>> {
    let now = now_ms();
    let Some(step) = sql_query(
        "UPDATE tasker_workflow_steps SET state = 'in_progress', attempts = attempts + 1,
           lease_expires_at = ?, worker_id = ?, updated_at = ?
         WHERE workflow_step_id = ? AND state = 'ready' AND (deadline_at IS NULL OR deadline_at > ?)
         RETURNING workflow_step_id, task_id, state, attempts",
    )
    .bind::<BigInt, _>(now + lease.as_millis() as i64)
    .bind::<Text, _>(worker)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(step_id)
    .bind::<BigInt, _>(now)
    .get_results::<StepStateRow>(conn)?
    .pop() else {
        return Ok(None);
    };
    claim_audit(conn, &step, worker)?;
    let row = claim_rows(conn, &step.workflow_step_id.to_string(), "")?
        .pop()
        .expect("the step just claimed exists");
    Ok(Some(row.into_claimed()))
}

/// The audit row of a claim: `ready -> in_progress` for this attempt.
pub(super) fn claim_audit(
    conn: &mut SqliteConnection,
    step: &StepStateRow,
    worker: &str,
) -> Tx<()> {
    step_audit(
        conn,
        (step.workflow_step_id, step.task_id),
        Some("ready"),
        "in_progress",
        Some(step.attempts),
        worker,
        None,
    )
}

/// Claim rows (context and parents' outputs) of the steps with these ids.
pub(super) fn claim_rows(
    conn: &mut SqliteConnection,
    step_ids: &str,
    started: &str,
) -> Tx<Vec<ClaimRow>> {
    Ok(sql_query(format!(
        "SELECT s.workflow_step_id, s.task_id, s.named_task_id, s.name, s.position, s.attempts,
                s.max_attempts, t.context, s.task_id IN ({started}) AS task_started,
                s.item_index, s.item,
                COALESCE((SELECT json_group_array(json_array(p.name, json(p.results)))
                          FROM tasker_workflow_step_edges e
                          JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
                          WHERE e.to_step_id = s.workflow_step_id), '[]') AS inputs
         FROM tasker_workflow_steps s JOIN tasker_tasks t ON t.task_id = s.task_id
         WHERE s.workflow_step_id IN ({step_ids})
         ORDER BY s.claim_at, s.workflow_step_id"
    ))
    .load::<ClaimRow>(conn)?)
}

/// Writes one task, its steps and edges (inside the caller's transaction).
pub(super) fn create_one(conn: &mut SqliteConnection, task: &NewTask) -> Tx<Created> {
    if let Some(key) = &task.identity_key {
        let existing = sql_query("SELECT task_id AS id FROM tasker_tasks WHERE identity_key = ?")
            .bind::<Text, _>(key)
            .get_results::<IdRow>(conn)?;
        if let Some(row) = existing.into_iter().next() {
            return Ok(Created::Existing(TaskId(row.id)));
        }
    }
    let now = now_ms();
    let deadline = task
        .max_execution_time
        .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let actor = task
        .initiator
        .clone()
        .unwrap_or_else(|| "tasker".to_owned());
    let task_id = sql_query(
        "INSERT INTO tasker_tasks (named_task_id, state, context, identity_key, initiator,
           source_system, reason, tags, unfinished_steps, priority, deadline_at, created_at,
           updated_at)
         VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING task_id AS id",
    )
    .bind::<BigInt, _>(task.handler_id)
    .bind::<Text, _>(task.context.to_string())
    .bind::<Nullable<Text>, _>(task.identity_key.as_deref())
    .bind::<Nullable<Text>, _>(task.initiator.as_deref())
    .bind::<Nullable<Text>, _>(task.source_system.as_deref())
    .bind::<Nullable<Text>, _>(task.reason.as_deref())
    .bind::<Text, _>(Value::from(task.tags.clone()).to_string())
    .bind::<Integer, _>(task.steps.len() as i32)
    .bind::<Integer, _>(i32::from(task.priority.level()))
    .bind::<Nullable<BigInt>, _>(deadline)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(now)
    .get_result::<IdRow>(conn)?
    .id;
    task_audit(conn, task_id, None, "pending", &actor)?;
    let mut ids = vec![0i64; task.steps.len()];
    for step in &task.steps {
        let state = if step.parents.is_empty() {
            "ready"
        } else {
            "pending"
        };
        let id = sql_query(
            "INSERT INTO tasker_workflow_steps (task_id, named_task_id, name, position, state,
               max_attempts, attempt_budget, timeout_ms, pending_parents, priority, head_start_ms,
               claim_at, deadline_at, run_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING workflow_step_id AS id",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<BigInt, _>(task.handler_id)
        .bind::<Text, _>(&step.name)
        .bind::<Integer, _>(step.index as i32)
        .bind::<Text, _>(state)
        .bind::<Integer, _>(step.max_attempts as i32)
        .bind::<Integer, _>(step.max_attempts as i32)
        .bind::<Nullable<BigInt>, _>(step.timeout.map(|t| t.as_millis() as i64))
        .bind::<Integer, _>(step.parents.len() as i32)
        .bind::<Integer, _>(i32::from(step.priority.level()))
        .bind::<BigInt, _>(step.head_start.as_millis())
        .bind::<BigInt, _>(now - step.head_start.as_millis())
        .bind::<Nullable<BigInt>, _>(deadline)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(now)
        .get_result::<IdRow>(conn)?
        .id;
        ids[step.index as usize] = id;
        step_audit(conn, (id, task_id), None, state, None, &actor, None)?;
    }
    for step in &task.steps {
        for parent in &step.parents {
            sql_query(
                "INSERT INTO tasker_workflow_step_edges (from_step_id, to_step_id, task_id) VALUES (?, ?, ?)",
            )
            .bind::<BigInt, _>(ids[*parent as usize])
            .bind::<BigInt, _>(ids[step.index as usize])
            .bind::<BigInt, _>(task_id)
            .execute(conn)?;
        }
    }
    Ok(Created::New(TaskId(task_id)))
}
