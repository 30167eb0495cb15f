//! Recording successful attempts with the batched statement (claim on
//! release included): the one writer of step successes on PostgreSQL,
//! for plain batches, alone successes, fan-out items and groups.

use diesel::sql_query;
use diesel::sql_types::{Array, BigInt, Double, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use tasker::store::Completion;

use super::rows::BatchRow;
use super::sql::{
    complete_sized_sql, COMPLETE_BATCH_SIMPLE_SQL, COMPLETE_BATCH_SQL, SIZED_COMPLETIONS,
};
use super::Prepared;

/// Records successful attempts with one statement on `conn` (fenced: an
/// attempt that is no longer the step's is reported `applied: false`).
pub(super) async fn record_successes(
    conn: &mut AsyncPgConnection,
    successes: &[(usize, &Completion, &Value)],
    channel: &str,
) -> Result<Vec<BatchRow>, diesel::result::Error> {
    let Some((_, first, _)) = successes.first() else {
        return Ok(Vec::new());
    };
    let take: Vec<bool> = successes
        .iter()
        .map(|(_, c, _)| c.take_next.is_some())
        .collect();
    let lease = successes
        .iter()
        .find_map(|(_, c, _)| c.take_next)
        .unwrap_or_default();
    // With released children to take along, the statement that claims them
    // too; its two extra parameters follow the common five.
    let takes_any = take.iter().any(|t| *t);
    let ids: Vec<i64> = successes.iter().map(|(_, c, _)| c.step_id.0).collect();
    let attempts: Vec<i32> = successes.iter().map(|(_, c, _)| c.attempt as i32).collect();
    let outputs: Vec<String> = successes.iter().map(|(_, _, o)| o.to_string()).collect();
    let sized = successes.len() <= SIZED_COMPLETIONS;
    let common = sql_query(match (sized, takes_any) {
        (true, take) => complete_sized_sql(take, successes.len()),
        (false, true) => COMPLETE_BATCH_SQL,
        (false, false) => COMPLETE_BATCH_SIMPLE_SQL,
    })
    .into_boxed::<diesel::pg::Pg>()
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Integer>, _>(attempts)
    .bind::<Array<Text>, _>(outputs)
    .bind::<Text, _>(&first.worker)
    .bind::<Text, _>(channel);
    let query = if takes_any {
        common
            .bind::<Array<diesel::sql_types::Bool>, _>(take)
            .bind::<Double, _>(lease.as_secs_f64())
    } else {
        common
    };
    // One statement for every size, cached prepared, was slow: the
    // generic plan PostgreSQL switches to after five runs is planned for an
    // `unnest` of 10 rows, and ran S2 (ten-step chains, one worker,
    // concurrency 32) at ~1,400 steps/s with a 24 ms hand-off p50, against
    // ~3,500 and ~7 ms planned for the values at hand. Each size up to
    // SIZED_COMPLETIONS has a statement of its own, whose generic plan is
    // for its size; a larger batch is planned at each run.
    if sized {
        Prepared(query).load::<BatchRow>(conn).await
    } else {
        query.load::<BatchRow>(conn).await
    }
}
