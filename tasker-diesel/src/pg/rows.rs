//! Rows of the PostgreSQL store's batch statements, and task creation.

use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use diesel::{sql_query, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use tasker::store::{Completed, Created, NewTask, StoreError};
use tasker::{TaskId, TaskState};

use super::sql::CREATE_SQL;
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
            next: None,
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
            .bind::<Text, _>(channel),
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
