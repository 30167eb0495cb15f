//! The catalog of events: the built-ins ([`BUILT_IN`], [`names`]) and the
//! custom events handlers declare.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

/// The group an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCategory {
    /// Task lifecycle.
    Task,
    /// Step lifecycle.
    Step,
    /// Orchestration: discovery of runnable steps, finalisation.
    Workflow,
    /// Handler registration at start-up.
    Registry,
    /// Worker lifecycle.
    Worker,
    /// Declared by a step and published by its code.
    Custom,
}

/// One entry of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSpec {
    /// The event's name, e.g. `step.completed`.
    pub name: Cow<'static, str>,
    /// Its group.
    pub category: EventCategory,
    /// When it is published.
    pub description: Cow<'static, str>,
    /// The [`Event`](super::Event) fields it sets.
    pub fields: Cow<'static, [&'static str]>,
    /// For a custom event: the `namespace/name@version step` declaring it.
    pub declared_by: Vec<String>,
}

macro_rules! built_in {
    ($($konst:ident = $name:literal, $category:ident, [$($field:literal),*], $description:literal;)*) => {
        /// Names of the built-in events, as constants.
        pub mod names {
            $(
                #[doc = $description]
                pub const $konst: &str = $name;
            )*
        }

        /// Every event the engine publishes.
        pub static BUILT_IN: &[EventSpec] = &[
            $(EventSpec {
                name: Cow::Borrowed($name),
                category: EventCategory::$category,
                description: Cow::Borrowed($description),
                fields: Cow::Borrowed(&[$($field),*]),
                declared_by: Vec::new(),
            },)*
        ];
    };
}

built_in! {
    TASK_CREATED = "task.created", Task, ["task_id", "namespace", "name", "version", "actor"],
        "A task was created (not published when an identity key returned an existing task).";
    TASK_STARTED = "task.started", Task, ["task_id", "namespace", "name", "version", "worker"],
        "A worker claimed the task's first step: pending -> in_progress.";
    TASK_COMPLETED = "task.completed", Task, ["task_id", "namespace", "name", "version", "duration"],
        "Every step of the task is complete or resolved by hand; `duration`: since its creation (when a step's completion finished it).";
    TASK_FAILED = "task.failed", Task, ["task_id", "namespace", "name", "version", "step", "duration", "error_class", "error_message"],
        "A step failed for good (permanent error or out of retries); the task is in error; `duration`: since its creation (when a step's failure ended it).";
    TASK_DEADLINE_EXCEEDED = "task.deadline_exceeded", Task, ["task_id", "namespace", "name", "version", "count", "error_message", "data"],
        "The task passed its deadline (max_execution_time): its `count` steps that had not started (names in `data`) are in error and will not run.";
    TASK_BOTTLENECK_DETECTED = "task.bottleneck_detected", Task, ["task_id", "namespace", "name", "version", "step", "data"],
        "The task failed; `step` is its worst bottleneck by the dependency analysis, `data` its `severity` (low, medium, high, critical), `impact_score`, `problem`, `blocked` and `downstream` step counts.";
    TASK_RETRY_REQUESTED = "task.retry_requested", Task, ["task_id", "namespace", "name", "version", "actor"],
        "An operator retried the failed task.";
    TASK_CANCELLED = "task.cancelled", Task, ["task_id", "namespace", "name", "version", "actor"],
        "An operator cancelled the task.";
    TASK_RESOLVED_MANUALLY = "task.resolved_manually", Task, ["task_id", "namespace", "name", "version", "actor"],
        "An operator marked the task done by hand; its unfinished steps were resolved without output.";
    STEP_EXECUTION_REQUESTED = "step.execution_requested", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "worker"],
        "A worker claimed the step and is about to run this attempt.";
    STEP_STARTED = "step.started", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "worker"],
        "The attempt began: the step is in_progress on `worker` (published as its function is about to be called).";
    STEP_BEFORE_HANDLE = "step.before_handle", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt"],
        "The step's function is about to be called.";
    STEP_COMPLETED = "step.completed", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "duration"],
        "The attempt succeeded and its output is stored.";
    STEP_FAILED = "step.failed", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "duration", "error_class", "error_message", "data"],
        "The attempt failed (it may still be retried: see step.backoff). `data.collected`: true for a fan-out item whose failure was collected as its result (`on_item_error = \"collect\"`; its task goes on), absent otherwise.";
    STEP_BACKOFF = "step.backoff", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "delay"],
        "A failed attempt will be retried after `delay`.";
    STEP_MAX_RETRIES_REACHED = "step.max_retries_reached", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "error_class", "error_message"],
        "A retryable failure with no attempts left: the step is in error.";
    STEP_RETRY_REQUESTED = "step.retry_requested", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "actor"],
        "An operator gave a failed step a new set of attempts.";
    STEP_CANCELLED = "step.cancelled", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "actor"],
        "The step was cancelled: with its task, or by itself together with the steps after it.";
    STEP_RESOLVED_MANUALLY = "step.resolved_manually", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "actor", "data"],
        "An operator marked the step done by hand, with `data` as its output.";
    STEP_SKIPPED = "step.skipped", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "data"],
        "The step will not run: a decision chose other branches (or every step it depends on was skipped); `data.decision` names the decision step.";
    STEP_CHECKPOINTED = "step.checkpointed", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "data"],
        "The step saved its progress with `StepContext::save_checkpoint`; `data.bytes` is the checkpoint's size. A later attempt resumes from it.";
    STEP_FANNED_OUT = "step.fanned_out", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "count", "data"],
        "A fan-out step (`for_each`) became `count` instances, one per item of its source; `data.concurrency` of them run at once. The step completes when its last instance does.";
    STEP_RESULT_DISCARDED = "step.result_discarded", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt"],
        "An attempt finished after its claim was lost (lease expired, cancelled or resolved); its result was not recorded.";
    WORKFLOW_VIABLE_STEPS_DISCOVERED = "workflow.viable_steps_discovered", Workflow, ["task_id", "namespace", "name", "version", "count", "worker", "data"],
        "A worker claimed `count` runnable steps of the task (their names in `data`).";
    WORKFLOW_NO_VIABLE_STEPS = "workflow.no_viable_steps", Workflow, ["worker"],
        "A worker that had been busy found nothing to run.";
    WORKFLOW_TASK_FINALIZED = "workflow.task_finalized", Workflow, ["task_id", "namespace", "name", "version", "task_state", "duration"],
        "The task reached complete, error, cancelled or resolved_manually; `task_state` says which.";
    REGISTRY_HANDLER_REGISTERED = "registry.handler_registered", Registry, ["namespace", "name", "version", "data"],
        "The engine recorded a handler at start-up (`data`: its fingerprint).";
    REGISTRY_HANDLER_REFUSED = "registry.handler_refused", Registry, ["namespace", "name", "version", "count", "error_message"],
        "Unfinished tasks use a handler this binary does not have, or has in another shape; `count` tasks will not run here.";
    WORKER_STARTED = "worker.started", Worker, ["worker"],
        "A worker started claiming steps.";
    WORKER_STOPPED = "worker.stopped", Worker, ["worker", "count"],
        "A worker drained its in-flight steps and stopped; `count` attempts were recorded.";
}

