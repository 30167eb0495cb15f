//! The REST API (feature `http`): tasks, steps, handlers, diagrams,
//! analysis, health and metrics over axum, with pluggable authentication
//! and `resource:action` authorization on every route.
//!
//! ```no_run
//! # async fn demo(tasker: tasker::Tasker<impl tasker::Store>) -> std::io::Result<()> {
//! use tasker::api::{ApiConfig, StaticTokens};
//!
//! let auth = StaticTokens::new().token("ops", std::env::var("OPS_TOKEN").unwrap(), ["tasker.task:*", "tasker.handler:index"]);
//! let app = tasker::api::router(tasker, ApiConfig::new(auth));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Every route and its permission is listed in [`ROUTES`]; `GET
//! {prefix}/openapi.json` serves the OpenAPI document.

mod auth;
#[cfg(feature = "graphql")]
mod graphql;
mod guard;
mod serve;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub use auth::{
    AuthError, AuthFuture, Authenticator, Authorizer, JwtAuthenticator, NoAuthentication,
    PermissionAuthorizer, Principal, StaticTokens, MIN_HS256_SECRET_BYTES, MIN_TOKEN_CHARS,
};
#[cfg(feature = "graphql")]
pub use graphql::{sdl as graphql_sdl, GRAPHQL_OPERATIONS};
pub use guard::ApiLimits;
pub use serve::serve;

use crate::analysis::{analyze, task_dot, task_mermaid, AnalysisConfig};
use crate::error::Error;
use crate::store::{StepId, Store, StoreError, TaskFilter};
use crate::{TaskId, TaskRequest, TaskState, Tasker};

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: &'static str,
    /// Path below the prefix, with `{param}`s.
    pub path: &'static str,
    /// The permission it needs; `None` for the open health probes.
    pub permission: Option<&'static str>,
    /// What it does.
    pub summary: &'static str,
}

macro_rules! routes {
    ($($method:literal $path:literal $permission:expr, $summary:literal;)*) => {
        /// Every route, with its permission.
        pub const ROUTES: &[RouteSpec] = &[
            $(RouteSpec { method: $method, path: $path, permission: $permission, summary: $summary },)*
        ];
    };
}

routes! {
    "GET" "/health/live" None, "Liveness: the process answers.";
    "GET" "/health/ready" None, "Readiness: the database answers and its migrations are current.";
    "GET" "/health/status" Some("tasker.health_status:index"), "Task counts by state.";
    "GET" "/metrics" Some("tasker.metrics:index"), "Prometheus metrics.";
    "GET" "/tasks" Some("tasker.task:index"), "List tasks (filters: namespace, name, version, state; limit, offset).";
    "POST" "/tasks" Some("tasker.task:create"), "Create a task from a JSON request.";
    "GET" "/tasks/{task_id}" Some("tasker.task:show"), "A task with its steps.";
    "POST" "/tasks/{task_id}/cancel" Some("tasker.task:cancel"), "Cancel a task.";
    "POST" "/tasks/{task_id}/retry" Some("tasker.task:retry"), "Retry a task in error.";
    "POST" "/tasks/{task_id}/resolve" Some("tasker.task:resolve"), "Mark a task done by hand.";
    "GET" "/tasks/{task_id}/diagram" Some("tasker.task:show"), "The task's graph with steps coloured by state (format=mermaid|dot).";
    "GET" "/tasks/{task_id}/analysis" Some("tasker.analytics:index"), "Critical path, levels and bottlenecks of a task.";
    "GET" "/steps/{step_id}" Some("tasker.workflow_step:show"), "One step of a task.";
    "POST" "/steps/{step_id}/retry" Some("tasker.workflow_step:retry"), "Retry a step in error.";
    "POST" "/steps/{step_id}/resolve" Some("tasker.workflow_step:resolve"), "Resolve a step by hand (body: {\"output\": ...}).";
    "POST" "/steps/{step_id}/cancel" Some("tasker.workflow_step:cancel"), "Cancel a step and the unfinished steps after it.";
    "GET" "/handlers" Some("tasker.handler:index"), "Namespaces, handlers and versions.";
    "GET" "/handlers/{namespace}/{name}" Some("tasker.handler:show"), "One handler with its step graph (version=...).";
    "GET" "/handlers/{namespace}/{name}/diagram" Some("tasker.handler:show"), "A handler's graph (format=mermaid|dot, version=...).";
    "GET" "/openapi.json" None, "This API's OpenAPI document.";
}

