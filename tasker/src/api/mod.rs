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
//! Every operation, REST and GraphQL, and its permission is listed once in
//! [`OPERATIONS`]; the router, the GraphQL guards and the OpenAPI document
//! (`GET {prefix}/openapi.json`) are built from it.

mod auth;
#[cfg(feature = "dashboard")]
mod dashboard;
mod error;
#[cfg(feature = "graphql")]
mod graphql;
mod guard;
mod handlers;
mod health;
mod metrics;
mod openapi;
mod operations;
mod responses;
mod serve;
mod steps;
mod tasks;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode};
use axum::routing::MethodRouter;
use axum::Router;

pub use auth::{
    AuthError, AuthFuture, Authenticator, Authorizer, JwtAuthenticator, NoAuthentication,
    PermissionAuthorizer, Principal, Resource, StaticTokens, MIN_HS256_SECRET_BYTES,
    MIN_TOKEN_CHARS,
};
pub use error::ApiError;
#[cfg(feature = "graphql")]
pub use graphql::sdl as graphql_sdl;
pub use guard::ApiLimits;
pub use metrics::{metrics_router, serve_metrics};
pub use openapi::openapi_document;
pub use operations::{
    operation, Access, Operation, Rest, INTROSPECT_PERMISSION, OPERATIONS, SHOW_TASK_PERMISSION,
};
pub use serve::serve;

use crate::analysis::AnalysisConfig;
use crate::store::Store;
use crate::Tasker;

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
    /// Serve the web dashboard at `{prefix}/dashboard` (feature
    /// `dashboard`; default on when the feature is).
    pub dashboard: bool,
}

impl ApiConfig {
    /// Defaults with `authenticator` and the permission authorizer.
    pub fn new(authenticator: impl Authenticator) -> Self {
        ApiConfig {
            prefix: "/tasker".to_owned(),
            authenticator: Arc::new(authenticator),
            authorizer: Arc::new(PermissionAuthorizer),
            limits: ApiLimits::default(),
            analysis: AnalysisConfig::default(),
            dashboard: cfg!(feature = "dashboard"),
        }
    }
}

struct Api<S: Store> {
    tasker: Tasker<S>,
    config: ApiConfig,
    gate: Arc<guard::Gate>,
    #[cfg(feature = "graphql")]
    schema: graphql::TaskerSchema,
    #[cfg(feature = "dashboard")]
    sessions: dashboard::Sessions,
}

type Shared<S> = State<Arc<Api<S>>>;

/// The API as an axum router, to serve (with [`serve`], which adds
/// connection limits) or to nest in your own app.
///
/// Every route passes the gate described in [`ApiLimits`]: header limits,
/// authentication from the headers, the operation's permission from
/// [`OPERATIONS`], the body under a size and time limit, a bounded number of
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
        #[cfg(feature = "dashboard")]
        sessions: dashboard::Sessions::new(),
    });
    let mut routes = Router::new();
    for (path, access, handler) in handlers::<S>() {
        routes = routes.route(path, guarded(&api, access, handler));
    }
    #[cfg(feature = "dashboard")]
    if api.config.dashboard {
        // `{prefix}/dashboard/` is where people type; the overview is at
        // `{prefix}/dashboard`.
        let overview = format!("{prefix}{}", dashboard::PATH);
        routes = routes.nest(dashboard::PATH, dashboard::routes(&api)).route(
            &format!("{}/", dashboard::PATH),
            axum::routing::get(
                move || async move { axum::response::Redirect::permanent(&overview) },
            ),
        );
    }
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
    access: Access,
    handler: MethodRouter<Arc<Api<S>>>,
) -> MethodRouter<Arc<Api<S>>> {
    handler.route_layer(axum::middleware::from_fn_with_state(
        (Arc::clone(&api.gate), access),
        guard::gate,
    ))
}

