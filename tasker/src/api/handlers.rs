//! Handler operations: the registry, one handler's graph, its diagram.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use super::tasks::{diagram_response, DiagramQuery};
use super::{Api, ApiError, Shared};
use crate::store::Store;

pub(super) async fn list_handlers<S: Store>(
    State(api): Shared<S>,
) -> Result<Json<Value>, ApiError> {
    let registry = api.tasker.registry();
    let namespaces: Vec<Value> = registry
        .namespaces()
        .map(|ns| {
            let handlers: Vec<Value> = registry
                .handlers_in(ns)
                .map(|h| json!({ "name": h.name(), "version": h.version().to_string(), "description": h.description(), "fingerprint": h.fingerprint() }))
                .collect();
            json!({ "namespace": ns, "handlers": handlers })
        })
        .collect();
    Ok(Json(json!({ "namespaces": namespaces })))
}

fn find_handler<'a, S: Store>(
    api: &'a Api<S>,
    namespace: &str,
    name: &str,
    version: Option<&str>,
) -> Result<&'a crate::Handler, ApiError> {
    api.tasker
        .registry()
        .find(namespace, name, version)
        .map_err(|e| match e {
            crate::LookupError::InvalidVersion { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
            }
            _ => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        })
}

pub(super) async fn show_handler<S: Store>(
    State(api): Shared<S>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<DiagramQuery>,
) -> Result<Json<Value>, ApiError> {
    let handler = find_handler(&api, &namespace, &name, q.version.as_deref())?;
    let graph = handler.graph();
    let steps: Vec<Value> = handler
        .steps()
        .iter()
        .map(|s| json!({
            "name": s.name(), "description": s.description(), "depends_on": s.depends_on(),
            "output_type": s.output_type(), "retry_limit": s.retry_limit(), "retryable": s.retryable(),
            "timeout_ms": s.timeout().map(|t| t.as_millis() as u64), "events": s.events(),
        }))
        .collect();
    Ok(Json(json!({
        "namespace": handler.namespace(), "name": handler.name(), "version": handler.version().to_string(),
        "description": handler.description(), "context_type": handler.context_type(), "fingerprint": handler.fingerprint(),
        "steps": steps, "levels": graph.levels(), "critical_path": graph.critical_path(),
        "roots": graph.roots(), "leaves": graph.leaves(),
    })))
}

pub(super) async fn handler_diagram<S: Store>(
    State(api): Shared<S>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<DiagramQuery>,
) -> Result<Response, ApiError> {
    let handler = find_handler(&api, &namespace, &name, q.version.as_deref())?;
    diagram_response(
        q.format.as_deref(),
        || handler.graph().to_mermaid(),
        || handler.graph().to_dot(&handler.key()),
    )
}
