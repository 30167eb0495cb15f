//! The GraphQL object types and their conversions from the store's
//! records.

use async_graphql::{InputObject, Json, SimpleObject};
use serde_json::Value;

use crate::store::{StepRecord, TaskRecord};

/// A task.
#[derive(SimpleObject)]
#[graphql(name = "Task")]
pub(super) struct GqlTask {
    pub(super) task_id: i64,
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) version: String,
    pub(super) state: String,
    pub(super) context: Json<Value>,
    pub(super) identity_key: Option<String>,
    pub(super) initiator: Option<String>,
    /// `low`, `normal`, `high` or `critical`.
    pub(super) priority: String,
    /// RFC 3339; after it, steps not yet started are failed instead of run.
    pub(super) deadline: Option<String>,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    pub(super) steps: Vec<GqlStep>,
    /// What the steps recorded with `ctx.annotate`, oldest first (empty in
    /// lists).
    pub(super) annotations: Vec<GqlAnnotation>,
}

/// An annotation a step recorded on its task.
#[derive(SimpleObject)]
#[graphql(name = "Annotation")]
pub(super) struct GqlAnnotation {
    pub(super) annotation_type: String,
    pub(super) annotation: Json<Value>,
    /// The step that recorded it.
    pub(super) step: Option<String>,
    pub(super) created_at: String,
}

/// A step of a task.
#[derive(SimpleObject)]
#[graphql(name = "Step")]
pub(super) struct GqlStep {
    pub(super) step_id: i64,
    pub(super) name: String,
    pub(super) state: String,
    pub(super) attempts: u32,
    pub(super) max_attempts: u32,
    pub(super) output: Option<Json<Value>>,
    pub(super) last_error: Option<String>,
    /// `low`, `normal`, `high` or `critical`.
    pub(super) priority: String,
    pub(super) depends_on: Vec<String>,
    /// Its last checkpoint's value, when it saved one: a running batch's
    /// progress.
    pub(super) checkpoint: Option<Json<Value>>,
    /// For one item of a fan-out step: its place among the items (the
    /// step's group row, of the same name, has none).
    pub(super) item_index: Option<u32>,
    /// For one item of a fan-out step: the item.
    pub(super) item: Option<Json<Value>>,
    /// For a fan-out step's group row: all its items counted by state
    /// (however many of them `steps` holds).
    pub(super) items: Option<GqlItemCounts>,
}

/// A fan-out step's items, counted by state.
#[derive(SimpleObject)]
#[graphql(name = "ItemCounts")]
pub(super) struct GqlItemCounts {
    pub(super) total: u32,
    /// `pending` or `ready`.
    pub(super) waiting: u32,
    /// `in_progress`.
    pub(super) running: u32,
    /// `complete` or `resolved_manually`.
    pub(super) done: u32,
    /// `error`.
    pub(super) failed: u32,
    pub(super) cancelled: u32,
}

/// A registered handler.
#[derive(SimpleObject)]
#[graphql(name = "Handler")]
pub(super) struct GqlHandler {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) version: String,
    pub(super) description: String,
    pub(super) fingerprint: String,
    pub(super) context_type: String,
    pub(super) steps: Vec<String>,
    pub(super) levels: Vec<Vec<String>>,
    pub(super) critical_path: Vec<String>,
    pub(super) mermaid: String,
    /// The outside systems it relies on (its own, then its steps').
    pub(super) dependent_systems: Vec<String>,
    /// Its custom metadata, an object of strings.
    pub(super) metadata: Json<Value>,
}

/// What `createTask` did.
#[derive(SimpleObject)]
pub(super) struct CreatedTask {
    /// `false` when a task with the same identity key already existed.
    pub(super) created: bool,
    /// The new or existing task's id.
    pub(super) task_id: i64,
    /// The task; `null` unless the caller holds `tasker.task:show`.
    pub(super) task: Option<GqlTask>,
}

/// What `createTask` takes.
#[derive(InputObject)]
pub(super) struct TaskInput {
    pub(super) namespace: Option<String>,
    pub(super) name: String,
    pub(super) version: Option<String>,
    pub(super) context: Json<Value>,
    pub(super) identity_key: Option<String>,
    /// `low`, `normal`, `high` or `critical` (default: the handler's).
    pub(super) priority: Option<String>,
    /// A deadline this long after creation, e.g. `"15m"`.
    pub(super) max_execution_time: Option<String>,
}

pub(super) fn step(s: &StepRecord) -> GqlStep {
    GqlStep {
        step_id: s.step_id.0,
        name: s.name.clone(),
        state: s.state.to_string(),
        attempts: s.attempts,
        max_attempts: s.max_attempts,
        output: s.output.clone().map(Json),
        last_error: s.last_error.as_ref().map(ToString::to_string),
        priority: s.priority.to_string(),
        depends_on: s.depends_on.clone(),
        checkpoint: s.checkpoint.as_ref().map(|c| Json(c.value.clone())),
        item_index: s.item_index,
        item: s.item.clone().map(Json),
        items: s.items.map(|c| GqlItemCounts {
            total: c.total,
            waiting: c.waiting,
            running: c.running,
            done: c.done,
            failed: c.failed,
            cancelled: c.cancelled,
        }),
    }
}

pub(super) fn task(t: TaskRecord) -> GqlTask {
    GqlTask {
        task_id: t.task_id.0,
        steps: t.steps.iter().map(step).collect(),
        annotations: t
            .annotations
            .into_iter()
            .map(|a| GqlAnnotation {
                annotation_type: a.annotation_type,
                annotation: Json(a.annotation),
                step: a.step,
                created_at: a.created_at.to_rfc3339(),
            })
            .collect(),
        namespace: t.namespace,
        name: t.name,
        version: t.version,
        state: t.state.to_string(),
        context: Json(t.context),
        identity_key: t.identity_key,
        initiator: t.initiator,
        priority: t.priority.to_string(),
        deadline: t.deadline.map(|d| d.to_rfc3339()),
        created_at: t.created_at.to_rfc3339(),
        updated_at: t.updated_at.to_rfc3339(),
    }
}
