//! GraphQL (feature `graphql`) over the same operations as the REST API,
//! each field and mutation guarded by the permission of its operation in
//! [`OPERATIONS`](super::OPERATIONS).
//!
//! `POST {prefix}/graphql` with `{"query": ..., "variables": ...}`.
//! Unauthenticated requests get 401; a response whose every error is a
//! missing permission gets 403; otherwise 200 with `data` and `errors`,
//! each error carrying `extensions.code`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, ErrorExtensions, Json, Object, Schema};
use serde_json::Value;

use super::operations::{self as op, INTROSPECT_PERMISSION};
use super::tasks::{page_size, ListQuery};
use super::{ApiError, Authorizer, Principal, Resource, Shared};
use crate::ids::StepId;
use crate::store::{ItemWindow, StepRecord, Store, TaskFilter, TaskRecord};
use crate::{Registry, TaskId, TaskRequest, Tasker};

mod caller;
mod objects;

use caller::{gql_error, guard, Caller};
use objects::{step, task, CreatedTask, GqlHandler, GqlStep, GqlTask, TaskInput};

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = crate::Result<T>> + Send + 'a>>;

/// The engine operations GraphQL needs, without the store type.
trait Backend: Send + Sync {
    fn task(&self, id: TaskId, items: ItemWindow) -> BoxFut<'_, TaskRecord>;
    fn tasks(&self, filter: TaskFilter) -> BoxFut<'_, Vec<TaskRecord>>;
    fn step(&self, id: StepId) -> BoxFut<'_, (TaskId, StepRecord)>;
    fn task_of_step(&self, id: StepId) -> BoxFut<'_, TaskId>;
    fn handler_of_task(&self, id: TaskId) -> BoxFut<'_, (String, String)>;
    fn create(&self, request: TaskRequest) -> BoxFut<'_, crate::store::Created>;
    fn cancel(&self, id: TaskId, actor: String) -> BoxFut<'_, ()>;
    fn retry(&self, id: TaskId, actor: String) -> BoxFut<'_, ()>;
    fn resolve(&self, id: TaskId, actor: String) -> BoxFut<'_, ()>;
    fn retry_step(&self, id: StepId, actor: String) -> BoxFut<'_, ()>;
    fn cancel_step(&self, id: StepId, actor: String) -> BoxFut<'_, ()>;
    fn resolve_step(&self, id: StepId, output: Value, actor: String) -> BoxFut<'_, ()>;
    fn registry(&self) -> &Registry;
}

impl<S: Store> Backend for Tasker<S> {
    fn task(&self, id: TaskId, items: ItemWindow) -> BoxFut<'_, TaskRecord> {
        Box::pin(Tasker::task_view(self, id, items))
    }
    fn tasks(&self, filter: TaskFilter) -> BoxFut<'_, Vec<TaskRecord>> {
        Box::pin(async move { Tasker::tasks(self, &filter).await })
    }
    fn step(&self, id: StepId) -> BoxFut<'_, (TaskId, StepRecord)> {
        Box::pin(Tasker::step(self, id))
    }
    fn task_of_step(&self, id: StepId) -> BoxFut<'_, TaskId> {
        Box::pin(async move { Ok(self.store().task_of_step(id).await?) })
    }
    fn handler_of_task(&self, id: TaskId) -> BoxFut<'_, (String, String)> {
        Box::pin(async move { Ok(self.store().handler_of_task(id).await?) })
    }
    fn create(&self, request: TaskRequest) -> BoxFut<'_, crate::store::Created> {
        Box::pin(async move { self.create_task(request).await })
    }
    fn cancel(&self, id: TaskId, actor: String) -> BoxFut<'_, ()> {
        Box::pin(async move { self.cancel_task(id, &actor).await })
    }
    fn retry(&self, id: TaskId, actor: String) -> BoxFut<'_, ()> {
        Box::pin(async move { self.retry_task(id, &actor).await })
    }
    fn retry_step(&self, id: StepId, actor: String) -> BoxFut<'_, ()> {
        Box::pin(async move { Tasker::retry_step(self, id, &actor).await })
    }
    fn resolve(&self, id: TaskId, actor: String) -> BoxFut<'_, ()> {
        Box::pin(async move { self.resolve_task(id, &actor).await })
    }
    fn resolve_step(&self, id: StepId, output: Value, actor: String) -> BoxFut<'_, ()> {
        Box::pin(async move { Tasker::resolve_step(self, id, output, &actor).await })
    }
    fn cancel_step(&self, id: StepId, actor: String) -> BoxFut<'_, ()> {
        Box::pin(async move { Tasker::cancel_step(self, id, &actor).await })
    }
    fn registry(&self) -> &Registry {
        Tasker::registry(self)
    }
}

