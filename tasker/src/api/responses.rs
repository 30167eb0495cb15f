//! The bodies the REST API answers with. Handlers build these types and the
//! OpenAPI document takes their schemas from the same types (schemars), so
//! the document cannot drift from what is sent.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::analysis::Analysis;
use crate::ids::{StepId, TaskId};
use crate::state::{StepState, TaskState};
use crate::store::{StepRecord, TaskRecord};

/// One task with its steps.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TaskBody {
    /// The task.
    pub(crate) task: TaskRecord,
}

/// A page of tasks, newest first.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TaskPage {
    /// The tasks.
    pub(crate) tasks: Vec<TaskRecord>,
    /// The page size used (1 to 500).
    pub(crate) limit: u32,
    /// Tasks skipped before this page.
    pub(crate) offset: u32,
}

/// The answer to a create call: a new task (201), or the existing task of
/// the same identity key (200).
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CreatedBody {
    /// Whether this call created the task.
    pub(crate) created: bool,
    /// The task's id.
    pub(crate) task_id: TaskId,
    /// The task, for callers holding `tasker.task:show`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) task: Option<TaskRecord>,
}

/// The analysis of one task.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AnalysisBody {
    /// The task.
    pub(crate) task_id: TaskId,
    /// Its state.
    pub(crate) state: TaskState,
    /// Critical path, levels and bottlenecks.
    pub(crate) analysis: Analysis,
}

/// One step, with the task it belongs to.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct StepBody {
    /// The step's task.
    pub(crate) task_id: TaskId,
    /// The step.
    pub(crate) step: StepRecord,
}

/// What an operator action did to a step.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct StepChanged {
    /// The step.
    pub(crate) step_id: StepId,
    /// Its state now.
    pub(crate) state: StepState,
    /// The task after a cancellation (the steps after this one were
    /// cancelled too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) task: Option<TaskRecord>,
}

/// The registry: namespaces, their handlers and versions.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct HandlerIndex {
    /// Namespaces in name order.
    pub(crate) namespaces: Vec<NamespaceEntry>,
}

/// One namespace of the registry.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NamespaceEntry {
    /// Its name.
    pub(crate) namespace: String,
    /// Its handlers, every version.
    pub(crate) handlers: Vec<HandlerSummary>,
}

/// One handler version.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct HandlerSummary {
    /// Its name.
    pub(crate) name: String,
    /// Its semantic version.
    pub(crate) version: String,
    /// Its doc comment.
    pub(crate) description: String,
    /// The fingerprint of its step graph.
    pub(crate) fingerprint: String,
    /// The outside systems it relies on (its own, then its steps').
    pub(crate) dependent_systems: Vec<String>,
}

/// One handler with its step graph.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct HandlerDetail {
    /// Its namespace.
    pub(crate) namespace: String,
    /// Its name.
    pub(crate) name: String,
    /// Its semantic version.
    pub(crate) version: String,
    /// Its doc comment.
    pub(crate) description: String,
    /// The Rust type of its task context.
    pub(crate) context_type: String,
    /// The fingerprint of its step graph.
    pub(crate) fingerprint: String,
    /// The outside systems it relies on (its own, then its steps').
    pub(crate) dependent_systems: Vec<String>,
    /// Its custom metadata, as written in `#[task_handler(metadata = ...)]`.
    pub(crate) metadata: BTreeMap<String, String>,
    /// Its steps in declaration order.
    pub(crate) steps: Vec<StepSummary>,
    /// Steps by dependency level.
    pub(crate) levels: Vec<Vec<String>>,
    /// The longest chain of steps.
    pub(crate) critical_path: Vec<String>,
    /// Steps without dependencies.
    pub(crate) roots: Vec<String>,
    /// Steps nothing depends on.
    pub(crate) leaves: Vec<String>,
}

/// One step of a handler.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct StepSummary {
    /// Its name.
    pub(crate) name: String,
    /// Its doc comment.
    pub(crate) description: String,
    /// The steps it runs after.
    pub(crate) depends_on: Vec<String>,
    /// The Rust type of its output.
    pub(crate) output_type: String,
    /// Retries after the first attempt, if the step sets it.
    pub(crate) retry_limit: Option<u32>,
    /// Whether retryable errors are retried, if the step sets it.
    pub(crate) retryable: Option<bool>,
    /// Its timeout, if any, in milliseconds.
    pub(crate) timeout_ms: Option<u64>,
    /// The custom events it may publish.
    pub(crate) events: Vec<String>,
    /// The outside systems it calls.
    pub(crate) dependent_systems: Vec<String>,
}

/// A health probe's answer.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Probe {
    /// `live` or `ready`.
    pub(crate) status: &'static str,
}

/// Task counts and the state of the deployment.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Status {
    /// Tasks by state.
    pub(crate) tasks: BTreeMap<String, i64>,
    /// Steps ready to run now.
    pub(crate) ready_steps: i64,
    /// The coordination mode (`Distributed` or `SingleProcess`).
    pub(crate) mode: String,
    /// Problems of the database's set-up an operator should fix.
    pub(crate) warnings: Vec<String>,
}
