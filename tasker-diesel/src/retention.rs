//! Purging finished tasks and listing dead letters, written once for both
//! backends (like [`crate::operator`]): the statements and their order are
//! here; a backend supplies its [`Dialect`](crate::dialect::Dialect) (how it writes a time, a JSON
//! field, a row lock) and two primitives that run them ([`RetentionOps`]).

use std::future::Future;

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::QueryableByName;
use tasker::store::{DeadLetter, DeadLetterFilter, PurgeFilter, StoreError};
use tasker::{StepError, StepId, TaskId};

use crate::dialect::Dialect;
use crate::operator::Tx;
use crate::rows::time;

/// The parameters every statement here binds, in this order: `$1`
/// namespace, `$2` name, `$3` a time (ms), `$4` error class, `$5` limit.
pub(crate) struct Binds<'a> {
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) time_ms: Option<i64>,
    pub(crate) error_class: Option<&'a str>,
    pub(crate) limit: i64,
}

/// Binds [`Binds`] to a `sql_query`, in the order the statements here
/// number them; the one place that order is written for both backends.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {
        $query
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>($binds.namespace)
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>($binds.name)
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>($binds.time_ms)
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>($binds.error_class)
            .bind::<diesel::sql_types::BigInt, _>($binds.limit)
    };
}
pub(crate) use bind_all;

/// The two statements a backend runs for this module.
pub(crate) trait RetentionOps {
    /// Runs a query of task ids with [`Binds`].
    fn task_ids(&mut self, sql: &str, binds: &Binds<'_>) -> impl Future<Output = Tx<Vec<i64>>>;
    /// Runs a dead-letter query with [`Binds`].
    fn dead_letter_rows(
        &mut self,
        sql: &str,
        binds: &Binds<'_>,
    ) -> impl Future<Output = Tx<Vec<DeadLetterRow>>>;
    /// Runs a statement without parameters; the rows it changed.
    fn execute(&mut self, sql: &str) -> impl Future<Output = Tx<usize>>;
}

/// The tasks a purge names: `FROM ... WHERE ...` over `$1` namespace, `$2`
/// name, `$3` the cut-off time (and `$4`, unused), never a task with a
/// step in progress.
fn purgeable(dialect: &Dialect, filter: &PurgeFilter) -> String {
    let states = filter
        .states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "FROM tasker_tasks t
         JOIN tasker_named_tasks nt ON nt.named_task_id = t.named_task_id
         JOIN tasker_task_namespaces ns ON ns.task_namespace_id = nt.task_namespace_id
         WHERE t.state IN ({states}) AND t.updated_at < {before}
           AND ($1 IS NULL OR ns.name = $1) AND ($2 IS NULL OR nt.name = $2)
           -- $4 (the error class) is not used here; written so the
           -- statement takes the same five parameters as the others.
           AND ($4 IS NULL OR $4 IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM tasker_workflow_steps s
                           WHERE s.task_id = t.task_id AND s.state = 'in_progress')",
        before = (dialect.time_param)(3),
    )
}

fn purge_binds(filter: &PurgeFilter, limit: i64) -> Binds<'_> {
    Binds {
        namespace: filter.namespace.as_deref(),
        name: filter.name.as_deref(),
        time_ms: Some(filter.finished_before.timestamp_millis()),
        error_class: None,
        limit,
    }
}

/// How many tasks a purge with `filter` would delete now, counting at most
/// `cap` (a dry run; reads only).
pub(crate) async fn count_purgeable(
    ops: &mut impl RetentionOps,
    dialect: &Dialect,
    filter: &PurgeFilter,
    cap: u64,
) -> Tx<u64> {
    filter.check()?;
    let sql = format!(
        "SELECT count(*) AS id FROM (SELECT t.task_id {} LIMIT $5) AS c",
        purgeable(dialect, filter)
    );
    let binds = purge_binds(filter, i64::try_from(cap).unwrap_or(i64::MAX));
    let counted = ops.task_ids(&(dialect.params)(sql), &binds).await?;
    Ok(counted
        .first()
        .map_or(0, |n| u64::try_from(*n).unwrap_or(0)))
}

