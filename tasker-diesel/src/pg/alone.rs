//! Successes recorded alone, each in a transaction of its own: those that
//! carry annotations or are a decision's (its unchosen branches skipped).
//! The common success goes through the batched statement instead; a
//! transactional step's success comes here inside its own transaction.

use diesel::sql_query;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use tasker::store::{Completed, Completion, StoreError};
use tasker::StepId;

use super::primitives::PgOps;
use super::store::record_successes;
use crate::operator::{Tx, TxError};
use crate::rows::IdRow;
use crate::skip;

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
