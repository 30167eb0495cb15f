//! Successes recorded alone, each in a transaction of its own: those that
//! carry annotations, are a decision's (its unchosen branches skipped) or
//! a fan-out instance's (its group counted); fan-outs expanded; and
//! fan-out instances' failures (collected by their group, or failing the
//! task as any step's).
//! The common success goes through the batched statement instead; a
//! transactional step's success comes here inside its own transaction.

use diesel::sql_query;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::join_all;
use serde_json::Value;
use tasker::fan_out::OnItemError;
use tasker::store::{Completed, Completion, Outcome, StoreError};
use tasker::{StepError, StepId};

use super::primitives::PgOps;
use super::rows::CompleteRow;
use super::successes::record_successes;
use super::PgStore;
use crate::operator::{Tx, TxError};
use crate::rows::IdRow;
use crate::{fan_out, skip};

/// Successes recorded alone in flight at once, each on a pooled connection
/// of its own (fewer when the pool is smaller).
const AT_ONCE: usize = 4;

/// Records successes alone, each in a transaction of its own, several at
/// once on connections of their own so their commits overlap (one after
/// the other, a batch of decisions waited for as many commits in a row).
/// Returns each one's place in the batch with what recording it did.
pub(super) async fn record_each_alone(
    store: &PgStore,
    alone: &[(usize, &Completion)],
) -> Result<Vec<(usize, Completed)>, StoreError> {
    let width = AT_ONCE.min(store.pool_size.max(1) as usize);
    let mut recorded = Vec::with_capacity(alone.len());
    for group in alone.chunks(width) {
        let mut pending = Vec::with_capacity(group.len());
        for one in group {
            pending.push(on_its_own(store, *one));
        }
        for one in join_all(pending).await {
            recorded.push(one?);
        }
    }
    Ok(recorded)
}

/// Records one success or fan-out alone, in a transaction of its own on a
/// pooled connection of its own; `one.0` is its place in the batch.
async fn on_its_own(
    store: &PgStore,
    (i, completion): (usize, &Completion),
) -> Result<(usize, Completed), StoreError> {
    let mut conn = store.conn().await?;
    let channel = &store.channel;
    let completed = conn
        .transaction(async move |conn| match &completion.outcome {
            Outcome::Complete(output) => record_alone(conn, (i, completion, output), channel).await,
            Outcome::FanOut {
                source,
                items,
                concurrency,
                on_item_error,
            } => {
                let fan_out = (*source, &items[..], (*concurrency, *on_item_error));
                record_fan_out(conn, completion, fan_out, channel).await
            }
            Outcome::Fail(error) if completion.item_index.is_some() => {
                record_item_failure(conn, completion, error, channel).await
            }
            Outcome::Retry { .. } | Outcome::Fail(_) => Err(TxError::Store(StoreError::Invalid(
                "only successes, fan-outs and fan-out items' failures are recorded alone"
                    .to_owned(),
            ))),
        })
        .await
        .map_err(|e: TxError| {
            e.into_store("recording a step result alone (annotations, skips or a fan-out)")
        })?;
    Ok((i, completed))
}

/// Records one success inside the caller's transaction: a decision's
/// unchosen branches skipped first (under the step's row lock, only while
/// the attempt is still the step's), then the result with the batched
/// statement, then its annotations when it was applied.
pub(super) async fn record_alone(
    conn: &mut AsyncPgConnection,
    one: (usize, &Completion, &Value),
    channel: &str,
) -> Tx<Completed> {
    let completion = one.1;
    let mut skipped = skip::Skipped::default();
    if !completion.skip.is_empty() {
        let current = sql_query(
            "SELECT task_id AS id FROM tasker_workflow_steps
             WHERE workflow_step_id = $1 AND attempts = $2 AND state = 'in_progress' FOR UPDATE",
        )
        .bind::<BigInt, _>(completion.step_id.0)
        .bind::<Integer, _>(completion.attempt as i32)
        .get_results::<IdRow>(conn)
        .await?
        .pop();
        if let Some(task) = current {
            skipped = skip::skip_unchosen(
                &mut PgOps { conn, channel },
                task.id,
                &completion.skip,
                &completion.worker,
            )
            .await?;
            if skipped.released > 0 {
                // A step released past a skipped one is ready now.
                notify(conn, channel).await?;
            }
        }
    }
    let row = record_successes(conn, &[one], channel)
        .await?
        .pop()
        .ok_or_else(|| {
            TxError::Store(StoreError::Database {
                message: "recording a step result returned no row".to_owned(),
                source: None,
            })
        })?;
    let mut completed = row.into_completed()?;
    if completed.applied && !completion.annotations.is_empty() {
        insert_annotations(conn, completion).await?;
    }
    if completed.applied && completion.item_index.is_some() {
        item_finished(conn, completion, &mut completed, channel).await?;
    }
    completed.released += skipped.released;
    completed.skipped = skipped
        .steps
        .into_iter()
        .map(|(id, name)| (StepId(id), name))
        .collect();
    Ok(completed)
}

