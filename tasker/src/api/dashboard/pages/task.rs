//! A task's page: its state, live graph, steps, timeline, context,
//! annotations and audit trail.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::Extension;
use chrono::Utc;
use maud::{html, Markup};

use super::super::super::operations::{
    CANCEL_STEP, CANCEL_TASK, RESOLVE_STEP, RESOLVE_TASK, RETRY_STEP, RETRY_TASK, SHOW_TASK,
};
use super::super::super::{may_on, Api, Operation};
use super::super::graph::{self, StepMark};
use super::super::session::{Form, Session};
use super::super::view::{self, badge, json, step_badge, task_badge, time};
use super::super::PageResult;
use super::{forbidden, parse_id, Shared};
use crate::state::{StepState, TaskState};
use crate::store::{ItemWindow, Store, TaskRecord, TransitionWindow};
use crate::{StepId, TaskId};

/// Transitions the audit trail of a task page lists at most (the newest).
const AUDIT_ROWS: usize = 500;
/// Transitions of a task and its steps a task page reads at most (the
/// newest): what its timeline draws, of which the audit trail lists the
/// newest [`AUDIT_ROWS`].
const TRAIL_ROWS: u32 = 5_000;

/// The marks of the step graph from a task's step records (groups carry
/// their items' counts).
pub(in crate::api::dashboard) fn marks(task: &TaskRecord) -> HashMap<&str, StepMark<'_>> {
    task.steps
        .iter()
        .filter(|s| s.item_index.is_none())
        .map(|s| {
            (
                s.name.as_str(),
                StepMark {
                    state: s.state.as_str(),
                    items: s.items,
                },
            )
        })
        .collect()
}

/// The live part of a task page: its state and graph, also what the live
/// stream sends.
pub(in crate::api::dashboard) fn live_parts<S: Store>(
    api: &Api<S>,
    task: &TaskRecord,
) -> (Markup, Markup) {
    let graph = match api
        .tasker
        .registry()
        .find(&task.namespace, &task.name, Some(&task.version))
    {
        Ok(handler) => graph::step_graph(handler.graph(), &marks(task)),
        Err(_) => html! {
            p.note { "This binary does not link the handler " (task.namespace) "/" (task.name) " v" (task.version) ", so its graph cannot be drawn." }
        },
    };
    (task_badge(task.state), graph)
}

/// Which task actions apply to a task in `state`.
fn task_actions(state: TaskState) -> &'static [(&'static str, &'static str)] {
    match state {
        TaskState::Error => &[
            ("retry", "Retry"),
            ("resolve", "Resolve"),
            ("cancel", "Cancel"),
        ],
        TaskState::Pending | TaskState::InProgress => &[("cancel", "Cancel")],
        _ => &[],
    }
}

pub(in crate::api::dashboard) fn action_operation(action: &str) -> Option<&'static Operation> {
    match action {
        "retry" => Some(&RETRY_TASK),
        "resolve" => Some(&RESOLVE_TASK),
        "cancel" => Some(&CANCEL_TASK),
        _ => None,
    }
}

pub(in crate::api::dashboard) fn step_operation(action: &str) -> Option<&'static Operation> {
    match action {
        "retry" => Some(&RETRY_STEP),
        "resolve" => Some(&RESOLVE_STEP),
        "cancel" => Some(&CANCEL_STEP),
        _ => None,
    }
}