/// Settings of the API.
#[derive(Clone)]
pub struct ApiConfig {
    /// Path prefix of every route (default `/tasker`).
    pub prefix: String,
    /// Who is calling.
    pub authenticator: Arc<dyn Authenticator>,
    /// Whether they may.
    pub authorizer: Arc<dyn Authorizer>,
    /// Bounds on time, size and cost of requests (see [`ApiLimits`]).
    pub limits: ApiLimits,
    /// Weights and thresholds of the bottleneck analysis.
    pub analysis: AnalysisConfig,
}

/// The permission that lets a caller introspect the GraphQL schema
/// (`__schema`, `__type`). Without it, those fields resolve to `null`.
pub const INTROSPECT_PERMISSION: &str = "tasker.graphql:introspect";

/// The permission under which a task's full record is returned by a
/// create call that finds an existing task (identity key): without it the
/// caller learns only the id.
pub const SHOW_TASK_PERMISSION: &str = "tasker.task:show";

impl ApiConfig {
    /// Defaults with `authenticator` and the permission authorizer.
    pub fn new(authenticator: impl Authenticator) -> Self {
        ApiConfig {
            prefix: "/tasker".to_owned(),
            authenticator: Arc::new(authenticator),
            authorizer: Arc::new(PermissionAuthorizer),
            limits: ApiLimits::default(),
            analysis: AnalysisConfig::default(),
        }
    }
}

struct Api<S: Store> {
    tasker: Tasker<S>,
    config: ApiConfig,
    gate: Arc<guard::Gate>,
    #[cfg(feature = "graphql")]
    schema: graphql::TaskerSchema,
}

type Shared<S> = State<Arc<Api<S>>>;

/// An error response: a status and `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidRequest(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
            }
            Error::Lookup(_) | Error::HandlerNotServed(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_handler",
                e.to_string(),
            ),
            Error::Payload(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string())
            }
            Error::Context(_) | Error::Serialize { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_context",
                e.to_string(),
            ),
            Error::Store(StoreError::NotFound { .. }) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            Error::Store(StoreError::Conflict(_)) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            other => {
                // Never leak internals (SQL, driver messages) to callers.
                tracing::error!("API request failed: {other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has the details",
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Error::Store(e).into()
    }
}

/// The API as an axum router, to serve (with [`serve`], which adds
/// connection limits) or to nest in your own app.
///
/// Every route passes the gate described in [`ApiLimits`]: header limits,
/// authentication from the headers, the route's permission from
/// [`ROUTES`], the body under a size and time limit, a bounded number of
/// requests at once (except `/health/live`, which must answer even when
/// the API is saturated), then the handler under a time limit.
pub fn router<S: Store>(tasker: Tasker<S>, config: ApiConfig) -> Router {
    let prefix = config.prefix.trim_end_matches('/').to_owned();
    let body_limit = config.limits.body_limit;
    let gate = Arc::new(guard::Gate::new(
        Arc::clone(&config.authenticator),
        Arc::clone(&config.authorizer),
        config.limits.clone(),
    ));
    let api = Arc::new(Api {
        #[cfg(feature = "graphql")]
        schema: graphql::schema(tasker.clone(), &config.limits),
        tasker,
        config,
        gate,
    });
    let mut routes = Router::new();
    for (method, path, handler) in handlers::<S>() {
        let spec = ROUTES
            .iter()
            .find(|r| r.method == method.as_str() && r.path == path)
            .expect("every route is listed in ROUTES");
        let access = match (spec.permission, path) {
            (Some(permission), _) => guard::Access::Permission(permission),
            (None, "/health/live") => guard::Access::Probe,
            (None, _) => guard::Access::Open,
        };
        routes = routes.route(path, guarded(&api, access, handler));
    }
    #[cfg(feature = "graphql")]
    let routes = routes.route(
        "/graphql",
        guarded(
            &api,
            guard::Access::Authenticated,
            post(graphql_request::<S>),
        ),
    );
    let routes = routes
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route; see openapi.json",
            )
        })
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed on this route; see openapi.json"),
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(api);
    if prefix.is_empty() {
        routes
    } else {
        Router::new().nest(&prefix, routes)
    }
}