/// The cost of a list field: its items times what is asked of each.
fn list_cost(limit: Option<u32>, child_complexity: usize) -> usize {
    let items = page_size(limit) as usize;
    items.saturating_mul(child_complexity.max(1))
}

/// Queries.
pub(crate) struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// Tasks, newest first (`tasker.task:index`). `limit` is 1-500
    /// (default 50); the query's cost counts each task.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "list_cost(limit, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        name: Option<String>,
        version: Option<String>,
        state: Option<String>,
        annotation_type: Option<String>,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> async_graphql::Result<Vec<GqlTask>> {
        let (backend, caller) = guard(ctx, &op::LIST_TASKS)?;
        caller.take_rows(page_size(limit) as usize)?;
        let filter = ListQuery {
            namespace,
            name,
            version,
            state,
            annotation_type,
            limit,
            offset,
        }
        .into_filter()
        .map_err(|e| {
            async_graphql::Error::new(e).extend_with(|_, x| x.set("code", "INVALID_REQUEST"))
        })?;
        let tasks = backend.tasks(filter).await.map_err(gql_error)?;
        // Only the tasks of handlers the caller may list.
        Ok(tasks
            .into_iter()
            .filter(|t| caller.may_on(&op::LIST_TASKS, (&t.namespace, &t.name), Some(t.task_id)))
            .map(task)
            .collect())
    }

    /// One task with its steps (`tasker.task:show`) and, of each fan-out
    /// step's items, `itemsLimit` (default 100, at most 1000) from
    /// `itemsOffset`; each item counts as a row.
    async fn task(
        &self,
        ctx: &Context<'_>,
        id: i64,
        items_offset: Option<u32>,
        items_limit: Option<u32>,
    ) -> async_graphql::Result<GqlTask> {
        let (backend, caller) = guard(ctx, &op::SHOW_TASK)?;
        caller.take_rows(1)?;
        let window = super::tasks::items_window(items_offset, items_limit);
        let record = backend.task(TaskId(id), window).await.map_err(gql_error)?;
        caller.allowed_on(
            &op::SHOW_TASK,
            (&record.namespace, &record.name),
            Some(record.task_id),
        )?;
        caller.take_rows(
            record
                .steps
                .iter()
                .filter(|s| s.item_index.is_some())
                .count(),
        )?;
        Ok(task(record))
    }

    /// One step (`tasker.workflow_step:show`).
    async fn step(&self, ctx: &Context<'_>, id: i64) -> async_graphql::Result<GqlStep> {
        let (backend, caller) = guard(ctx, &op::SHOW_STEP)?;
        let (task_id, record) = backend.step(StepId(id)).await.map_err(gql_error)?;
        caller
            .allowed_on_task(backend, &op::SHOW_STEP, task_id)
            .await?;
        Ok(step(&record))
    }

    /// Every registered handler (`tasker.handler:index`).
    async fn handlers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlHandler>> {
        let (backend, caller) = guard(ctx, &op::LIST_HANDLERS)?;
        Ok(backend
            .registry()
            .handlers()
            .filter(|h| caller.may_on(&op::LIST_HANDLERS, (h.namespace(), h.name()), None))
            .map(|h| GqlHandler {
                namespace: h.namespace().to_owned(),
                name: h.name().to_owned(),
                version: h.version().to_string(),
                description: h.description().to_owned(),
                fingerprint: h.fingerprint().to_owned(),
                context_type: h.context_type().to_owned(),
                steps: h.steps().iter().map(|s| s.name().to_owned()).collect(),
                levels: h
                    .graph()
                    .levels()
                    .into_iter()
                    .map(|l| l.into_iter().map(str::to_owned).collect())
                    .collect(),
                critical_path: h
                    .graph()
                    .critical_path()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                mermaid: h.to_mermaid(),
                dependent_systems: h
                    .dependent_systems()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                metadata: Json(
                    h.metadata()
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
                        .collect::<serde_json::Map<_, _>>()
                        .into(),
                ),
            })
            .collect())
    }
}