/// The events a set of handlers can publish: the built-ins and every custom
/// event their steps declare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    events: Vec<EventSpec>,
}

impl Catalog {
    /// The built-ins plus custom events, each with who declares it (e.g.
    /// `payments/process_order@1.0.0 charge`).
    pub fn new(declared: impl IntoIterator<Item = (&'static str, String)>) -> Self {
        let mut events: Vec<EventSpec> = BUILT_IN.to_vec();
        let mut custom: HashMap<&'static str, Vec<String>> = HashMap::new();
        for (event, declared_by) in declared {
            custom.entry(event).or_default().push(declared_by);
        }
        let mut custom: Vec<_> = custom.into_iter().collect();
        custom.sort();
        for (name, declared_by) in custom {
            events.push(EventSpec {
                name: Cow::Borrowed(name),
                category: EventCategory::Custom,
                description: Cow::Owned(format!(
                    "Custom event declared by {}.",
                    declared_by.join(", ")
                )),
                fields: Cow::Borrowed(&[
                    "task_id",
                    "step_id",
                    "namespace",
                    "name",
                    "version",
                    "step",
                    "attempt",
                    "data",
                ]),
                declared_by,
            });
        }
        Catalog { events }
    }

    /// Every event.
    pub fn events(&self) -> &[EventSpec] {
        &self.events
    }

    /// Event names, in catalog order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.events.iter().map(|e| e.name.as_ref())
    }

    /// One event.
    pub fn get(&self, name: &str) -> Option<&EventSpec> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The events of one category.
    pub fn by_category(&self, category: EventCategory) -> impl Iterator<Item = &EventSpec> {
        self.events.iter().filter(move |e| e.category == category)
    }

    /// The catalog as a Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut out =
            String::from("| event | category | fields | description |\n|---|---|---|---|\n");
        for e in &self.events {
            let category = serde_json::to_value(e.category)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push_str(&format!(
                "| `{}` | {category} | {} | {} |\n",
                e.name,
                e.fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                e.description
            ));
        }
        out
    }
}
