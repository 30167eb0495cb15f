//! Successes recorded alone, each in a transaction of its own: those that
//! carry annotations or are a decision's (its unchosen branches skipped).
//! The common success goes through the batched statement instead; a
//! transactional step's success comes here inside its own transaction.

use diesel::sql_query;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::join_all;
use serde_json::Value;
use tasker::store::{Completed, Completion, StoreError};
use tasker::StepId;

use super::primitives::PgOps;
use super::store::record_successes;
use super::PgStore;
use crate::operator::{Tx, TxError};
use crate::rows::IdRow;
use crate::skip;

/// Successes recorded alone in flight at once, each on a pooled connection
/// of its own (fewer when the pool is smaller).
const AT_ONCE: usize = 4;

/// Records successes alone, each in a transaction of its own, several at
/// once on connections of their own so their commits overlap (one after
/// the other, a batch of decisions waited for as many commits in a row).
/// Returns each one's place in the batch with what recording it did.
pub(super) async fn record_each_alone(
    store: &PgStore,
    alone: &[(usize, &Completion, &Value)],
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

/// Records one success alone, in a transaction of its own on a pooled
/// connection of its own; `one.0` is its place in the batch.
async fn on_its_own(
    store: &PgStore,
    one: (usize, &Completion, &Value),
) -> Result<(usize, Completed), StoreError> {
    let mut conn = store.conn().await?;
    let channel = &store.channel;
    let completed = conn
        .transaction(async move |conn| record_alone(conn, one, channel).await)
        .await
        .map_err(|e: TxError| {
            e.into_store("recording a step result with its annotations or skips")
        })?;
    Ok((one.0, completed))
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
                &mut PgOps { conn },
                task.id,
                &completion.skip,
                &completion.worker,
            )
            .await?;
            if skipped.released > 0 {
                // A step released past a skipped one is ready now.
                sql_query("SELECT pg_notify($1, '')")
                    .bind::<Text, _>(channel)
                    .execute(conn)
                    .await?;
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
    completed.released += skipped.released;
    completed.skipped = skipped
        .steps
        .into_iter()
        .map(|(id, name)| (StepId(id), name))
        .collect();
    Ok(completed)
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