/// Deletes one batch of the tasks `filter` names, children first; inside
/// the caller's transaction. Returns how many tasks it deleted.
pub(crate) async fn purge_batch(
    ops: &mut impl RetentionOps,
    dialect: &Dialect,
    filter: &PurgeFilter,
) -> Tx<u64> {
    filter.check()?;
    let select = format!(
        "SELECT t.task_id AS id {} ORDER BY t.task_id LIMIT $5{}",
        purgeable(dialect, filter),
        dialect.lock_tasks
    );
    let binds = purge_binds(filter, i64::from(filter.batch));
    let ids = ops.task_ids(&(dialect.params)(select), &binds).await?;
    if ids.is_empty() {
        return Ok(0);
    }
    // Ids we selected ourselves, as integers: safe to write inline, and one
    // statement text serves both backends.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    for statement in [
        "DELETE FROM tasker_workflow_step_edges WHERE to_step_id IN \
         (SELECT workflow_step_id FROM tasker_workflow_steps WHERE task_id IN ({ids}))",
        "DELETE FROM tasker_workflow_step_transitions WHERE task_id IN ({ids})",
        "DELETE FROM tasker_task_transitions WHERE task_id IN ({ids})",
        "DELETE FROM tasker_task_annotations WHERE task_id IN ({ids})",
        "DELETE FROM tasker_step_checkpoints WHERE task_id IN ({ids})",
        "DELETE FROM tasker_step_fan_outs WHERE task_id IN ({ids})",
        "DELETE FROM tasker_workflow_steps WHERE task_id IN ({ids})",
        "DELETE FROM tasker_tasks WHERE task_id IN ({ids})",
    ] {
        ops.execute(&statement.replace("{ids}", &list)).await?;
    }
    Ok(ids.len() as u64)
}

/// A dead letter as read; see [`dead_letters`].
#[derive(QueryableByName)]
pub(crate) struct DeadLetterRow {
    #[diesel(sql_type = BigInt)]
    task_id: i64,
    #[diesel(sql_type = Text)]
    namespace: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = BigInt)]
    workflow_step_id: i64,
    #[diesel(sql_type = Text)]
    step: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = BigInt)]
    failed_ms: i64,
}

/// Failed steps of failed tasks, most recent failure first.
pub(crate) async fn dead_letters(
    ops: &mut impl RetentionOps,
    dialect: &Dialect,
    filter: &DeadLetterFilter,
) -> Tx<Vec<DeadLetter>> {
    let limit = match filter.limit {
        0 => 100,
        n if n > 10_000 => {
            return Err(StoreError::Invalid(format!(
                "dead letters: a limit of {n}; use 1 to 10000"
            ))
            .into())
        }
        n => n,
    };
    // The failed steps newest first from their partial index, each task
    // looked up by its key: the statement reads `limit` rows, however many
    // tasks are in error. (PostgreSQL would rather hash every failed task
    // for a plain join; the lateral subquery keeps it to the probes.)
    let task = "SELECT t.task_id, t.state, ns.name AS namespace, nt.name, nt.version
                FROM tasker_tasks t
                JOIN tasker_named_tasks nt ON nt.named_task_id = t.named_task_id
                JOIN tasker_task_namespaces ns ON ns.task_namespace_id = nt.task_namespace_id";
    let from = if dialect.lateral {
        format!(
            "tasker_workflow_steps s CROSS JOIN LATERAL ({task} WHERE t.task_id = s.task_id OFFSET 0) t"
        )
    } else {
        format!("tasker_workflow_steps s JOIN ({task}) t ON t.task_id = s.task_id")
    };
    let sql = format!(
        "SELECT t.task_id, t.namespace, t.name, t.version, s.workflow_step_id,
                s.name AS step, s.attempts, CAST(s.last_error AS TEXT) AS last_error,
                {failed} AS failed_ms
         FROM {from}
         WHERE s.state = 'error' AND s.results IS NULL AND t.state = 'error'
           AND ($1 IS NULL OR t.namespace = $1) AND ($2 IS NULL OR t.name = $2)
           AND ($3 IS NULL OR s.updated_at >= {since})
           AND ($4 IS NULL OR {class} = $4)
         ORDER BY s.updated_at DESC, s.workflow_step_id DESC LIMIT $5",
        failed = (dialect.ms)("s.updated_at"),
        since = (dialect.time_param)(3),
        class = (dialect.error_class)("s.last_error"),
    );
    let binds = Binds {
        namespace: filter.namespace.as_deref(),
        name: filter.name.as_deref(),
        time_ms: filter.since.map(|t| t.timestamp_millis()),
        error_class: filter.error_class.as_deref(),
        limit: i64::from(limit),
    };
    let rows = ops.dead_letter_rows(&(dialect.params)(sql), &binds).await?;
    Ok(rows
        .into_iter()
        .map(|row| DeadLetter {
            task_id: TaskId(row.task_id),
            namespace: row.namespace,
            name: row.name,
            version: row.version,
            step_id: StepId(row.workflow_step_id),
            step: row.step,
            attempts: u32::try_from(row.attempts).unwrap_or_default(),
            error: row
                .last_error
                .as_deref()
                .and_then(|text| serde_json::from_str::<StepError>(text).ok()),
            failed_at: time(row.failed_ms),
        })
        .collect())
}