/// Mutations.
pub(crate) struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a task (`tasker.task:create`). The initiator is the
    /// caller. With an identity key that exists, nothing is created and
    /// the existing task is returned only to callers who may see tasks.
    async fn create_task(
        &self,
        ctx: &Context<'_>,
        input: TaskInput,
    ) -> async_graphql::Result<CreatedTask> {
        let (backend, caller) = guard(ctx, &op::CREATE_TASK)?;
        let mut request = TaskRequest::new(
            input.namespace.unwrap_or_else(|| "default".to_owned()),
            input.name,
            input.context.0,
        )
        .initiator(caller.principal.subject.clone());
        if let Some(version) = input.version {
            request = request.with_version(version);
        }
        if let Some(key) = input.identity_key {
            request = request.identity_key(key);
        }
        let invalid = |e: String| {
            async_graphql::Error::new(e).extend_with(|_, x| x.set("code", "INVALID_REQUEST"))
        };
        if let Some(priority) = input.priority {
            request = request.priority(priority.parse().map_err(invalid)?);
        }
        if let Some(limit) = input.max_execution_time {
            let limit = crate::config::duration::parse(&limit)
                .map_err(|e| invalid(format!("`max_execution_time`: {e}")))?;
            request = request.max_execution_time(limit);
        }
        // A handler the registry does not know is refused by `create`.
        if let Ok(handler) =
            backend
                .registry()
                .find(request.namespace(), request.name(), request.version())
        {
            caller.allowed_on(
                &op::CREATE_TASK,
                (handler.namespace(), handler.name()),
                None,
            )?;
        }
        let created = backend.create(request).await.map_err(gql_error)?;
        let record = backend
            .task(created.task_id(), super::tasks::shown())
            .await
            .map_err(gql_error)?;
        let shown = caller.may_on(
            &op::SHOW_TASK,
            (&record.namespace, &record.name),
            Some(record.task_id),
        );
        let task = if shown { Some(task(record)) } else { None };
        Ok(CreatedTask {
            created: matches!(created, crate::store::Created::New(_)),
            task_id: created.task_id().0,
            task,
        })
    }

    /// Cancels a task (`tasker.task:cancel`).
    async fn cancel_task(&self, ctx: &Context<'_>, id: i64) -> async_graphql::Result<GqlTask> {
        let (backend, caller) = guard(ctx, &op::CANCEL_TASK)?;
        caller
            .allowed_on_task(backend, &op::CANCEL_TASK, TaskId(id))
            .await?;
        backend
            .cancel(TaskId(id), caller.principal.subject.clone())
            .await
            .map_err(gql_error)?;
        Ok(task(
            backend
                .task(TaskId(id), super::tasks::shown())
                .await
                .map_err(gql_error)?,
        ))
    }

    /// Retries a task in error (`tasker.task:retry`).
    async fn retry_task(&self, ctx: &Context<'_>, id: i64) -> async_graphql::Result<GqlTask> {
        let (backend, caller) = guard(ctx, &op::RETRY_TASK)?;
        caller
            .allowed_on_task(backend, &op::RETRY_TASK, TaskId(id))
            .await?;
        backend
            .retry(TaskId(id), caller.principal.subject.clone())
            .await
            .map_err(gql_error)?;
        Ok(task(
            backend
                .task(TaskId(id), super::tasks::shown())
                .await
                .map_err(gql_error)?,
        ))
    }

    /// Marks a task done by hand (`tasker.task:resolve`).
    async fn resolve_task(&self, ctx: &Context<'_>, id: i64) -> async_graphql::Result<GqlTask> {
        let (backend, caller) = guard(ctx, &op::RESOLVE_TASK)?;
        caller
            .allowed_on_task(backend, &op::RESOLVE_TASK, TaskId(id))
            .await?;
        backend
            .resolve(TaskId(id), caller.principal.subject.clone())
            .await
            .map_err(gql_error)?;
        Ok(task(
            backend
                .task(TaskId(id), super::tasks::shown())
                .await
                .map_err(gql_error)?,
        ))
    }

    /// Retries a step in error (`tasker.workflow_step:retry`).
    async fn retry_step(&self, ctx: &Context<'_>, id: i64) -> async_graphql::Result<bool> {
        let (backend, caller) = guard(ctx, &op::RETRY_STEP)?;
        caller
            .allowed_on_step(backend, &op::RETRY_STEP, StepId(id))
            .await?;
        backend
            .retry_step(StepId(id), caller.principal.subject.clone())
            .await
            .map_err(gql_error)?;
        Ok(true)
    }

    /// Cancels a step and the unfinished steps after it
    /// (`tasker.workflow_step:cancel`).
    async fn cancel_step(&self, ctx: &Context<'_>, id: i64) -> async_graphql::Result<bool> {
        let (backend, caller) = guard(ctx, &op::CANCEL_STEP)?;
        caller
            .allowed_on_step(backend, &op::CANCEL_STEP, StepId(id))
            .await?;
        backend
            .cancel_step(StepId(id), caller.principal.subject.clone())
            .await
            .map_err(gql_error)?;
        Ok(true)
    }

    /// Resolves a step by hand (`tasker.workflow_step:resolve`).
    async fn resolve_step(
        &self,
        ctx: &Context<'_>,
        id: i64,
        output: Option<Json<Value>>,
    ) -> async_graphql::Result<bool> {
        let (backend, caller) = guard(ctx, &op::RESOLVE_STEP)?;
        caller
            .allowed_on_step(backend, &op::RESOLVE_STEP, StepId(id))
            .await?;
        let output = output.map_or(Value::Null, |o| o.0);
        backend
            .resolve_step(StepId(id), output, caller.principal.subject.clone())
            .await
            .map_err(gql_error)?;
        Ok(true)
    }
}

