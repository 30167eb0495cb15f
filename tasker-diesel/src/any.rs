//! [`AnyStore`]: PostgreSQL or SQLite, chosen by URL.

use std::time::Duration;

use tasker::store::{
    Capabilities, ClaimRequest, ClaimedStep, Completed, Completion, Created, HandlerRecord,
    NewTask, OperatorAction, Store, StoreError, TaskFilter, TaskRecord, Transition,
    UnfinishedHandler,
};
use tasker::{StepId, TaskId, TaskState};

use crate::{PgStore, SqliteStore};

/// Either store; what [`connect`] returns.
#[derive(Debug)]
pub enum AnyStore {
    /// PostgreSQL.
    Postgres(PgStore),
    /// Embedded SQLite.
    Sqlite(SqliteStore),
}

/// Opens the store a URL names: `postgres://` / `postgresql://` for
/// PostgreSQL; `sqlite://path`, `sqlite:path` or a plain file path for
/// SQLite.
pub async fn connect(url: &str) -> Result<AnyStore, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(AnyStore::Postgres(PgStore::connect(url).await?));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.contains("://") {
        return Err(StoreError::Unavailable(format!(
            "unsupported database URL {:?}: use postgres://... or a SQLite file path",
            crate::pg::redact(url)
        )));
    }
    Ok(AnyStore::Sqlite(SqliteStore::open(path).await?))
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Postgres($store) => $call,
            AnyStore::Sqlite($store) => $call,
        }
    };
}

impl Store for AnyStore {
    fn capabilities(&self) -> Capabilities {
        delegate!(self, s => s.capabilities())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        delegate!(self, s => s.migrate().await)
    }

    async fn migrations_current(&self) -> Result<bool, StoreError> {
        delegate!(self, s => s.migrations_current().await)
    }

    async fn register_handler(&self, handler: &HandlerRecord) -> Result<i64, StoreError> {
        delegate!(self, s => s.register_handler(handler).await)
    }

    async fn unfinished_handlers(&self) -> Result<Vec<UnfinishedHandler>, StoreError> {
        delegate!(self, s => s.unfinished_handlers().await)
    }

    async fn create_task(&self, task: NewTask) -> Result<Created, StoreError> {
        delegate!(self, s => s.create_task(task).await)
    }

    async fn create_tasks(&self, tasks: Vec<NewTask>) -> Result<Vec<Created>, StoreError> {
        delegate!(self, s => s.create_tasks(tasks).await)
    }

    async fn claim_steps(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedStep>, StoreError> {
        delegate!(self, s => s.claim_steps(request).await)
    }

    async fn renew_leases(
        &self,
        steps: &[(StepId, u32)],
        lease: Duration,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.renew_leases(steps, lease).await)
    }

    async fn complete_steps(
        &self,
        completions: &[Completion],
    ) -> Result<Vec<Completed>, StoreError> {
        delegate!(self, s => s.complete_steps(completions).await)
    }

    async fn recover_expired(&self, all_in_progress: bool) -> Result<u64, StoreError> {
        delegate!(self, s => s.recover_expired(all_in_progress).await)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        delegate!(self, s => s.wait_for_work(timeout).await)
    }

    async fn operator_action(&self, action: OperatorAction, actor: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.operator_action(action, actor).await)
    }

    async fn task(&self, task_id: TaskId) -> Result<TaskRecord, StoreError> {
        delegate!(self, s => s.task(task_id).await)
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError> {
        delegate!(self, s => s.tasks(filter).await)
    }

    async fn transitions(&self, task_id: TaskId) -> Result<Vec<Transition>, StoreError> {
        delegate!(self, s => s.transitions(task_id).await)
    }

    async fn task_of_step(&self, step_id: StepId) -> Result<TaskId, StoreError> {
        delegate!(self, s => s.task_of_step(step_id).await)
    }

    async fn ready_steps(&self) -> Result<i64, StoreError> {
        delegate!(self, s => s.ready_steps().await)
    }

    async fn task_counts(&self) -> Result<Vec<(TaskState, i64)>, StoreError> {
        delegate!(self, s => s.task_counts().await)
    }

    async fn warnings(&self) -> Result<Vec<String>, StoreError> {
        delegate!(self, s => s.warnings().await)
    }

    async fn housekeeping(&self) -> Result<(), StoreError> {
        delegate!(self, s => s.housekeeping().await)
    }
}
