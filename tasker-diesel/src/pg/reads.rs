//! Reading tasks and steps on PostgreSQL: a task through a window of its
//! fan-out items, and one step.

use diesel::sql_query;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tasker::store::{ItemWindow, StepRecord, StoreError, TaskRecord};
use tasker::{StepId, TaskId};

use super::db;
use super::primitives::task_of_step;
use super::sql::{ms, task_select};
use crate::rows::{step_records, AnnotationRow, ItemStateRow, StepRow, TaskRow, ANNOTATIONS_SQL};

/// A task with its steps and, of each fan-out's items, those in `items`.
pub(super) async fn task_view(
    conn: &mut AsyncPgConnection,
    task_id: TaskId,
    items: ItemWindow,
) -> Result<TaskRecord, StoreError> {
    let task = sql_query(task_select("WHERE t.task_id = $1"))
        .bind::<BigInt, _>(task_id.0)
        .get_results::<TaskRow>(conn)
        .await
        .map_err(db("reading a task"))?
        .pop()
        .ok_or(StoreError::NotFound {
            what: "task",
            id: task_id.0,
        })?;
    let steps = sql_query(steps_sql(
        "(s.item_index IS NULL OR (s.item_index >= $2 AND s.item_index < $3))",
        items != ItemWindow::ALL,
    ))
    .bind::<BigInt, _>(task_id.0)
    .bind::<BigInt, _>(i64::from(items.offset))
    .bind::<BigInt, _>(items.end())
    .load::<StepRow>(conn)
    .await
    .map_err(db("reading a task's steps"))?;
    let steps = step_records(steps, &item_counts(conn, task_id).await?)?;
    let annotations = sql_query(
        ANNOTATIONS_SQL
            .replace("{text}", "::text")
            .replace("{ms}", &ms("a.created_at"))
            .replace("{task}", "$1"),
    )
    .bind::<BigInt, _>(task_id.0)
    .load::<AnnotationRow>(conn)
    .await
    .map_err(db("reading a task's annotations"))?;
    let mut record = task.into_record(steps)?;
    record.annotations = annotations.into_iter().map(Into::into).collect();
    Ok(record)
}

/// One step and its task's id.
pub(super) async fn step(
    conn: &mut AsyncPgConnection,
    step_id: StepId,
) -> Result<(TaskId, StepRecord), StoreError> {
    let task_id = TaskId(
        task_of_step(conn, step_id.0)
            .await
            .map_err(|e| e.into_store("reading a step"))?,
    );
    let rows = sql_query(steps_sql("s.workflow_step_id = $2", false))
        .bind::<BigInt, _>(task_id.0)
        .bind::<BigInt, _>(step_id.0)
        .load::<StepRow>(conn)
        .await
        .map_err(db("reading a step"))?;
    let counts = match rows.as_slice().first() {
        Some(row) if row.item_index.is_none() => item_counts(conn, task_id).await?,
        _ => Vec::new(),
    };
    let step = step_records(rows, &counts)?
        .pop()
        .ok_or(StoreError::NotFound {
            what: "step",
            id: step_id.0,
        })?;
    Ok((task_id, step))
}

/// The steps of task `$1` that `filter` keeps, as [`StepRow`]s in position
/// order (a group before its items); `windowed`: without fan-out groups'
/// outputs (the lists of their items' outputs, as large as the items).
fn steps_sql(filter: &str, windowed: bool) -> String {
    let results = crate::rows::results_column(windowed);
    format!(
        "SELECT s.workflow_step_id, s.name, s.state, s.attempts, s.max_attempts,
                ({results})::text AS results, s.last_error::text AS last_error,
                {} AS run_at_ms, s.priority::int AS priority,
                COALESCE((SELECT json_agg(p.name ORDER BY p.position)
                          FROM tasker_workflow_step_edges e
                          JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
                          WHERE e.to_step_id = s.workflow_step_id), '[]'::json)::text AS depends_on,
                c.checkpoint::text AS checkpoint, c.attempt AS checkpoint_attempt,
                {} AS checkpoint_ms, s.item_index, s.item::text AS item
         FROM tasker_workflow_steps s
         LEFT JOIN tasker_step_checkpoints c ON c.workflow_step_id = s.workflow_step_id
         WHERE s.task_id = $1 AND {filter} ORDER BY s.position, s.item_index NULLS FIRST",
        ms("s.run_at"),
        ms("c.saved_at")
    )
}

/// The task's fan-out items counted by step and state.
async fn item_counts(
    conn: &mut AsyncPgConnection,
    task_id: TaskId,
) -> Result<Vec<ItemStateRow>, StoreError> {
    sql_query(crate::rows::ITEM_COUNTS_SQL)
        .bind::<BigInt, _>(task_id.0)
        .load::<ItemStateRow>(conn)
        .await
        .map_err(db("counting a task's fan-out items"))
}

#[derive(diesel::QueryableByName)]
struct EstimateRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::Double)]
    freq: f64,
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

/// [`Store::task_counts_at_a_glance`](tasker::Store::task_counts_at_a_glance):
/// the unfinished states counted (their partial index holds only them),
/// the finished ones estimated from the planner's statistics of
/// `tasker_tasks.state` (its most common values and their frequencies
/// times the table's estimated rows) once it holds more than
/// [`ESTIMATE_ABOVE_ROWS`](tasker::store::ESTIMATE_ABOVE_ROWS) rows; counted
/// when it is smaller or has no statistics yet (never analysed).
pub(super) async fn counts_at_a_glance(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<tasker::store::StateCount>, StoreError> {
    use tasker::store::{StateCount, ESTIMATE_ABOVE_ROWS};
    use tasker::TaskState;
    let unfinished = sql_query(
        "SELECT state, count(*) AS count FROM tasker_tasks
         WHERE state IN ('pending', 'in_progress', 'error') GROUP BY state",
    )
    .load::<crate::rows::StateCountRow>(conn)
    .await
    .map_err(db("counting unfinished tasks"))?;
    let estimates = sql_query(
        "SELECT v.state, v.freq, GREATEST(c.reltuples, 0)::bigint AS rows
         FROM pg_class c
         JOIN pg_stats s ON s.schemaname = c.relnamespace::regnamespace::text
                        AND s.tablename = c.relname AND s.attname = 'state'
         CROSS JOIN LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs)
              AS v(state, freq)
         WHERE c.oid = 'tasker_tasks'::regclass",
    )
    .load::<EstimateRow>(conn)
    .await
    .map_err(db("reading the task table's statistics"))?;
    let rows = estimates.as_slice().first().map_or(0, |e| e.rows);
    if rows <= ESTIMATE_ABOVE_ROWS {
        let all = sql_query("SELECT state, count(*) AS count FROM tasker_tasks GROUP BY state")
            .load::<crate::rows::StateCountRow>(conn)
            .await
            .map_err(db("counting tasks"))?;
        return all
            .into_iter()
            .map(|r| {
                let (state, count) = r.into_pair()?;
                Ok(StateCount {
                    state,
                    count,
                    exact: true,
                })
            })
            .collect();
    }
    let mut counts = Vec::new();
    for row in unfinished {
        let (state, count) = row.into_pair()?;
        counts.push(StateCount {
            state,
            count,
            exact: true,
        });
    }
    for estimate in estimates {
        let Ok(state) = estimate.state.parse::<TaskState>() else {
            continue;
        };
        if state.is_finished() {
            counts.push(StateCount {
                state,
                count: (estimate.freq * estimate.rows as f64).round() as i64,
                exact: false,
            });
        }
    }
    Ok(counts)
}
