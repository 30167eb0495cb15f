//! Who calls one GraphQL request: the permission guard of every field, the
//! resource checks of a handler's operations, and the request's row budget.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions};

use super::Backend;
use crate::api::operations::Operation;
use crate::api::{ApiError, Authorizer, Principal, Resource};
use crate::ids::StepId;
use crate::TaskId;

/// The caller of one GraphQL request, and what it has used of its row
/// budget.
pub(super) struct Caller {
    pub(super) principal: Principal,
    pub(super) authorizer: Arc<dyn Authorizer>,
    pub(super) rows_left: std::sync::atomic::AtomicUsize,
    pub(super) max_rows: usize,
}

impl Caller {
    /// Whether the caller may use `operation` on the handler
    /// `namespace/name` (and its task `task_id`).
    pub(super) fn may_on(
        &self,
        operation: &Operation,
        (namespace, name): (&str, &str),
        task_id: Option<TaskId>,
    ) -> bool {
        let permission = operation.permission().unwrap_or_default();
        let resource = Resource::Handler {
            namespace,
            name,
            task_id,
        };
        self.authorizer
            .authorize_on(&self.principal, permission, &resource)
    }

    /// [`may_on`](Self::may_on), or a `FORBIDDEN` error.
    pub(super) fn allowed_on(
        &self,
        operation: &Operation,
        handler: (&str, &str),
        task_id: Option<TaskId>,
    ) -> async_graphql::Result<()> {
        if self.may_on(operation, handler, task_id) {
            return Ok(());
        }
        Err(async_graphql::Error::new(format!(
            "`{}` lacks the permission `{}` for handler {}/{}",
            self.principal.subject,
            operation.permission().unwrap_or_default(),
            handler.0,
            handler.1
        ))
        .extend_with(|_, e| e.set("code", "FORBIDDEN")))
    }

    /// [`allowed_on`](Self::allowed_on) task `id`.
    pub(super) async fn allowed_on_task(
        &self,
        backend: &dyn Backend,
        operation: &Operation,
        id: TaskId,
    ) -> async_graphql::Result<()> {
        let (namespace, name) = backend.handler_of_task(id).await.map_err(gql_error)?;
        self.allowed_on(operation, (&namespace, &name), Some(id))
    }

    /// [`allowed_on`](Self::allowed_on) step `id`'s task.
    pub(super) async fn allowed_on_step(
        &self,
        backend: &dyn Backend,
        operation: &Operation,
        id: StepId,
    ) -> async_graphql::Result<()> {
        let task_id = backend.task_of_step(id).await.map_err(gql_error)?;
        self.allowed_on_task(backend, operation, task_id).await
    }

    /// Takes `rows` from the request's budget, or refuses.
    pub(super) fn take_rows(&self, rows: usize) -> async_graphql::Result<()> {
        use std::sync::atomic::Ordering;
        self.rows_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(rows)
            })
            .map(drop)
            .map_err(|_| {
                async_graphql::Error::new(format!(
                    "this request asks for more than {} rows in all (a task's fan-out \
                     items count as rows); ask for fewer (limit/offset, itemsLimit) or split it",
                    self.max_rows
                ))
                .extend_with(|_, e| e.set("code", "TOO_MANY_ROWS"))
            })
    }
}

/// The backend, if the caller holds the permission of `operation`.
pub(super) fn guard<'a>(
    ctx: &Context<'a>,
    operation: &Operation,
) -> async_graphql::Result<(&'a dyn Backend, &'a Caller)> {
    let caller = ctx.data::<Caller>()?;
    let permission = operation.permission().unwrap_or_default();
    // As at the REST gate: a handler's operation checks its handler once it
    // knows it ([`Caller::allowed_on`]).
    let allowed = if crate::api::operations::handler_scoped(permission) {
        caller.authorizer.authorize(&caller.principal, permission)
    } else {
        caller
            .authorizer
            .authorize_on(&caller.principal, permission, &Resource::Global)
    };
    if !allowed {
        return Err(async_graphql::Error::new(format!(
            "`{}` lacks the permission `{permission}`",
            caller.principal.subject
        ))
        .extend_with(|_, e| e.set("code", "FORBIDDEN")));
    }
    let backend = ctx.data::<Arc<dyn Backend>>()?;
    Ok((backend.as_ref(), caller))
}

pub(super) fn gql_error(e: crate::Error) -> async_graphql::Error {
    let api = ApiError::from(e);
    async_graphql::Error::new(api.message)
        .extend_with(|_, ext| ext.set("code", api.code.to_uppercase()))
}
