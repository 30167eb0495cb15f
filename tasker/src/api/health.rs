//! Health: liveness, readiness, and the status summary.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::responses::{Probe, Status};
use super::{ApiError, Shared};
use crate::store::Store;

pub(super) async fn live() -> Json<Probe> {
    Json(Probe { status: "live" })
}

pub(super) async fn ready<S: Store>(State(api): Shared<S>) -> Response {
    match api.tasker.store().migrations_current().await {
        Ok(true) => Json(Probe { status: "ready" }).into_response(),
        Ok(false) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database's migrations are not current; run `migrate`",
        )
        .into_response(),
        Err(e) => {
            tracing::warn!("readiness check failed: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the database does not answer",
            )
            .into_response()
        }
    }
}

pub(super) async fn status<S: Store>(State(api): Shared<S>) -> Result<Json<Status>, ApiError> {
    let tasks = api
        .tasker
        .store()
        .task_counts()
        .await?
        .into_iter()
        .map(|(s, n)| (s.to_string(), n))
        .collect();
    Ok(Json(Status {
        tasks,
        ready_steps: api.tasker.store().ready_steps().await?,
        mode: format!("{:?}", api.tasker.mode()),
        warnings: api.tasker.store().warnings().await?,
    }))
}
