//! Step operations: show, retry, cancel, resolve.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;

use super::auth::Principal;
use super::operations::{CANCEL_STEP, RESOLVE_STEP, RETRY_STEP, SHOW_STEP};
use super::responses::{StepBody, StepChanged};
use super::tasks::allow_on_task;
use super::{body, parse_id, Api, ApiError, Operation, Shared};
use crate::ids::StepId;
use crate::state::StepState;
use crate::store::Store;

pub(super) async fn show_step<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<StepBody>, ApiError> {
    let step_id = StepId(parse_id(&id, "step_id")?);
    let (task_id, step) = api.tasker.step(step_id).await?;
    allow_on_task(&api, &who, &SHOW_STEP, task_id).await?;
    Ok(Json(StepBody { task_id, step }))
}

/// Refuses (403) unless `who` may use `operation` on step `step_id`'s task.
async fn allow_on_step<S: Store>(
    api: &Api<S>,
    who: &Principal,
    operation: &Operation,
    step_id: StepId,
) -> Result<(), ApiError> {
    let task_id = api.tasker.store().task_of_step(step_id).await?;
    allow_on_task(api, who, operation, task_id).await
}

pub(super) async fn retry_step<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<StepChanged>, ApiError> {
    let step_id = StepId(parse_id(&id, "step_id")?);
    allow_on_step(&api, &who, &RETRY_STEP, step_id).await?;
    api.tasker.retry_step(step_id, &who.subject).await?;
    Ok(Json(StepChanged {
        step_id,
        state: StepState::Ready,
        task: None,
    }))
}

pub(super) async fn cancel_step<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<StepChanged>, ApiError> {
    let step_id = StepId(parse_id(&id, "step_id")?);
    allow_on_step(&api, &who, &CANCEL_STEP, step_id).await?;
    api.tasker.cancel_step(step_id, &who.subject).await?;
    let task_id = api.tasker.store().task_of_step(step_id).await?;
    Ok(Json(StepChanged {
        step_id,
        state: StepState::Cancelled,
        task: Some(api.tasker.task_view(task_id, super::tasks::shown()).await?),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Resolve {
    #[serde(default)]
    output: Value,
}

pub(super) async fn resolve_step<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<StepChanged>, ApiError> {
    let raw = body(raw)?;
    let resolve: Resolve = if raw.is_empty() {
        Resolve {
            output: Value::Null,
        }
    } else {
        serde_json::from_slice(&raw).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("malformed body: {e}; send {{\"output\": ...}}"),
            )
        })?
    };
    let step_id = StepId(parse_id(&id, "step_id")?);
    allow_on_step(&api, &who, &RESOLVE_STEP, step_id).await?;
    api.tasker
        .resolve_step(step_id, resolve.output, &who.subject)
        .await?;
    Ok(Json(StepChanged {
        step_id,
        state: StepState::ResolvedManually,
        task: None,
    }))
}