/// `GET /tasks/{id}`.
pub(in crate::api::dashboard) async fn task<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let id = TaskId(parse_id(&id, "the task id")?);
    let (namespace, name) = api.tasker.store().handler_of_task(id).await?;
    if !may_on(
        &api,
        &session.who,
        &SHOW_TASK,
        (&namespace, &name),
        Some(id),
    ) {
        return Err(forbidden(&session, "see this task"));
    }
    let task = api.tasker.task_view(id, ItemWindow::NONE).await?;
    // One bounded read: the task's and its steps' transitions (not its
    // items', which grow with the data), the newest TRAIL_ROWS of them.
    let mut transitions = api
        .tasker
        .transitions_window(id, TransitionWindow::STEPS.newest(TRAIL_ROWS + 1))
        .await?;
    let trail_cut = transitions.len() > TRAIL_ROWS as usize;
    if trail_cut {
        transitions.remove(0);
    }
    let has_items = task.steps.iter().any(|s| s.items.is_some());
    let done = Form::parse_str(query.as_deref().unwrap_or(""))
        .get("done")
        .map(str::to_owned);
    let base = &session.base;
    let may = |op| {
        may_on(
            &api,
            &session.who,
            op,
            (&task.namespace, &task.name),
            Some(id),
        )
    };
    let actions: Vec<_> = task_actions(task.state)
        .iter()
        .filter(|(action, _)| action_operation(action).is_some_and(may))
        .collect();
    let steps: Vec<_> = task
        .steps
        .iter()
        .filter(|s| s.item_index.is_none())
        .collect();
    let names: HashMap<StepId, &str> = steps.iter().map(|s| (s.step_id, s.name.as_str())).collect();
    let (state, graph) = live_parts(&api, &task);
    let now = Utc::now();
    let content = html! {
        @if let Some(done) = done {
            p.note role="status" { "Done: " (done.replace('_', " ")) "." }
        }
        h1 { "Task #" (task.task_id.0) " " span.muted { (task.namespace) "/" (task.name) " v" (task.version) } }
        p.summary { span #task-state aria-live="polite" { (state) } " created " (time(task.created_at)) ", updated " (time(task.updated_at)) }
        @if !actions.is_empty() {
            div.actions {
                @for (action, label) in &actions {
                    a.button href={ (base) "/tasks/" (id.0) "/" (action) } { (label) "…" }
                }
            }
        }
        section aria-labelledby="graph-title" {
            h2 #graph-title { "Graph" }
            div #graph.graph-box data-live={ (base) "/tasks/" (id.0) "/live" } { (graph) }
            p.legend {
                @for s in ["pending", "ready", "in_progress", "complete", "error", "skipped", "cancelled", "resolved_manually"] {
                    (badge(s)) " "
                }
            }
        }
        section aria-labelledby="steps-title" {
            h2 #steps-title { "Steps" }
            div.scroll {
                table.steps {
                    thead { tr { th scope="col" { "Step" } th scope="col" { "State" } th scope="col" { "Attempts" } th scope="col" { "Last error" } th scope="col" { "Result" } th scope="col" { "Actions" } } }
                    tbody {
                        @for s in &steps {
                            tr {
                                td { code { (s.name) } }
                                td { (step_badge(s.state)) @if let Some(items) = s.items { " " span.muted { (items.done) "/" (items.total) " items, " (items.failed) " failed" } } }
                                td.num { (s.attempts) "/" (s.max_attempts) }
                                td { @if let Some(e) = &s.last_error { span.error { (e.class()) ": " (e.message()) } } }
                                td { @if let Some(out) = &s.output { details { summary { "show" } (json(out)) } } }
                                td {
                                    @for (action, label) in step_actions(s.state) {
                                        @if step_operation(action).is_some_and(&may) {
                                            a.button.small href={ (base) "/steps/" (s.step_id.0) "/" (action) } { (label) "…" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="timeline-title" {
            h2 #timeline-title { "Timeline" }
            div.scroll { (graph::timeline(&steps, &transitions, task.created_at, now)) }
            p.legend { span.key.wait {} " waiting " span.key.done {} " attempt completed " span.key.failed {} " attempt failed " span.key.running {} " running" }
        }
        section aria-labelledby="context-title" {
            h2 #context-title { "Context" }
            (json(&task.context))
            dl.meta {
                @if let Some(v) = &task.identity_key { dt { "Identity key" } dd { code { (v) } } }
                @if let Some(v) = &task.initiator { dt { "Initiator" } dd { (v) } }
                @if let Some(v) = &task.source_system { dt { "Source system" } dd { (v) } }
                @if let Some(v) = &task.reason { dt { "Reason" } dd { (v) } }
                @if !task.tags.is_empty() { dt { "Tags" } dd { (task.tags.join(", ")) } }
                @if let Some(v) = task.deadline { dt { "Deadline" } dd { (time(v)) } }
            }
        }
        section aria-labelledby="annotations-title" {
            h2 #annotations-title { "Annotations" }
            @if task.annotations.is_empty() { p { "None." } } @else {
                table {
                    thead { tr { th scope="col" { "Type" } th scope="col" { "Step" } th scope="col" { "Value" } th scope="col" { "At" } } }
                    tbody {
                        @for a in &task.annotations {
                            tr { td { code { (a.annotation_type) } } td { (a.step.as_deref().unwrap_or("")) } td { (json(&a.annotation)) } td { (time(a.created_at)) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="audit-title" {
            h2 #audit-title { "Audit trail" }
            @if trail_cut {
                p.hint { "The newest " (AUDIT_ROWS) " of more than " (TRAIL_ROWS) " transitions; the timeline shows the newest " (TRAIL_ROWS) "." }
            } @else if transitions.len() > AUDIT_ROWS {
                p.hint { "The newest " (AUDIT_ROWS) " of " (transitions.len()) " transitions." }
            }
            @if has_items { p.hint { "Fan-out items' own transitions are not listed here; " code { "tasker tasks show " (id.0) " --transitions" } " lists every one." } }
            div.scroll {
                table.audit {
                    thead { tr { th scope="col" { "At" } th scope="col" { "Step" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Attempt" } th scope="col" { "Actor" } th scope="col" { "Error" } } }
                    tbody {
                        @for t in transitions.iter().skip(transitions.len().saturating_sub(AUDIT_ROWS)) {
                            tr {
                                td { (time(t.at)) }
                                td { @if let Some(step) = t.step_id { (names.get(&step).copied().unwrap_or("(item)")) } @else { "(task)" } }
                                td { (t.from_state.as_deref().unwrap_or("")) }
                                td { (t.to_state) }
                                td.num { @if let Some(a) = t.attempt { (a) } }
                                td { (t.actor.as_deref().unwrap_or("")) }
                                td { (t.error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(view::page(
        &api,
        &session,
        "tasks",
        &format!("Task #{}", id.0),
        content,
    ))
}

fn step_actions(state: StepState) -> &'static [(&'static str, &'static str)] {
    match state {
        StepState::Error => &[("retry", "Retry"), ("resolve", "Resolve")],
        StepState::Pending | StepState::Ready => &[("cancel", "Cancel")],
        _ => &[],
    }
}
