//! Task operations: list, create, show, cancel, retry, resolve, diagram,
//! analysis.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::auth::Principal;
use super::operations::{
    CANCEL_TASK, CREATE_TASK, LIST_TASKS, RESOLVE_TASK, RETRY_TASK, SHOW_TASK, TASK_ANALYSIS,
    TASK_DIAGRAM,
};
use super::responses::{AnalysisBody, CreatedBody, TaskBody, TaskPage};
use super::{allow_on, body, may_on, parse_id, Api, ApiError, Operation, Shared};
use crate::analysis::{analyze_with_history, task_dot, task_mermaid, History};
use crate::store::{ItemWindow, Store, TaskFilter};
use crate::{TaskId, TaskRequest, TaskState};

/// A fan-out's items shown with its task when no window is asked for.
pub(super) const DEFAULT_ITEMS: u32 = 100;
/// The most items of each fan-out one task read shows.
pub(super) const MAX_ITEMS: u32 = 1_000;

/// The window of each fan-out's items a task read shows: `items_limit`
/// from `items_offset` (100 by default, at most 1,000; 0 for none).
pub(super) fn items_window(offset: Option<u32>, limit: Option<u32>) -> ItemWindow {
    ItemWindow {
        offset: offset.unwrap_or(0),
        limit: limit.unwrap_or(DEFAULT_ITEMS).min(MAX_ITEMS),
    }
}

/// The window of a task's fan-out items, from the query string.
#[derive(Deserialize)]
pub(super) struct ItemsQuery {
    items_offset: Option<u32>,
    items_limit: Option<u32>,
}

/// Page size of a task list when none is asked for.
const DEFAULT_LIMIT: u32 = 50;
/// The largest page of a task list, REST or GraphQL.
const MAX_LIMIT: u32 = 500;

/// Complete tasks whose audit trails give the typical step durations of an
/// analysis (two reads each).
const HISTORY_TASKS: u32 = 10;
/// Content types of the diagrams.
pub(super) const MERMAID: &str = "text/vnd.mermaid; charset=utf-8";
pub(super) const GRAPHVIZ: &str = "text/vnd.graphviz; charset=utf-8";

/// The page size for a requested `limit`: 50 by default, 1 to 500.
pub(super) fn page_size(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// The filters of a task list, from the REST query string or the GraphQL
/// field's arguments.
#[derive(Deserialize)]
pub(super) struct ListQuery {
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) version: Option<String>,
    pub(super) state: Option<String>,
    pub(super) annotation_type: Option<String>,
    pub(super) limit: Option<u32>,
    pub(super) offset: Option<u32>,
}

impl ListQuery {
    /// The store's filter; an unknown `state` is refused with its message.
    pub(super) fn into_filter(self) -> Result<TaskFilter, String> {
        let state = self
            .state
            .as_deref()
            .map(str::parse::<TaskState>)
            .transpose()
            .map_err(|e| e.to_string())?;
        if let Some(kind) = &self.annotation_type {
            crate::annotation::check_annotation_type(kind)
                .map_err(|e| format!("`annotation_type`: {e}"))?;
        }
        Ok(TaskFilter {
            namespace: self.namespace,
            name: self.name,
            version: self.version,
            state,
            annotation_type: self.annotation_type,
            limit: page_size(self.limit),
            offset: self.offset.unwrap_or(0),
            ..TaskFilter::default()
        })
    }
}

pub(super) async fn list_tasks<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<TaskPage>, ApiError> {
    let filter = super::query(query)?
        .into_filter()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e))?;
    // Only the tasks of handlers the caller may list (a page may come out
    // short for a caller whose permission is scoped).
    let tasks = api
        .tasker
        .tasks(&filter)
        .await?
        .into_iter()
        .filter(|t| {
            may_on(
                &api,
                &who,
                &LIST_TASKS,
                (&t.namespace, &t.name),
                Some(t.task_id),
            )
        })
        .collect();
    Ok(Json(TaskPage {
        tasks,
        limit: filter.limit,
        offset: filter.offset,
    }))
}

pub(super) async fn create_task<S: Store>(
    State(api): Shared<S>,
    Extension(principal): Extension<Principal>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(raw)?;
    let text = std::str::from_utf8(&raw).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not UTF-8 JSON",
        )
    })?;
    let request = TaskRequest::from_json(text)?;
    if !request.initiator_is_unset() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "`initiator` is recorded from your credentials (`{}`) and cannot be set; \
                 put a label in `source_system`, `reason` or `tags`",
                principal.subject
            ),
        ));
    }
    let request = request.initiator(principal.subject.clone());
    // A handler the registry does not know is refused by `create_task`.
    if let Ok(handler) =
        api.tasker
            .registry()
            .find(request.namespace(), request.name(), request.version())
    {
        allow_on(
            &api,
            &principal,
            &CREATE_TASK,
            (handler.namespace(), handler.name()),
            None,
        )?;
    }
    let created = api.tasker.create_task(request).await?;
    let (status, new) = match created {
        crate::store::Created::New(_) => (StatusCode::CREATED, true),
        crate::store::Created::Existing(_) => (StatusCode::OK, false),
    };
    // An existing task (same identity key) may have been created by
    // someone else: its record is shown only to callers who may see it.
    let task = api.tasker.task_view(created.task_id(), shown()).await?;
    let task = may_on(
        &api,
        &principal,
        &SHOW_TASK,
        (&task.namespace, &task.name),
        Some(task.task_id),
    )
    .then_some(task);
    let body = CreatedBody {
        created: new,
        task_id: created.task_id(),
        task,
    };
    Ok((status, Json(body)).into_response())
}

