//! The API's one table of operations. The REST router, the GraphQL guards
//! and the OpenAPI document are all built from [`OPERATIONS`], so an
//! operation's permission is written once.

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without waiting for a permit: the liveness probe, which
    /// must answer even when the API is saturated.
    Probe,
    /// Anyone (readiness, the OpenAPI document).
    Open,
    /// Any authenticated caller; the handler checks permissions itself
    /// (the GraphQL endpoint, per field).
    Authenticated,
    /// Callers holding this `resource:action` permission.
    Permission(&'static str),
}

/// Where an operation is served over REST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rest {
    /// HTTP method (`GET` or `POST`).
    pub method: &'static str,
    /// Path below the prefix, with `{param}`s.
    pub path: &'static str,
}

/// One operation of the API: its permission, and where it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// A stable identifier (the OpenAPI `operationId`).
    pub id: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Its REST route, if it has one.
    pub rest: Option<Rest>,
    /// Its GraphQL field or mutation, if it has one.
    pub graphql: Option<&'static str>,
    /// What it does.
    pub summary: &'static str,
}

/// The permissions of operations that touch one handler's tasks or
/// definition, by their resource: such an operation checks the handler it
/// touches with [`Authorizer::authorize_on`](super::Authorizer::authorize_on).
const HANDLER_RESOURCES: &[&str] = &[
    "tasker.task:",
    "tasker.workflow_step:",
    "tasker.handler:",
    "tasker.analytics:",
];

/// Whether `permission` is one of a handler's (see [`HANDLER_RESOURCES`]).
pub(crate) fn handler_scoped(permission: &str) -> bool {
    HANDLER_RESOURCES.iter().any(|r| permission.starts_with(r))
}

impl Operation {
    /// The permission it needs, if any.
    pub const fn permission(&self) -> Option<&'static str> {
        match self.access {
            Access::Permission(permission) => Some(permission),
            _ => None,
        }
    }
}

/// The operation with this id.
///
/// ```
/// use tasker::api::{operation, Access};
///
/// let show = operation("show_task").unwrap();
/// assert_eq!(show.access, Access::Permission("tasker.task:show"));
/// assert_eq!(show.rest.unwrap().path, "/tasks/{task_id}");
/// assert_eq!(show.graphql, Some("task"));
/// ```
pub fn operation(id: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.id == id)
}

macro_rules! operations {
    ($($konst:ident = $id:literal, $access:expr, $rest:expr, $graphql:expr, $summary:literal;)*) => {
        $(
            #[doc = $summary]
            pub(crate) const $konst: Operation = Operation {
                id: $id,
                access: $access,
                rest: $rest,
                graphql: $graphql,
                summary: $summary,
            };
        )*

        /// Every operation of the API, REST and GraphQL.
        pub const OPERATIONS: &[Operation] = &[$($konst),*];
    };
}

const fn get(path: &'static str) -> Option<Rest> {
    Some(Rest {
        method: "GET",
        path,
    })
}

const fn post(path: &'static str) -> Option<Rest> {
    Some(Rest {
        method: "POST",
        path,
    })
}

use Access::{Authenticated, Open, Permission, Probe};

