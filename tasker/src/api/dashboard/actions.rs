//! What the dashboard changes: retry, resolve and cancel of a task or a
//! step, and the dead-letter page's bulk retry and resolve. Each asks for
//! confirmation on a page of its own (a GET that changes nothing), then
//! acts on a POST carrying the form token, checked against the task's
//! handler before anything changes, with the caller as the actor of the
//! audit trail.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Extension;
use maud::html;

use super::super::{may_on, Api, ApiError, Operation};
use super::pages::{action_operation, forbidden, parse_id, step_operation};
use super::session::{Form, Session};
use super::view::{self, form_token, step_badge, task_badge};
use super::{PageError, PageResult};
use crate::store::Store;
use crate::{StepId, TaskId};

type Shared<S> = State<Arc<Api<S>>>;

/// Tasks one bulk action changes at most.
pub(super) const MAX_BULK: usize = 100;

fn unknown_action(action: &str) -> PageError {
    PageError(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no action {action:?}: use retry, resolve or cancel"),
    ))
}

/// What an action does, in words, for the confirmation.
fn explain(action: &str, what: &str) -> String {
    match action {
        "retry" => format!("Retry {what}: its failed steps run again with fresh attempts."),
        "resolve" => {
            format!("Resolve {what} by hand: its failed steps count as done and are not run again.")
        }
        "cancel" => format!("Cancel {what}: its unfinished steps will not run."),
        _ => String::new(),
    }
}

/// Refuses unless the caller may use `operation` on task `id`'s handler.
async fn allowed_on_task<S: Store>(
    api: &Api<S>,
    session: &Session,
    operation: &Operation,
    id: TaskId,
) -> Result<(), PageError> {
    let (namespace, name) = api.tasker.store().handler_of_task(id).await?;
    if may_on(api, &session.who, operation, (&namespace, &name), Some(id)) {
        Ok(())
    } else {
        Err(forbidden(
            session,
            &format!("{} task #{}", verb(operation), id.0),
        ))
    }
}

fn verb(operation: &Operation) -> &'static str {
    operation
        .permission()
        .and_then(|p| p.rsplit(':').next())
        .unwrap_or("change")
}

/// `GET /tasks/{id}/{action}`: the confirmation.
pub(super) async fn confirm_task<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    let operation = action_operation(&action).ok_or_else(|| unknown_action(&action))?;
    let id = TaskId(parse_id(&id, "the task id")?);
    allowed_on_task(&api, &session, operation, id).await?;
    let task = api
        .tasker
        .task_view(id, crate::store::ItemWindow::NONE)
        .await?;
    let base = &session.base;
    let what = format!("task #{}", id.0);
    let content = html! {
        h1 { "Confirm: " (action) " task #" (id.0) }
        p { (task.namespace) "/" (task.name) " v" (task.version) ", now " (task_badge(task.state)) }
        p { (explain(&action, &what)) }
        form method="post" action={ (base) "/tasks/" (id.0) "/" (action) } {
            (form_token(&session))
            button.danger type="submit" { "Yes, " (action) " task #" (id.0) }
            " "
            a href={ (base) "/tasks/" (id.0) } { "No, go back" }
        }
    };
    Ok(view::page(
        &api,
        &session,
        "tasks",
        &format!("Confirm {action}"),
        content,
    ))
}

/// `POST /tasks/{id}/{action}`.
pub(super) async fn task_action<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    let operation = action_operation(&action).ok_or_else(|| unknown_action(&action))?;
    let id = TaskId(parse_id(&id, "the task id")?);
    allowed_on_task(&api, &session, operation, id).await?;
    let actor = &session.who.subject;
    match action.as_str() {
        "retry" => api.tasker.retry_task(id, actor).await?,
        "resolve" => api.tasker.resolve_task(id, actor).await?,
        _ => api.tasker.cancel_task(id, actor).await?,
    }
    Ok(Redirect::to(&format!(
        "{}/tasks/{}?done={}",
        session.base,
        id.0,
        past(&action)
    ))
    .into_response())
}

fn past(action: &str) -> &'static str {
    match action {
        "retry" => "retried",
        "resolve" => "resolved",
        _ => "cancelled",
    }
}

/// The step `id` and its task, after checking `operation` on its handler.
async fn step_for<S: Store>(
    api: &Api<S>,
    session: &Session,
    operation: &Operation,
    id: &str,
) -> Result<(TaskId, crate::store::StepRecord), PageError> {
    let id = StepId(parse_id(id, "the step id")?);
    let task_id = api.tasker.store().task_of_step(id).await?;
    allowed_on_task(api, session, operation, task_id).await?;
    let (_, step) = api.tasker.step(id).await?;
    Ok((task_id, step))
}