/// The items shown with a task an action answers with.
pub(super) fn shown() -> ItemWindow {
    ItemWindow::first(DEFAULT_ITEMS)
}

pub(super) async fn show_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    query: Result<Query<ItemsQuery>, QueryRejection>,
) -> Result<Json<TaskBody>, ApiError> {
    let q = super::query(query)?;
    let id = TaskId(parse_id(&id, "task_id")?);
    let task = api
        .tasker
        .task_view(id, items_window(q.items_offset, q.items_limit))
        .await?;
    allow_on(
        &api,
        &who,
        &SHOW_TASK,
        (&task.namespace, &task.name),
        Some(id),
    )?;
    Ok(Json(TaskBody { task }))
}

/// Refuses (403) unless `who` may use `operation` on task `id`;
/// `NotFound` for no such task.
pub(super) async fn allow_on_task<S: Store>(
    api: &Api<S>,
    who: &Principal,
    operation: &Operation,
    id: TaskId,
) -> Result<(), ApiError> {
    let (namespace, name) = api.tasker.store().handler_of_task(id).await?;
    allow_on(api, who, operation, (&namespace, &name), Some(id))
}

pub(super) async fn cancel_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TaskBody>, ApiError> {
    let id = TaskId(parse_id(&id, "task_id")?);
    allow_on_task(&api, &who, &CANCEL_TASK, id).await?;
    api.tasker.cancel_task(id, &who.subject).await?;
    Ok(Json(TaskBody {
        task: api.tasker.task_view(id, shown()).await?,
    }))
}

pub(super) async fn retry_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TaskBody>, ApiError> {
    let id = TaskId(parse_id(&id, "task_id")?);
    allow_on_task(&api, &who, &RETRY_TASK, id).await?;
    api.tasker.retry_task(id, &who.subject).await?;
    Ok(Json(TaskBody {
        task: api.tasker.task_view(id, shown()).await?,
    }))
}

pub(super) async fn resolve_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TaskBody>, ApiError> {
    let id = TaskId(parse_id(&id, "task_id")?);
    allow_on_task(&api, &who, &RESOLVE_TASK, id).await?;
    api.tasker.resolve_task(id, &who.subject).await?;
    Ok(Json(TaskBody {
        task: api.tasker.task_view(id, shown()).await?,
    }))
}

#[derive(Deserialize)]
pub(super) struct DiagramQuery {
    pub(super) format: Option<String>,
    pub(super) version: Option<String>,
}

pub(super) fn diagram_response(
    format: Option<&str>,
    mermaid: impl FnOnce() -> String,
    dot: impl FnOnce() -> String,
) -> Result<Response, ApiError> {
    match format.unwrap_or("mermaid") {
        "mermaid" => Ok(([(header::CONTENT_TYPE, MERMAID)], mermaid()).into_response()),
        "dot" => Ok(([(header::CONTENT_TYPE, GRAPHVIZ)], dot()).into_response()),
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("unknown diagram format {other:?}; use mermaid or dot"),
        )),
    }
}

pub(super) async fn task_diagram<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    query: Result<Query<DiagramQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = super::query(query)?;
    // The steps and their items' counts: the items themselves are not drawn
    // or analyzed.
    let task = api
        .tasker
        .task_view(TaskId(parse_id(&id, "task_id")?), ItemWindow::NONE)
        .await?;
    allow_on(
        &api,
        &who,
        &TASK_DIAGRAM,
        (&task.namespace, &task.name),
        Some(task.task_id),
    )?;
    let handler = handler_of(&api, &task)?;
    let title = format!("task {} {}", task.task_id, handler.key());
    diagram_response(
        q.format.as_deref(),
        || task_mermaid(handler.graph(), &task),
        || task_dot(handler.graph(), &task, &title),
    )
}

fn handler_of<'a, S: Store>(
    api: &'a Api<S>,
    task: &crate::store::TaskRecord,
) -> Result<&'a crate::Handler, ApiError> {
    api.tasker
        .registry()
        .find(&task.namespace, &task.name, Some(&task.version))
        .map_err(|_| {
            ApiError::new(
                StatusCode::CONFLICT,
                "handler_not_linked",
                format!(
                    "handler {}/{}@{} is not linked into this server",
                    task.namespace, task.name, task.version
                ),
            )
        })
}

pub(super) async fn task_analysis<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<AnalysisBody>, ApiError> {
    // The steps and their items' counts: the items themselves are not drawn
    // or analyzed.
    let task = api
        .tasker
        .task_view(TaskId(parse_id(&id, "task_id")?), ItemWindow::NONE)
        .await?;
    allow_on(
        &api,
        &who,
        &TASK_ANALYSIS,
        (&task.namespace, &task.name),
        Some(task.task_id),
    )?;
    let handler = handler_of(&api, &task)?;
    // Typical step durations from the last complete tasks of the same
    // handler version: a bounded number of reads.
    let history = History::load(api.tasker.store(), &task, HISTORY_TASKS).await?;
    let analysis = analyze_with_history(handler.graph(), &task, &api.config.analysis, &history);
    Ok(Json(AnalysisBody {
        task_id: task.task_id,
        state: task.state,
        analysis,
    }))
}