operations! {
    LIVE = "health_live", Probe, get("/health/live"), None,
        "Liveness: the process answers.";
    READY = "health_ready", Open, get("/health/ready"), None,
        "Readiness: the database answers and its migrations are current.";
    STATUS = "health_status", Permission("tasker.health_status:index"), get("/health/status"), None,
        "Task counts by state, ready steps, the coordination mode and set-up warnings.";
    METRICS = "metrics", Permission("tasker.metrics:index"), get("/metrics"), None,
        "Prometheus metrics.";
    LIST_TASKS = "list_tasks", Permission("tasker.task:index"), get("/tasks"), Some("tasks"),
        "List tasks (filters: namespace, name, version, state, annotation_type; limit, offset).";
    CREATE_TASK = "create_task", Permission("tasker.task:create"), post("/tasks"), Some("createTask"),
        "Create a task from a JSON request.";
    SHOW_TASK = "show_task", Permission("tasker.task:show"), get("/tasks/{task_id}"), Some("task"),
        "A task with its steps (of each fan-out's items, a window: items_offset, items_limit).";
    CANCEL_TASK = "cancel_task", Permission("tasker.task:cancel"), post("/tasks/{task_id}/cancel"), Some("cancelTask"),
        "Cancel a task.";
    RETRY_TASK = "retry_task", Permission("tasker.task:retry"), post("/tasks/{task_id}/retry"), Some("retryTask"),
        "Retry a task in error.";
    RESOLVE_TASK = "resolve_task", Permission("tasker.task:resolve"), post("/tasks/{task_id}/resolve"), Some("resolveTask"),
        "Mark a task done by hand.";
    TASK_DIAGRAM = "task_diagram", Permission("tasker.task:show"), get("/tasks/{task_id}/diagram"), None,
        "The task's graph with steps coloured by state (format=mermaid|dot).";
    TASK_ANALYSIS = "task_analysis", Permission("tasker.analytics:index"), get("/tasks/{task_id}/analysis"), None,
        "Critical path, levels and bottlenecks of a task.";
    SHOW_STEP = "show_step", Permission("tasker.workflow_step:show"), get("/steps/{step_id}"), Some("step"),
        "One step of a task.";
    RETRY_STEP = "retry_step", Permission("tasker.workflow_step:retry"), post("/steps/{step_id}/retry"), Some("retryStep"),
        "Retry a step in error.";
    RESOLVE_STEP = "resolve_step", Permission("tasker.workflow_step:resolve"), post("/steps/{step_id}/resolve"), Some("resolveStep"),
        "Resolve a step by hand (body: {\"output\": ...}).";
    CANCEL_STEP = "cancel_step", Permission("tasker.workflow_step:cancel"), post("/steps/{step_id}/cancel"), Some("cancelStep"),
        "Cancel a step and the unfinished steps after it.";
    LIST_HANDLERS = "list_handlers", Permission("tasker.handler:index"), get("/handlers"), Some("handlers"),
        "Namespaces, handlers and versions.";
    SHOW_HANDLER = "show_handler", Permission("tasker.handler:show"), get("/handlers/{namespace}/{name}"), None,
        "One handler with its step graph (version=...).";
    HANDLER_DIAGRAM = "handler_diagram", Permission("tasker.handler:show"), get("/handlers/{namespace}/{name}/diagram"), None,
        "A handler's graph (format=mermaid|dot, version=...).";
    OPENAPI = "openapi", Open, get("/openapi.json"), None,
        "This API's OpenAPI document.";
    GRAPHQL = "graphql", Authenticated, post("/graphql"), None,
        "GraphQL (feature `graphql`) over the operations that name a GraphQL field; each field needs its operation's permission.";
    INTROSPECT = "graphql_introspect", Permission("tasker.graphql:introspect"), None, Some("__schema"),
        "Introspect the GraphQL schema (`__schema`, `__type`); without it those fields resolve to null.";
}

/// The permission that lets a caller introspect the GraphQL schema
/// (`__schema`, `__type`). Without it, those fields resolve to `null`.
pub const INTROSPECT_PERMISSION: &str = permission_of(&INTROSPECT);

/// The permission under which a task's full record is returned by a
/// create call that finds an existing task (identity key): without it the
/// caller learns only the id.
pub const SHOW_TASK_PERMISSION: &str = permission_of(&SHOW_TASK);

const fn permission_of(operation: &Operation) -> &'static str {
    match operation.permission() {
        Some(permission) => permission,
        None => panic!("the operation has no permission"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the probes and the document describing the API are open; the
    /// GraphQL endpoint checks each field's operation.
    #[test]
    fn every_operation_needs_a_permission_unless_listed_as_open() {
        for op in OPERATIONS {
            match op.access {
                Access::Permission(p) => {
                    let (resource, action) = p
                        .strip_prefix("tasker.")
                        .and_then(|p| p.split_once(':'))
                        .unwrap_or_else(|| {
                            panic!("{}: `{p}` is not tasker.resource:action", op.id)
                        });
                    assert!(!resource.is_empty() && !action.is_empty(), "{}: {p}", op.id);
                }
                Access::Probe | Access::Open => assert!(
                    ["health_live", "health_ready", "openapi"].contains(&op.id),
                    "{} is open to anyone: give it a permission, or list it here on purpose",
                    op.id
                ),
                Access::Authenticated => assert_eq!(op.id, "graphql"),
            }
            if op.graphql.is_some() {
                assert!(
                    op.permission().is_some(),
                    "GraphQL field of {} lacks a permission",
                    op.id
                );
            }
        }
    }

    #[test]
    fn ids_routes_and_fields_are_unique() {
        let mut ids: Vec<_> = OPERATIONS.iter().map(|op| op.id).collect();
        let mut routes: Vec<_> = OPERATIONS
            .iter()
            .filter_map(|op| op.rest)
            .map(|r| (r.method, r.path))
            .collect();
        let mut fields: Vec<_> = OPERATIONS.iter().filter_map(|op| op.graphql).collect();
        for list in [&mut ids, &mut fields] {
            let n = list.len();
            list.sort();
            list.dedup();
            assert_eq!(list.len(), n, "duplicates in {list:?}");
        }
        let n = routes.len();
        routes.sort();
        routes.dedup();
        assert_eq!(routes.len(), n);
        assert_eq!(operation("show_task"), Some(&SHOW_TASK));
    }
}