/// `GET /steps/{id}/{action}`: the confirmation.
pub(super) async fn confirm_step<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    let operation = step_operation(&action).ok_or_else(|| unknown_action(&action))?;
    let (task_id, step) = step_for(&api, &session, operation, &id).await?;
    let base = &session.base;
    let what = format!("step {} of task #{}", step.name, task_id.0);
    let content = html! {
        h1 { "Confirm: " (action) " step " code { (step.name) } }
        p { "Of task " a href={ (base) "/tasks/" (task_id.0) } { "#" (task_id.0) } ", now " (step_badge(step.state)) }
        p { (explain(&action, &what)) }
        form method="post" action={ (base) "/steps/" (step.step_id.0) "/" (action) } {
            (form_token(&session))
            @if action == "resolve" {
                p {
                    label for="output" { "Output for the steps that read it (JSON)" }
                    textarea #output name="output" rows="4" { "null" }
                }
            }
            button.danger type="submit" { "Yes, " (action) " this step" }
            " "
            a href={ (base) "/tasks/" (task_id.0) } { "No, go back" }
        }
    };
    Ok(view::page(
        &api,
        &session,
        "tasks",
        &format!("Confirm {action}"),
        content,
    ))
}

/// `POST /steps/{id}/{action}`.
pub(super) async fn step_action<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    let operation = step_operation(&action).ok_or_else(|| unknown_action(&action))?;
    let (task_id, step) = step_for(&api, &session, operation, &id).await?;
    let actor = &session.who.subject;
    match action.as_str() {
        "retry" => api.tasker.retry_step(step.step_id, actor).await?,
        "resolve" => {
            let raw = form.get("output").unwrap_or("null");
            let output = serde_json::from_str(raw).map_err(|e| {
                PageError(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("the output is not JSON ({e}); go back and correct it"),
                ))
            })?;
            api.tasker.resolve_step(step.step_id, output, actor).await?
        }
        _ => api.tasker.cancel_step(step.step_id, actor).await?,
    }
    Ok(Redirect::to(&format!(
        "{}/tasks/{}?done=step_{}",
        session.base,
        task_id.0,
        past(&action)
    ))
    .into_response())
}

/// The bulk action and its tasks from a dead-letter form.
fn bulk(form: &Form) -> Result<(&'static str, &'static Operation, Vec<TaskId>), PageError> {
    let (action, operation) = match form.get("action") {
        Some("retry") => ("retry", &super::super::operations::RETRY_TASK),
        Some("resolve") => ("resolve", &super::super::operations::RESOLVE_TASK),
        other => {
            return Err(PageError(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("`action` must be retry or resolve, not {other:?}"),
            )))
        }
    };
    let mut ids = Vec::new();
    for raw in form.all("task") {
        let id = TaskId(parse_id(raw, "each task")?);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(PageError(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "select at least one task",
        )));
    }
    if ids.len() > MAX_BULK {
        return Err(PageError(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("select at most {MAX_BULK} tasks at once, not {}", ids.len()),
        )));
    }
    Ok((action, operation, ids))
}

/// `POST /dead-letters`: the confirmation of a bulk action (changes
/// nothing).
pub(super) async fn confirm_bulk<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
) -> PageResult {
    let (action, operation, ids) = bulk(&form)?;
    for id in &ids {
        allowed_on_task(&api, &session, operation, *id).await?;
    }
    let base = &session.base;
    let content = html! {
        h1 { "Confirm: " (action) " " (ids.len()) " tasks" }
        p { (explain(action, &format!("{} tasks", ids.len()))) }
        ul.inline { @for id in &ids { li { a href={ (base) "/tasks/" (id.0) } { "#" (id.0) } } } }
        form method="post" action={ (base) "/dead-letters/apply" } {
            (form_token(&session))
            input type="hidden" name="action" value=(action);
            @for id in &ids { input type="hidden" name="task" value=(id.0); }
            button.danger type="submit" { "Yes, " (action) " " (ids.len()) " tasks" }
            " "
            a href={ (base) "/dead-letters" } { "No, go back" }
        }
    };
    Ok(view::page(
        &api,
        &session,
        "dead-letters",
        "Confirm",
        content,
    ))
}

/// `POST /dead-letters/apply`: the bulk action, task by task (one task's
/// refusal does not stop the others); the page says what happened to each.
pub(super) async fn bulk_action<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
) -> PageResult {
    let (action, operation, ids) = bulk(&form)?;
    let actor = &session.who.subject;
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        let outcome = match allowed_on_task(&api, &session, operation, id).await {
            Err(PageError(e)) => Err(e.message),
            Ok(()) => {
                let done = if action == "retry" {
                    api.tasker.retry_task(id, actor).await
                } else {
                    api.tasker.resolve_task(id, actor).await
                };
                done.map_err(|e| ApiError::from(e).message)
            }
        };
        results.push((id, outcome));
    }
    let base = &session.base;
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    let content = html! {
        h1 { (past(action).replace('_', " ")) ": " (results.len() - failed) " of " (results.len()) " tasks" }
        table {
            thead { tr { th scope="col" { "Task" } th scope="col" { "Outcome" } } }
            tbody {
                @for (id, result) in &results {
                    tr {
                        td { a href={ (base) "/tasks/" (id.0) } { "#" (id.0) } }
                        td { @match result { Ok(()) => { (view::badge("complete")) " " (past(action)) }, Err(e) => span.error { (e) } } }
                    }
                }
            }
        }
        p { a href={ (base) "/dead-letters" } { "Back to the dead letters" } }
    };
    Ok(view::page(&api, &session, "dead-letters", "Done", content))
}
