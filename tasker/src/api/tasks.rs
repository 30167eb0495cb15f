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
use super::responses::{AnalysisBody, CreatedBody, TaskBody, TaskPage};
use super::{body, parse_id, Api, ApiError, Shared, SHOW_TASK_PERMISSION};
use crate::analysis::{analyze, task_dot, task_mermaid};
use crate::store::{Store, TaskFilter};
use crate::{TaskId, TaskRequest, TaskState};

#[derive(Deserialize)]
pub(super) struct ListQuery {
    namespace: Option<String>,
    name: Option<String>,
    version: Option<String>,
    state: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

pub(super) async fn list_tasks<S: Store>(
    State(api): Shared<S>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<TaskPage>, ApiError> {
    let q = super::query(query)?;
    let state = q
        .state
        .as_deref()
        .map(str::parse::<TaskState>)
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let tasks = api
        .tasker
        .tasks(&TaskFilter {
            namespace: q.namespace,
            name: q.name,
            version: q.version,
            state,
            limit,
            offset: q.offset.unwrap_or(0),
        })
        .await?;
    Ok(Json(TaskPage {
        tasks,
        limit,
        offset: q.offset.unwrap_or(0),
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
    let created = api.tasker.create_task(request).await?;
    let (status, new) = match created {
        crate::store::Created::New(_) => (StatusCode::CREATED, true),
        crate::store::Created::Existing(_) => (StatusCode::OK, false),
    };
    // An existing task (same identity key) may have been created by
    // someone else: its record is shown only to callers who may see tasks.
    let task = if api
        .config
        .authorizer
        .authorize(&principal, SHOW_TASK_PERMISSION)
    {
        Some(api.tasker.task(created.task_id()).await?)
    } else {
        None
    };
    let body = CreatedBody {
        created: new,
        task_id: created.task_id(),
        task,
    };
    Ok((status, Json(body)).into_response())
}

pub(super) async fn show_task<S: Store>(
    State(api): Shared<S>,
    Path(id): Path<String>,
) -> Result<Json<TaskBody>, ApiError> {
    let task = api.tasker.task(TaskId(parse_id(&id, "task_id")?)).await?;
    Ok(Json(TaskBody { task }))
}

pub(super) async fn cancel_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TaskBody>, ApiError> {
    let id = TaskId(parse_id(&id, "task_id")?);
    api.tasker.cancel_task(id, &who.subject).await?;
    Ok(Json(TaskBody {
        task: api.tasker.task(id).await?,
    }))
}

pub(super) async fn retry_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TaskBody>, ApiError> {
    let id = TaskId(parse_id(&id, "task_id")?);
    api.tasker.retry_task(id, &who.subject).await?;
    Ok(Json(TaskBody {
        task: api.tasker.task(id).await?,
    }))
}

pub(super) async fn resolve_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TaskBody>, ApiError> {
    let id = TaskId(parse_id(&id, "task_id")?);
    api.tasker.resolve_task(id, &who.subject).await?;
    Ok(Json(TaskBody {
        task: api.tasker.task(id).await?,
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
        "mermaid" => Ok((
            [(header::CONTENT_TYPE, "text/vnd.mermaid; charset=utf-8")],
            mermaid(),
        )
            .into_response()),
        "dot" => Ok((
            [(header::CONTENT_TYPE, "text/vnd.graphviz; charset=utf-8")],
            dot(),
        )
            .into_response()),
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("unknown diagram format {other:?}; use mermaid or dot"),
        )),
    }
}

pub(super) async fn task_diagram<S: Store>(
    State(api): Shared<S>,
    Path(id): Path<String>,
    query: Result<Query<DiagramQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = super::query(query)?;
    let task = api.tasker.task(TaskId(parse_id(&id, "task_id")?)).await?;
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
    Path(id): Path<String>,
) -> Result<Json<AnalysisBody>, ApiError> {
    let task = api.tasker.task(TaskId(parse_id(&id, "task_id")?)).await?;
    let handler = handler_of(&api, &task)?;
    let analysis = analyze(handler.graph(), &task, &api.config.analysis);
    Ok(Json(AnalysisBody {
        task_id: task.task_id,
        state: task.state,
        analysis,
    }))
}
