//! Health: liveness, readiness, and the status summary.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, Shared};
use crate::store::Store;

pub(super) async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

pub(super) async fn ready<S: Store>(State(api): Shared<S>) -> Response {
    match api.tasker.store().migrations_current().await {
        Ok(true) => Json(json!({"status": "ready"})).into_response(),
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

pub(super) async fn status<S: Store>(State(api): Shared<S>) -> Result<Json<Value>, ApiError> {
    let counts = api.tasker.store().task_counts().await?;
    let counts: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(s, n)| (s.to_string(), json!(n)))
        .collect();
    let ready = api.tasker.store().ready_steps().await?;
    let warnings = api.tasker.store().warnings().await?;
    Ok(Json(json!({
        "tasks": counts, "ready_steps": ready, "mode": format!("{:?}", api.tasker.mode()),
        "warnings": warnings,
    })))
}