/// A handler on its path, with the access its operation allows.
type Served<S> = (&'static str, Access, MethodRouter<Arc<Api<S>>>);

/// The REST handler of each operation that has a route: path, method and
/// access come from the operation.
fn handlers<S: Store>() -> Vec<Served<S>> {
    use operations as op;
    #[cfg_attr(not(feature = "graphql"), allow(unused_mut))]
    let mut list = vec![
        serve_as(&op::LIVE, health::live),
        serve_as(&op::READY, health::ready::<S>),
        serve_as(&op::STATUS, health::status::<S>),
        serve_as(&op::METRICS, metrics::endpoint::<S>),
        serve_as(&op::LIST_TASKS, tasks::list_tasks::<S>),
        serve_as(&op::CREATE_TASK, tasks::create_task::<S>),
        serve_as(&op::SHOW_TASK, tasks::show_task::<S>),
        serve_as(&op::CANCEL_TASK, tasks::cancel_task::<S>),
        serve_as(&op::RETRY_TASK, tasks::retry_task::<S>),
        serve_as(&op::RESOLVE_TASK, tasks::resolve_task::<S>),
        serve_as(&op::TASK_DIAGRAM, tasks::task_diagram::<S>),
        serve_as(&op::TASK_ANALYSIS, tasks::task_analysis::<S>),
        serve_as(&op::SHOW_STEP, steps::show_step::<S>),
        serve_as(&op::RETRY_STEP, steps::retry_step::<S>),
        serve_as(&op::RESOLVE_STEP, steps::resolve_step::<S>),
        serve_as(&op::CANCEL_STEP, steps::cancel_step::<S>),
        serve_as(&op::LIST_HANDLERS, handlers::list_handlers::<S>),
        serve_as(&op::SHOW_HANDLER, handlers::show_handler::<S>),
        serve_as(&op::HANDLER_DIAGRAM, handlers::handler_diagram::<S>),
        serve_as(&op::OPENAPI, openapi::endpoint::<S>),
    ];
    #[cfg(feature = "graphql")]
    list.push(serve_as(&op::GRAPHQL, graphql::request::<S>));
    list
}

/// `handler` on the method and path of `operation`'s route.
fn serve_as<S: Store, H: axum::handler::Handler<T, Arc<Api<S>>>, T: 'static>(
    operation: &'static Operation,
    handler: H,
) -> Served<S> {
    let rest = operation
        .rest
        .expect("a REST handler serves an operation with a route");
    let method = match rest.method {
        "GET" => axum::routing::MethodFilter::GET,
        "POST" => axum::routing::MethodFilter::POST,
        other => unreachable!("operations use GET or POST, not {other}"),
    };
    (
        rest.path,
        operation.access,
        axum::routing::on(method, handler),
    )
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

/// A query string, or a 400 in the API's error envelope (not axum's
/// plain-text rejection) naming what is wrong, e.g. a repeated parameter.
fn query<T>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|q| q.0)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))
}

/// Refuses (403) unless `who` may use `operation`'s permission on the
/// handler `namespace/name` (and its task `task_id`).
fn allow_on<S: Store>(
    api: &Api<S>,
    who: &Principal,
    operation: &Operation,
    (namespace, name): (&str, &str),
    task_id: Option<crate::TaskId>,
) -> Result<(), ApiError> {
    if may_on(api, who, operation, (namespace, name), task_id) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "`{}` lacks the permission `{}` for handler {namespace}/{name}",
            who.subject,
            operation.permission().unwrap_or_default()
        ),
    ))
}

/// Whether `who` may use `operation`'s permission on the handler
/// `namespace/name` (and its task `task_id`).
fn may_on<S: Store>(
    api: &Api<S>,
    who: &Principal,
    operation: &Operation,
    (namespace, name): (&str, &str),
    task_id: Option<crate::TaskId>,
) -> bool {
    let Some(permission) = operation.permission() else {
        return true;
    };
    let resource = Resource::Handler {
        namespace,
        name,
        task_id,
    };
    api.config
        .authorizer
        .authorize_on(who, permission, &resource)
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