/// After an instance's success: its group counted, the next instance
/// released and, after the last one, the group completed with the
/// instances' outputs (by the same statement as any success, so its
/// children are released and its task may finish).
async fn item_finished(
    conn: &mut AsyncPgConnection,
    completion: &Completion,
    completed: &mut Completed,
    channel: &str,
) -> Tx<()> {
    let finished = fan_out::item_finished(
        &mut PgOps { conn, channel },
        completion.step_id.0,
        &completion.worker,
    )
    .await?;
    if finished.released > 0 {
        notify(conn, channel).await?;
    }
    finished.add_to(completed);
    Ok(())
}

/// Records a fan-out instance's failure for good, in the caller's
/// transaction: collected as its result when its group collects failures
/// (counted off like a success), otherwise as any step's failure (the task
/// goes to `error`).
async fn record_item_failure(
    conn: &mut AsyncPgConnection,
    completion: &Completion,
    error: &StepError,
    channel: &str,
) -> Tx<Completed> {
    let collected = fan_out::item_failed(
        &mut PgOps { conn, channel },
        (completion.step_id.0, completion.attempt),
        error,
        &completion.worker,
    )
    .await?;
    if let Some(completed) = collected {
        if completed.released > 0 {
            notify(conn, channel).await?;
        }
        return Ok(completed);
    }
    let row = super::store::fail_query(completion, error)
        .get_result::<CompleteRow>(conn)
        .await?;
    Ok(row.into_completed())
}

/// Expands a claimed fan-out group into its instances (fenced by its
/// attempt), in the caller's transaction.
async fn record_fan_out(
    conn: &mut AsyncPgConnection,
    completion: &Completion,
    (source, items, settings): (&str, &[Value], (u32, OnItemError)),
    channel: &str,
) -> Tx<Completed> {
    let ready = fan_out::fan_out(
        &mut PgOps { conn, channel },
        (completion.step_id.0, completion.attempt),
        source,
        items,
        settings,
        &completion.worker,
    )
    .await?;
    let Some(ready) = ready else {
        return Ok(Completed::default());
    };
    notify(conn, channel).await?;
    Ok(Completed {
        applied: true,
        released: ready,
        ..Completed::default()
    })
}

/// Wakes the workers waiting for ready steps (at commit).
async fn notify(conn: &mut AsyncPgConnection, channel: &str) -> Result<(), diesel::result::Error> {
    sql_query("SELECT pg_notify($1, '')")
        .bind::<Text, _>(channel)
        .execute(conn)
        .await
        .map(drop)
}

/// Writes the annotations of an applied completion (inside its
/// transaction).
async fn insert_annotations(
    conn: &mut AsyncPgConnection,
    completion: &Completion,
) -> Result<(), diesel::result::Error> {
    let types: Vec<&str> = completion
        .annotations
        .iter()
        .map(|a| a.annotation_type.as_str())
        .collect();
    let values: Vec<String> = completion
        .annotations
        .iter()
        .map(|a| a.annotation.to_string())
        .collect();
    sql_query(
        "INSERT INTO tasker_task_annotations (task_id, workflow_step_id, annotation_type, annotation)
         SELECT s.task_id, s.workflow_step_id, a.kind, a.value::jsonb
         FROM tasker_workflow_steps s, unnest($2::text[], $3::text[]) WITH ORDINALITY AS a(kind, value, n)
         WHERE s.workflow_step_id = $1 ORDER BY a.n",
    )
    .bind::<BigInt, _>(completion.step_id.0)
    .bind::<Array<Text>, _>(types)
    .bind::<Array<Text>, _>(values)
    .execute(conn)
    .await
    .map(drop)
}
