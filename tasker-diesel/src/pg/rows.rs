//! Rows of the PostgreSQL store's batch statements, and task creation.

use diesel::sql_types::{Array, BigInt, Integer, Nullable, SmallInt, Text};
use diesel::{sql_query, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use tasker::store::{Completed, Created, NewTask, StoreError};
use tasker::{TaskId, TaskState};

use super::sql::{CREATE_BATCH_SQL, CREATE_SQL};
use super::Prepared;
use crate::rows::{ClaimRow, IdRow};

#[derive(QueryableByName)]
pub(super) struct BatchRow {
    #[diesel(embed)]
    pub(super) result: CompleteRow,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(super) next_step_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(super) next_task_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(super) next_named_task_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(super) next_name: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub(super) next_position: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub(super) next_attempts: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub(super) next_max_attempts: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(super) next_context: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(super) next_inputs: Option<String>,
}

impl BatchRow {
    pub(super) fn into_completed(self) -> Result<Completed, StoreError> {
        let mut completed = self.result.into_completed();
        if let (
            Some(step_id),
            Some(task_id),
            Some(named_task_id),
            Some(name),
            Some(position),
            Some(attempts),
            Some(max_attempts),
            Some(context),
            Some(inputs),
        ) = (
            self.next_step_id,
            self.next_task_id,
            self.next_named_task_id,
            self.next_name,
            self.next_position,
            self.next_attempts,
            self.next_max_attempts,
            self.next_context,
            self.next_inputs,
        ) {
            completed.next = Some(
                ClaimRow {
                    workflow_step_id: step_id,
                    task_id,
                    named_task_id,
                    name,
                    position,
                    attempts,
                    max_attempts,
                    context,
                    inputs,
                    task_started: false,
                    // Released through an edge: never a fan-out instance.
                    item_index: None,
                    item: None,
                }
                .into_claimed(),
            );
        }
        Ok(completed)
    }
}

impl CompleteRow {
    pub(super) fn into_completed(self) -> Completed {
        Completed {
            applied: self.applied > 0,
            released: self.released as u32,
            task_state: self.task_state.and_then(|s| s.parse::<TaskState>().ok()),
            task_duration: self
                .task_age_ms
                .map(|ms| std::time::Duration::from_millis(ms.max(0) as u64)),
            ..Completed::default()
        }
    }
}

#[derive(QueryableByName)]
pub(super) struct CompleteRow {
    #[diesel(sql_type = BigInt)]
    pub(super) applied: i64,
    #[diesel(sql_type = BigInt)]
    pub(super) released: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub(super) task_state: Option<String>,
    /// Milliseconds since the task's creation, when this finished it.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(super) task_age_ms: Option<i64>,
}

/// A duration in whole milliseconds, as the statements take it.
fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Writes one task with its steps and edges: one statement.
pub(super) async fn create_one(
    conn: &mut AsyncPgConnection,
    task: &NewTask,
    channel: &str,
) -> Result<Created, diesel::result::Error> {
    let names: Vec<&str> = task.steps.iter().map(|s| s.name.as_str()).collect();
    let positions: Vec<i32> = task.steps.iter().map(|s| s.index as i32).collect();
    let max_attempts: Vec<i32> = task.steps.iter().map(|s| s.max_attempts as i32).collect();
    let timeouts: Vec<Option<i64>> = task
        .steps
        .iter()
        .map(|s| s.timeout.map(|t| t.as_millis() as i64))
        .collect();
    let parents: Vec<i32> = task.steps.iter().map(|s| s.parents.len() as i32).collect();
    let priorities: Vec<i16> = task.steps.iter().map(|s| s.priority.level()).collect();
    let head_starts: Vec<i64> = task
        .steps
        .iter()
        .map(|s| s.head_start.as_millis())
        .collect();
    let (from, to): (Vec<i32>, Vec<i32>) = task
        .steps
        .iter()
        .flat_map(|s| s.parents.iter().map(move |p| (*p as i32, s.index as i32)))
        .unzip();
    let actor = task
        .initiator
        .clone()
        .unwrap_or_else(|| "tasker".to_owned());
    let rows = Prepared(
        sql_query(CREATE_SQL)
            .bind::<BigInt, _>(task.handler_id)
            .bind::<Text, _>(task.context.to_string())
            .bind::<Nullable<Text>, _>(task.identity_key.as_deref())
            .bind::<Nullable<Text>, _>(task.initiator.as_deref())
            .bind::<Nullable<Text>, _>(task.source_system.as_deref())
            .bind::<Nullable<Text>, _>(task.reason.as_deref())
            .bind::<Text, _>(Value::from(task.tags.clone()).to_string())
            .bind::<Integer, _>(task.steps.len() as i32)
            .bind::<Array<Text>, _>(names)
            .bind::<Array<Integer>, _>(positions)
            .bind::<Array<Integer>, _>(max_attempts)
            .bind::<Array<Nullable<BigInt>>, _>(timeouts)
            .bind::<Array<Integer>, _>(parents)
            .bind::<Array<Integer>, _>(from)
            .bind::<Array<Integer>, _>(to)
            .bind::<Text, _>(actor)
            .bind::<Text, _>(channel)
            .bind::<SmallInt, _>(task.priority.level())
            .bind::<Nullable<BigInt>, _>(task.max_execution_time.map(millis))
            .bind::<Array<SmallInt>, _>(priorities)
            .bind::<Array<BigInt>, _>(head_starts),
    )
    .load::<IdRow>(conn)
    .await?;
    if let Some(row) = rows.into_iter().next() {
        return Ok(Created::New(TaskId(row.id)));
    }
    // The identity key exists (possibly committed after this statement's
    // snapshot): read it with a fresh one.
    let key = task.identity_key.as_deref().unwrap_or_default();
    let existing = sql_query("SELECT task_id AS id FROM tasker_tasks WHERE identity_key = $1")
        .bind::<Text, _>(key)
        .get_result::<IdRow>(conn)
        .await?;
    Ok(Created::Existing(TaskId(existing.id)))
}

#[derive(QueryableByName)]
struct CreatedRow {
    #[diesel(sql_type = BigInt)]
    ord: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    identity_key: String,
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Creates `tasks` with one statement (plus one read when some identity
/// keys exist), inside the caller's transaction; results in input order.
/// A key repeated within the batch creates one task; the later requests
/// get it as `Existing`, as they would one by one.
pub(super) async fn create_many(
    conn: &mut AsyncPgConnection,
    tasks: &[NewTask],
    channel: &str,
) -> Result<Vec<Created>, diesel::result::Error> {
    let mut handler_ids = Vec::with_capacity(tasks.len());
    let mut contexts = Vec::with_capacity(tasks.len());
    let mut keys = Vec::with_capacity(tasks.len());
    let mut initiators = Vec::with_capacity(tasks.len());
    let mut sources = Vec::with_capacity(tasks.len());
    let mut reasons = Vec::with_capacity(tasks.len());
    let mut tags = Vec::with_capacity(tasks.len());
    let mut step_counts = Vec::with_capacity(tasks.len());
    let mut actors = Vec::with_capacity(tasks.len());
    let mut task_priorities = Vec::with_capacity(tasks.len());
    let mut deadlines = Vec::with_capacity(tasks.len());
    let (mut step_priorities, mut head_starts) = (Vec::new(), Vec::new());
    let (mut step_task, mut names, mut positions, mut max_attempts, mut timeouts, mut parents) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut edge_task, mut from, mut to) = (Vec::new(), Vec::new(), Vec::new());
    for (i, task) in tasks.iter().enumerate() {
        let ord = i as i64 + 1;
        handler_ids.push(task.handler_id);
        contexts.push(task.context.to_string());
        keys.push(task.identity_key.as_deref());
        initiators.push(task.initiator.as_deref());
        sources.push(task.source_system.as_deref());
        reasons.push(task.reason.as_deref());
        tags.push(Value::from(task.tags.clone()).to_string());
        step_counts.push(task.steps.len() as i32);
        actors.push(task.initiator.as_deref().unwrap_or("tasker"));
        task_priorities.push(task.priority.level());
        deadlines.push(task.max_execution_time.map(millis));
        for step in &task.steps {
            step_priorities.push(step.priority.level());
            head_starts.push(step.head_start.as_millis());
            step_task.push(ord);
            names.push(step.name.as_str());
            positions.push(step.index as i32);
            max_attempts.push(step.max_attempts as i32);
            timeouts.push(step.timeout.map(|t| t.as_millis() as i64));
            parents.push(step.parents.len() as i32);
            for parent in &step.parents {
                edge_task.push(ord);
                from.push(*parent as i32);
                to.push(step.index as i32);
            }
        }
    }
    let rows = Prepared(
        sql_query(CREATE_BATCH_SQL)
            .bind::<Array<BigInt>, _>(handler_ids)
            .bind::<Array<Text>, _>(contexts)
            .bind::<Array<Nullable<Text>>, _>(&keys)
            .bind::<Array<Nullable<Text>>, _>(initiators)
            .bind::<Array<Nullable<Text>>, _>(sources)
            .bind::<Array<Nullable<Text>>, _>(reasons)
            .bind::<Array<Text>, _>(tags)
            .bind::<Array<Integer>, _>(step_counts)
            .bind::<Array<Text>, _>(actors)
            .bind::<Array<BigInt>, _>(step_task)
            .bind::<Array<Text>, _>(names)
            .bind::<Array<Integer>, _>(positions)
            .bind::<Array<Integer>, _>(max_attempts)
            .bind::<Array<Nullable<BigInt>>, _>(timeouts)
            .bind::<Array<Integer>, _>(parents)
            .bind::<Array<BigInt>, _>(edge_task)
            .bind::<Array<Integer>, _>(from)
            .bind::<Array<Integer>, _>(to)
            .bind::<Text, _>(channel)
            .bind::<Array<SmallInt>, _>(task_priorities)
            .bind::<Array<Nullable<BigInt>>, _>(deadlines)
            .bind::<Array<SmallInt>, _>(step_priorities)
            .bind::<Array<BigInt>, _>(head_starts),
    )
    .load::<CreatedRow>(conn)
    .await?;
    let mut created: Vec<Option<Created>> = vec![None; tasks.len()];
    for row in rows {
        created[(row.ord - 1) as usize] = Some(Created::New(TaskId(row.id)));
    }
    // The rest have an identity key that exists (committed elsewhere, or
    // earlier in this batch): read them with a fresh snapshot.
    let missing: Vec<&str> = created
        .iter()
        .zip(&keys)
        .filter(|(c, _)| c.is_none())
        .filter_map(|(_, key)| *key)
        .collect();
    if !missing.is_empty() {
        let existing = sql_query(
            "SELECT identity_key, task_id AS id FROM tasker_tasks WHERE identity_key = ANY($1)",
        )
        .bind::<Array<Text>, _>(&missing)
        .load::<KeyRow>(conn)
        .await?;
        for (slot, key) in created.iter_mut().zip(&keys) {
            if slot.is_none() {
                let id = key
                    .and_then(|key| existing.iter().find(|e| e.identity_key == key))
                    .map(|e| e.id)
                    .ok_or(diesel::result::Error::NotFound)?;
                *slot = Some(Created::Existing(TaskId(id)));
            }
        }
    }
    Ok(created.into_iter().flatten().collect())
}
