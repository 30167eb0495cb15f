//! Handler operations: the registry, one handler's graph, its diagram.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};

use super::auth::Principal;
use super::operations::{HANDLER_DIAGRAM, LIST_HANDLERS, SHOW_HANDLER};
use super::responses::{HandlerDetail, HandlerIndex, HandlerSummary, NamespaceEntry, StepSummary};
use super::tasks::{diagram_response, DiagramQuery};
use super::{allow_on, may_on, Api, ApiError, Shared};
use crate::store::Store;

fn names(list: Vec<&str>) -> Vec<String> {
    list.into_iter().map(str::to_owned).collect()
}

pub(super) async fn list_handlers<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
) -> Result<Json<HandlerIndex>, ApiError> {
    let registry = api.tasker.registry();
    // Only the handlers the caller may list.
    let visible =
        |h: &&crate::Handler| may_on(&api, &who, &LIST_HANDLERS, (h.namespace(), h.name()), None);
    let namespaces = registry
        .namespaces()
        .filter(|ns| registry.handlers_in(ns).any(|h| visible(&h)))
        .map(|ns| NamespaceEntry {
            namespace: ns.to_owned(),
            handlers: registry
                .handlers_in(ns)
                .filter(visible)
                .map(|h| HandlerSummary {
                    name: h.name().to_owned(),
                    version: h.version().to_string(),
                    description: h.description().to_owned(),
                    fingerprint: h.fingerprint().to_owned(),
                    dependent_systems: names(h.dependent_systems()),
                })
                .collect(),
        })
        .collect();
    Ok(Json(HandlerIndex { namespaces }))
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
    Extension(who): Extension<Principal>,
    Path((namespace, name)): Path<(String, String)>,
    query: Result<Query<DiagramQuery>, QueryRejection>,
) -> Result<Json<HandlerDetail>, ApiError> {
    let q = super::query(query)?;
    let handler = find_handler(&api, &namespace, &name, q.version.as_deref())?;
    allow_on(
        &api,
        &who,
        &SHOW_HANDLER,
        (handler.namespace(), handler.name()),
        None,
    )?;
    let graph = handler.graph();
    let steps = handler
        .steps()
        .iter()
        .map(|s| StepSummary {
            name: s.name().to_owned(),
            description: s.description().to_owned(),
            depends_on: names(s.depends_on().to_vec()),
            output_type: s.output_type().to_owned(),
            retry_limit: s.retry_limit(),
            retryable: s.retryable(),
            timeout_ms: s.timeout().map(|t| t.as_millis() as u64),
            events: names(s.events().to_vec()),
            dependent_systems: names(s.dependent_systems().to_vec()),
        })
        .collect();
    Ok(Json(HandlerDetail {
        namespace: handler.namespace().to_owned(),
        name: handler.name().to_owned(),
        version: handler.version().to_string(),
        description: handler.description().to_owned(),
        context_type: handler.context_type().to_owned(),
        fingerprint: handler.fingerprint().to_owned(),
        dependent_systems: names(handler.dependent_systems()),
        metadata: handler
            .metadata()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        steps,
        levels: graph.levels().into_iter().map(names).collect(),
        critical_path: names(graph.critical_path()),
        roots: names(graph.roots()),
        leaves: names(graph.leaves()),
    }))
}

pub(super) async fn handler_diagram<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path((namespace, name)): Path<(String, String)>,
    query: Result<Query<DiagramQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = super::query(query)?;
    let handler = find_handler(&api, &namespace, &name, q.version.as_deref())?;
    allow_on(
        &api,
        &who,
        &HANDLER_DIAGRAM,
        (handler.namespace(), handler.name()),
        None,
    )?;
    diagram_response(
        q.format.as_deref(),
        || handler.to_mermaid(),
        || handler.to_dot(),
    )
}