/// The executable schema of one API.
pub(crate) type TaskerSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

pub(crate) fn schema<S: Store>(tasker: Tasker<S>, limits: &super::ApiLimits) -> TaskerSchema {
    let backend: Arc<dyn Backend> = Arc::new(tasker);
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .data(backend)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .finish()
}

/// The schema in SDL, for clients and docs.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .finish()
        .sdl()
}

/// Runs one GraphQL request for `principal`.
pub(crate) async fn execute(
    schema: &TaskerSchema,
    request: async_graphql::Request,
    principal: Principal,
    authorizer: Arc<dyn Authorizer>,
    max_rows: usize,
) -> async_graphql::Response {
    schema
        .execute(request.data(Caller {
            principal,
            authorizer,
            rows_left: std::sync::atomic::AtomicUsize::new(max_rows),
            max_rows,
        }))
        .await
}

/// `POST {prefix}/graphql`.
pub(super) async fn request<S: Store>(
    axum::extract::State(api): Shared<S>,
    axum::Extension(principal): axum::Extension<Principal>,
    raw: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    let raw = super::body(raw)?;
    let bad = |message: String| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{message}; send {{\"query\": \"...\", \"variables\": {{...}}}}"),
        )
    };
    let body: Value =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("malformed GraphQL request: {e}")))?;
    match body.get("query") {
        Some(Value::String(query)) if !query.trim().is_empty() => {}
        _ => return Err(bad("the body has no `query` string".to_owned())),
    }
    let mut request: async_graphql::Request =
        serde_json::from_value(body).map_err(|e| bad(format!("malformed GraphQL request: {e}")))?;
    if !api
        .config
        .authorizer
        .authorize_on(&principal, INTROSPECT_PERMISSION, &Resource::Global)
    {
        request = request.disable_introspection();
    }
    let response = execute(
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
        axum::http::StatusCode::FORBIDDEN
    } else {
        axum::http::StatusCode::OK
    };
    let response =
        over_http(
            serde_json::to_value(&response).map_err(|e| crate::Error::Serialize {
                what: "GraphQL response",
                source: e,
            })?,
        );
    Ok(axum::response::IntoResponse::into_response((
        status,
        axum::Json(response),
    )))
}

/// Shapes a response as the GraphQL-over-HTTP spec asks: a request error
/// (the document did not parse or validate, so nothing was executed) has
/// no `data` entry, and every error carries `extensions.code`:
/// `GRAPHQL_PARSE_FAILED` or `GRAPHQL_VALIDATION_FAILED` (which includes
/// the depth and complexity limits) for request errors; the resolvers set
/// `FORBIDDEN`, `TOO_MANY_ROWS`, `NOT_FOUND`, `CONFLICT`, `INVALID_REQUEST`,
/// `INVALID_PAYLOAD`, `INVALID_CONTEXT`, `UNKNOWN_HANDLER`,
/// `INTERNAL` (the REST error codes, upper case).
fn over_http(mut response: Value) -> Value {
    let Some(errors) = response.get_mut("errors").and_then(Value::as_array_mut) else {
        return response;
    };
    let mut request_error = !errors.is_empty();
    for error in errors.iter_mut() {
        let executed = error.get("path").is_some();
        request_error &= !executed;
        let has_code = error
            .pointer("/extensions/code")
            .is_some_and(Value::is_string);
        if !has_code {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let code = if executed {
                "INTERNAL"
            } else if message.contains("Parse error") || message.contains(" --> ") {
                "GRAPHQL_PARSE_FAILED"
            } else {
                "GRAPHQL_VALIDATION_FAILED"
            };
            let extensions = error.as_object_mut().map(|e| {
                e.entry("extensions")
                    .or_insert_with(|| serde_json::json!({}))
            });
            if let Some(Value::Object(extensions)) = extensions {
                extensions.insert("code".to_owned(), Value::from(code));
            }
        }
    }
    if request_error && response.get("data").is_some_and(Value::is_null) {
        if let Some(object) = response.as_object_mut() {
            object.remove("data");
        }
    }
    response
}
