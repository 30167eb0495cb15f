//! Recording one attempt's end on SQLite, inside the caller's write
//! transaction: a success (with its annotations, a decision's skips and a
//! fan-out instance's bookkeeping), a failure, or a fan-out's expansion.

use std::time::Duration;

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::{sql_query, RunQueryDsl, SqliteConnection};
use tasker::fan_out::OnItemError;
use tasker::store::{Completed, Completion, Outcome};
use tasker::{StepId, TaskState};

use super::primitives::SqliteOps;
use super::writes::{finish_step, insert_annotations, set_task_state, step_audit, take_child};
use super::{now_ms, StepStateRow};
use crate::operator::{run_now, Tx};
use crate::rows::CountRow;
use crate::{fan_out, skip};

/// Records `c` (fenced: an attempt that is no longer the step's is
/// reported `applied: false` and changes nothing).
pub(super) fn record_one(conn: &mut SqliteConnection, c: &Completion) -> Tx<Completed> {
    let now = now_ms();
    let (state, results_json, error) = match &c.outcome {
        Outcome::Complete(output) => ("complete", Some(output.to_string()), None),
        Outcome::Retry { error, .. } => ("ready", None, Some(error)),
        Outcome::Fail(error) => {
            if c.item_index.is_some() {
                // Its group's to collect, or a failure as any step's.
                let collected = run_now(fan_out::item_failed(
                    &mut SqliteOps { conn },
                    (c.step_id.0, c.attempt),
                    error,
                    &c.worker,
                ))?;
                if let Some(completed) = collected {
                    return Ok(completed);
                }
            }
            ("error", None, Some(error))
        }
        Outcome::FanOut {
            source,
            items,
            concurrency,
            on_item_error,
        } => return record_fan_out(conn, c, (source, items, (*concurrency, *on_item_error))),
    };
    let run_at = match &c.outcome {
        Outcome::Retry { delay, .. } => now + delay.as_millis() as i64,
        _ => now,
    };
    let updated = sql_query(
        "UPDATE tasker_workflow_steps SET state = ?, results = COALESCE(?, results),
           last_error = COALESCE(?, last_error), run_at = ?,
           claim_at = ? - head_start_ms, lease_expires_at = NULL, updated_at = ?
         WHERE workflow_step_id = ? AND attempts = ? AND state = 'in_progress'
         RETURNING workflow_step_id, task_id, state, attempts",
    )
    .bind::<Text, _>(state)
    .bind::<Nullable<Text>, _>(results_json)
    .bind::<Nullable<Text>, _>(error.map(|e| serde_json::to_string(e).expect("errors serialize")))
    .bind::<BigInt, _>(run_at)
    .bind::<BigInt, _>(run_at)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(c.step_id.0)
    .bind::<Integer, _>(c.attempt as i32)
    .load::<StepStateRow>(conn)?;
    let Some(step) = updated.into_iter().next() else {
        return Ok(Completed::default());
    };
    let message = error.map(ToString::to_string);
    step_audit(
        conn,
        (step.workflow_step_id, step.task_id),
        Some("in_progress"),
        state,
        Some(step.attempts),
        &c.worker,
        message.as_deref(),
    )?;
    let mut completed = Completed {
        applied: true,
        ..Completed::default()
    };
    match &c.outcome {
        Outcome::Complete(_) => {
            insert_annotations(
                conn,
                (step.workflow_step_id, step.task_id),
                &c.annotations,
                now,
            )?;
            // A decision's unchosen branches, before its children are
            // released.
            let skipped = run_now(skip::skip_unchosen(
                &mut SqliteOps { conn },
                step.task_id,
                &c.skip,
                &c.worker,
            ))?;
            completed.skipped = skipped
                .steps
                .into_iter()
                .map(|(id, name)| (StepId(id), name))
                .collect();
            let (released, finished) =
                finish_step(conn, step.workflow_step_id, step.task_id, &c.worker)?;
            completed.released = released.len() as u32 + skipped.released;
            completed.task_state = finished;
            if let (Some(lease), Some(child)) = (c.take_next, released.first()) {
                completed.next = take_child(conn, *child, lease, &c.worker)?;
                if completed.next.is_some() {
                    completed.released -= 1;
                }
            }
            if c.item_index.is_some() {
                // Its group counted, the next instance released, and the
                // group completed after the last one.
                run_now(fan_out::item_finished(
                    &mut SqliteOps { conn },
                    c.step_id.0,
                    &c.worker,
                ))?
                .add_to(&mut completed);
            }
        }
        Outcome::Fail(_) => {
            if set_task_state(conn, step.task_id, "in_progress", "error", &c.worker)? {
                completed.task_state = Some(TaskState::Error);
            }
        }
        Outcome::Retry { .. } | Outcome::FanOut { .. } => {}
    }
    if completed.task_state.is_some() && completed.task_duration.is_none() {
        completed.task_duration = Some(task_age(conn, step.task_id)?);
    }
    Ok(completed)
}

/// How long ago the task was created, by the store's clock.
fn task_age(conn: &mut SqliteConnection, task_id: i64) -> Tx<Duration> {
    let age = sql_query("SELECT ? - created_at AS count FROM tasker_tasks WHERE task_id = ?")
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(task_id)
        .get_result::<CountRow>(conn)?;
    Ok(Duration::from_millis(age.count.max(0) as u64))
}

/// Expands a claimed fan-out group into its instances (fenced by its
/// attempt).
fn record_fan_out(
    conn: &mut SqliteConnection,
    c: &Completion,
    (source, items, settings): (&str, &[serde_json::Value], (u32, OnItemError)),
) -> Tx<Completed> {
    let ready = run_now(fan_out::fan_out(
        &mut SqliteOps { conn },
        (c.step_id.0, c.attempt),
        source,
        items,
        settings,
        &c.worker,
    ))?;
    Ok(match ready {
        Some(ready) => Completed {
            applied: true,
            released: ready,
            ..Completed::default()
        },
        None => Completed::default(),
    })
}