/// A handler behind the gate.
fn guarded<S: Store>(
    api: &Arc<Api<S>>,
    access: guard::Access,
    handler: MethodRouter<Arc<Api<S>>>,
) -> MethodRouter<Arc<Api<S>>> {
    handler.route_layer(axum::middleware::from_fn_with_state(
        (Arc::clone(&api.gate), access),
        guard::gate,
    ))
}

/// One REST handler with its method and path.
type Handler<S> = (Method, &'static str, MethodRouter<Arc<Api<S>>>);

/// Every REST handler with its method and path; the permission of each
/// comes from [`ROUTES`].
fn handlers<S: Store>() -> Vec<Handler<S>> {
    vec![
        (
            Method::GET,
            "/health/live",
            get(|| async { Json(json!({"status": "live"})) }),
        ),
        (Method::GET, "/health/ready", get(ready::<S>)),
        (Method::GET, "/health/status", get(status::<S>)),
        (Method::GET, "/metrics", get(metrics::<S>)),
        (Method::GET, "/tasks", get(list_tasks::<S>)),
        (Method::POST, "/tasks", post(create_task::<S>)),
        (Method::GET, "/tasks/{task_id}", get(show_task::<S>)),
        (
            Method::POST,
            "/tasks/{task_id}/cancel",
            post(cancel_task::<S>),
        ),
        (
            Method::POST,
            "/tasks/{task_id}/retry",
            post(retry_task::<S>),
        ),
        (
            Method::POST,
            "/tasks/{task_id}/resolve",
            post(resolve_task::<S>),
        ),
        (
            Method::GET,
            "/tasks/{task_id}/diagram",
            get(task_diagram::<S>),
        ),
        (
            Method::GET,
            "/tasks/{task_id}/analysis",
            get(task_analysis::<S>),
        ),
        (Method::GET, "/steps/{step_id}", get(show_step::<S>)),
        (
            Method::POST,
            "/steps/{step_id}/retry",
            post(retry_step::<S>),
        ),
        (
            Method::POST,
            "/steps/{step_id}/resolve",
            post(resolve_step::<S>),
        ),
        (
            Method::POST,
            "/steps/{step_id}/cancel",
            post(cancel_step::<S>),
        ),
        (Method::GET, "/handlers", get(list_handlers::<S>)),
        (
            Method::GET,
            "/handlers/{namespace}/{name}",
            get(show_handler::<S>),
        ),
        (
            Method::GET,
            "/handlers/{namespace}/{name}/diagram",
            get(handler_diagram::<S>),
        ),
        (Method::GET, "/openapi.json", get(openapi::<S>)),
    ]
}

async fn ready<S: Store>(State(api): Shared<S>) -> Response {
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

async fn status<S: Store>(State(api): Shared<S>) -> Result<Json<Value>, ApiError> {
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

async fn metrics<S: Store>(State(api): Shared<S>) -> Result<Response, ApiError> {
    Ok((
        [(header::CONTENT_TYPE, crate::http::CONTENT_TYPE)],
        api.tasker.metrics().encode(),
    )
        .into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    namespace: Option<String>,
    name: Option<String>,
    version: Option<String>,
    state: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

async fn list_tasks<S: Store>(
    State(api): Shared<S>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))?;
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
    Ok(Json(
        json!({ "tasks": tasks, "limit": limit, "offset": q.offset.unwrap_or(0) }),
    ))
}

fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            other.body_text(),
        ),
    })
}

async fn create_task<S: Store>(
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
    let mut body = json!({ "created": new, "task_id": created.task_id() });
    if api
        .config
        .authorizer
        .authorize(&principal, SHOW_TASK_PERMISSION)
    {
        body["task"] =
            serde_json::to_value(api.tasker.task(created.task_id()).await?).map_err(|e| {
                Error::Serialize {
                    what: "task",
                    source: e,
                }
            })?;
    }
    Ok((status, Json(body)).into_response())
}

fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{what} must be a number, not {raw:?}"),
        )
    })
}

async fn show_task<S: Store>(
    State(api): Shared<S>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task = api.tasker.task(TaskId(parse_id(&id, "task_id")?)).await?;
    Ok(Json(json!({ "task": task })))
}

async fn cancel_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = TaskId(parse_id(&id, "task_id")?);
    api.tasker.cancel_task(id, &who.subject).await?;
    Ok(Json(json!({ "task": api.tasker.task(id).await? })))
}

async fn retry_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = TaskId(parse_id(&id, "task_id")?);
    api.tasker.retry_task(id, &who.subject).await?;
    Ok(Json(json!({ "task": api.tasker.task(id).await? })))
}

async fn resolve_task<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = TaskId(parse_id(&id, "task_id")?);
    api.tasker.resolve_task(id, &who.subject).await?;
    Ok(Json(json!({ "task": api.tasker.task(id).await? })))
}

#[derive(Deserialize)]
struct DiagramQuery {
    format: Option<String>,
    version: Option<String>,
}

fn diagram_response(
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

async fn task_diagram<S: Store>(
    State(api): Shared<S>,
    Path(id): Path<String>,
    Query(q): Query<DiagramQuery>,
) -> Result<Response, ApiError> {
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

async fn task_analysis<S: Store>(
    State(api): Shared<S>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task = api.tasker.task(TaskId(parse_id(&id, "task_id")?)).await?;
    let handler = handler_of(&api, &task)?;
    let analysis = analyze(handler.graph(), &task, &api.config.analysis);
    Ok(Json(
        json!({ "task_id": task.task_id, "state": task.state, "analysis": analysis }),
    ))
}

async fn show_step<S: Store>(
    State(api): Shared<S>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let step_id = StepId(parse_id(&id, "step_id")?);
    let task_id = api.tasker.store().task_of_step(step_id).await?;
    let task = api.tasker.task(task_id).await?;
    let step = task.steps.iter().find(|s| s.step_id == step_id).cloned();
    Ok(Json(json!({ "task_id": task_id, "step": step })))
}

async fn retry_step<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let step_id = StepId(parse_id(&id, "step_id")?);
    api.tasker.retry_step(step_id, &who.subject).await?;
    Ok(Json(json!({ "step_id": step_id, "state": "ready" })))
}

async fn cancel_step<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let step_id = StepId(parse_id(&id, "step_id")?);
    api.tasker.cancel_step(step_id, &who.subject).await?;
    let task_id = api.tasker.store().task_of_step(step_id).await?;
    Ok(Json(
        json!({ "step_id": step_id, "state": "cancelled", "task": api.tasker.task(task_id).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resolve {
    #[serde(default)]
    output: Value,
}

async fn resolve_step<S: Store>(
    State(api): Shared<S>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
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
    api.tasker
        .resolve_step(step_id, resolve.output, &who.subject)
        .await?;
    Ok(Json(
        json!({ "step_id": step_id, "state": "resolved_manually" }),
    ))
}

async fn list_handlers<S: Store>(State(api): Shared<S>) -> Result<Json<Value>, ApiError> {
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

async fn show_handler<S: Store>(
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

async fn handler_diagram<S: Store>(
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

#[cfg(feature = "graphql")]
async fn graphql_request<S: Store>(
    State(api): Shared<S>,
    Extension(principal): Extension<Principal>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(raw)?;
    let mut request: async_graphql::Request = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("malformed GraphQL request: {e}; send {{\"query\": ..., \"variables\": ...}}"),
        )
    })?;
    if !api
        .config
        .authorizer
        .authorize(&principal, INTROSPECT_PERMISSION)
    {
        request = request.disable_introspection();
    }
    let response = graphql::execute(
        &api.schema,
        request,
        principal,
        Arc::clone(&api.config.authorizer),
        api.config.limits.max_rows_per_request,
    )
    .await;
    let forbidden = !response.errors.is_empty()
        && response.errors.iter().all(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|c| *c == async_graphql::Value::from("FORBIDDEN"))
        });
    let status = if forbidden {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    Ok((status, Json(response)).into_response())
}

async fn openapi<S: Store>(State(api): Shared<S>) -> Json<Value> {
    Json(openapi_document(&api.config.prefix))
}

/// The OpenAPI 3 document of the API under `prefix`.
pub fn openapi_document(prefix: &str) -> Value {
    let prefix = prefix.trim_end_matches('/');
    let error = json!({"$ref": "#/components/schemas/Error"});
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if route.path == "/tasks" && route.method == "GET" {
            for q in ["namespace", "name", "version", "state"] {
                parameters.push(json!({ "name": q, "in": "query", "required": false, "schema": { "type": "string" } }));
            }
            for q in ["limit", "offset"] {
                parameters.push(json!({ "name": q, "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 } }));
            }
        }
        if route.path.ends_with("/diagram") || route.path.starts_with("/handlers/") {
            parameters.push(json!({ "name": "format", "in": "query", "required": false, "schema": { "type": "string", "enum": ["mermaid", "dot"] } }));
            parameters.push(json!({ "name": "version", "in": "query", "required": false, "schema": { "type": "string" } }));
        }
        let mut responses = serde_json::Map::new();
        responses.insert("200".into(), json!({ "description": "OK", "content": { "application/json": { "schema": { "type": "object" } } } }));
        let content = |status: &str, what: &str| json!({ "description": format!("{status}: {what}"), "content": { "application/json": { "schema": error.clone() } } });
        for (status, what) in [
            ("400", "malformed request"),
            ("404", "not found"),
            ("500", "internal error"),
        ] {
            responses.insert(status.into(), content(status, what));
        }
        let mut operation = json!({
            "summary": route.summary,
            "operationId": format!("{}{}", route.method.to_lowercase(), route.path.replace(['/', '{', '}'], "_")),
            "parameters": parameters,
        });
        if let Some(permission) = route.permission {
            responses.insert(
                "401".into(),
                content("401", "missing or invalid credentials"),
            );
            responses.insert(
                "403".into(),
                content("403", &format!("lacks `{permission}`")),
            );
            operation["security"] = json!([{ "bearer": [] }]);
            operation["x-permission"] = json!(permission);
        } else {
            operation["security"] = json!([]);
        }
        if route.method == "POST" {
            responses.insert(
                "409".into(),
                content("409", "not allowed in the current state"),
            );
            responses.insert("413".into(), content("413", "body too large"));
            responses.insert(
                "422".into(),
                content("422", "unknown handler or invalid context"),
            );
            if route.path == "/tasks" {
                responses.insert("201".into(), json!({ "description": "Created", "content": { "application/json": { "schema": { "type": "object" } } } }));
                operation["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/TaskRequest" } } } });
            }
            if route.path.ends_with("/resolve") {
                operation["requestBody"] = json!({ "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": { "output": {} } } } } });
            }
        }
        operation["responses"] = Value::Object(responses);
        let entry = paths
            .entry(format!("{prefix}{}", route.path))
            .or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = operation;
    }
    #[cfg(feature = "graphql")]
    paths.insert(
        format!("{prefix}/graphql"),
        json!({ "post": {
            "summary": "GraphQL over the same operations; each field needs the permission of its REST route (see GRAPHQL_OPERATIONS).",
            "operationId": "post_graphql",
            "security": [{ "bearer": [] }],
            "x-permission": "per operation",
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["query"], "properties": { "query": { "type": "string" }, "variables": { "type": "object" }, "operationName": { "type": "string" } } } } } },
            "responses": {
                "200": { "description": "GraphQL response (data and errors with extensions.code)", "content": { "application/json": { "schema": { "type": "object" } } } },
                "400": { "description": "malformed request", "content": { "application/json": { "schema": error.clone() } } },
                "401": { "description": "missing or invalid credentials", "content": { "application/json": { "schema": error.clone() } } },
                "403": { "description": "every error is a missing permission", "content": { "application/json": { "schema": { "type": "object" } } } }
            }
        } }),
    );
    json!({
        "openapi": "3.0.3",
        "info": { "title": "tasker", "version": env!("CARGO_PKG_VERSION"), "description": "Tasks, steps, handlers, diagrams, analysis and health of a tasker deployment. Every operation names its permission in `x-permission`." },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT or API token" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "TaskRequest": { "type": "object", "required": ["name"], "properties": {
                    "namespace": { "type": "string", "default": "default" }, "name": { "type": "string" },
                    "version": { "type": "string", "description": "exact version, semver requirement, or latest" },
                    "context": { "type": "object" }, "identity_key": { "type": "string" },
                    "source_system": { "type": "string" }, "reason": { "type": "string" },
                    "tags": { "type": "array", "items": { "type": "string" } } } }
            }
        }
    })
}
