//! [`AnyStore`]: PostgreSQL or SQLite, chosen by URL.

use std::time::Duration;

use serde_json::Value;
use tasker::config::DatabaseSettings;
use tasker::store::{
    Capabilities, Checkpoint, ClaimRequest, ClaimedStep, Completed, Completion, Created,
    HandlerRecord, MigrationStatus, NewTask, OperatorAction, Store, StoreError, TaskFilter,
    TaskRecord, Transition, TransitionWindow, UnfinishedHandler,
};
use tasker::store::{DeadLetter, DeadLetterFilter, PurgeFilter, StepTransaction};
use tasker::{StepId, TaskId, TaskState};

#[cfg(feature = "postgres")]
use crate::PgStore;
#[cfg(feature = "sqlite")]
use crate::SqliteStore;

/// Whichever store a URL names; what [`connect`] returns. Its variants are
/// the backends compiled in (features `postgres`, `sqlite`).
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(PgStore),
    /// Embedded SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
}

/// The backend a URL names.
enum Target<'a> {
    Postgres,
    Sqlite(#[cfg_attr(not(feature = "sqlite"), allow(dead_code))] &'a str),
}

fn target(url: &str) -> Result<Target<'_>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres);
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.contains("://") || path.is_empty() {
        return Err(StoreError::Unavailable(format!(
            "unsupported database URL {:?}: use postgres://... or a SQLite file path",
            crate::redact_url(url)
        )));
    }
    Ok(Target::Sqlite(path))
}

/// The error for a URL whose backend this build leaves out.
#[allow(dead_code)] // unused when both backends are compiled in
fn not_compiled(backend: &str, feature: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "this binary was built without {backend} support: rebuild with the `{feature}` feature \
         of tasker-diesel (or of the crate that re-exports it, e.g. tasker-cli)"
    ))
}

/// Opens the store a URL names: `postgres://` / `postgresql://` for
/// PostgreSQL; `sqlite://path`, `sqlite:path` or a plain file path for
/// SQLite (the file is created if missing).
pub async fn connect(url: &str) -> Result<AnyStore, StoreError> {
    connect_configured(url, &DatabaseSettings::default()).await
}

/// Opens the store a URL names for reading: a SQLite file must exist and is
/// opened [read-only](SqliteStore::open_read_only) beside a running worker;
/// PostgreSQL is connected as by [`connect`] (the caller only reads).
/// Nothing is created.
pub async fn connect_read_only(url: &str) -> Result<AnyStore, StoreError> {
    connect_read_only_configured(url, &DatabaseSettings::default()).await
}

/// [`connect`] with the `database:` section of a configuration: its pool
/// size, schema and commit mode apply to PostgreSQL (SQLite has one
/// connection and no schemas; they are not used there). Its `url` is not
/// read here: pass the URL you chose (flag, variable or file).
pub async fn connect_configured(
    url: &str,
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))] settings: &DatabaseSettings,
) -> Result<AnyStore, StoreError> {
    match target(url)? {
        #[cfg(feature = "postgres")]
        Target::Postgres => Ok(AnyStore::Postgres(
            PgStore::connect_with(url, pg_options(settings)).await?,
        )),
        #[cfg(not(feature = "postgres"))]
        Target::Postgres => Err(not_compiled("PostgreSQL", "postgres")),
        #[cfg(feature = "sqlite")]
        Target::Sqlite(path) => Ok(AnyStore::Sqlite(SqliteStore::open(path).await?)),
        #[cfg(not(feature = "sqlite"))]
        Target::Sqlite(_) => Err(not_compiled("SQLite", "sqlite")),
    }
}

/// [`connect_read_only`] with the `database:` section of a configuration.
pub async fn connect_read_only_configured(
    url: &str,
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))] settings: &DatabaseSettings,
) -> Result<AnyStore, StoreError> {
    match target(url)? {
        #[cfg(feature = "postgres")]
        Target::Postgres => Ok(AnyStore::Postgres(
            PgStore::connect_with(url, pg_options(settings)).await?,
        )),
        #[cfg(not(feature = "postgres"))]
        Target::Postgres => Err(not_compiled("PostgreSQL", "postgres")),
        #[cfg(feature = "sqlite")]
        Target::Sqlite(path) => Ok(AnyStore::Sqlite(SqliteStore::open_read_only(path).await?)),
        #[cfg(not(feature = "sqlite"))]
        Target::Sqlite(_) => Err(not_compiled("SQLite", "sqlite")),
    }
}

#[cfg(feature = "postgres")]
fn pg_options(settings: &DatabaseSettings) -> crate::PgOptions {
    let mut options = crate::PgOptions::default();
    if let Some(schema) = &settings.schema {
        options.schema.clone_from(schema);
    }
    if let Some(size) = settings.pool_size {
        options.pool_size = size;
    }
    if let Some(sync) = settings.synchronous_commit {
        options.synchronous_commit = sync;
    }
    options
}

impl AnyStore {
    /// Where the data lives, for people: `PostgreSQL (schema tasker)` or
    /// `SQLite file tasker.sqlite`. Never shows a password.
    pub fn describe(&self) -> String {
        match self {
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(pg) => format!("PostgreSQL (schema {})", pg.schema()),
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(sqlite) => format!("SQLite file {}", sqlite.path().display()),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($store) => $call,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($store) => $call,
        }
    };
}

impl Store for AnyStore {
    fn capabilities(&self) -> Capabilities {
        delegate!(self, s => s.capabilities())
    }

    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        delegate!(self, s => s.migrate().await)
    }

    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        delegate!(self, s => s.migration_status().await)
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

    async fn expire_deadlines(
        &self,
        error: &tasker::StepError,
        actor: &str,
        limit: u32,
    ) -> Result<Vec<tasker::store::ExpiredTask>, StoreError> {
        delegate!(self, s => s.expire_deadlines(error, actor, limit).await)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        delegate!(self, s => s.wait_for_work(timeout).await)
    }

    async fn operator_action(&self, action: OperatorAction, actor: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.operator_action(action, actor).await)
    }

    async fn begin_step_transaction(
        &self,
        step_id: StepId,
        attempt: u32,
    ) -> Result<Box<dyn StepTransaction>, StoreError> {
        delegate!(self, s => s.begin_step_transaction(step_id, attempt).await)
    }

    async fn complete_in_transaction(
        &self,
        transaction: Box<dyn StepTransaction>,
        completion: &Completion,
    ) -> Result<Completed, StoreError> {
        delegate!(self, s => s.complete_in_transaction(transaction, completion).await)
    }

    async fn purge_tasks(&self, filter: &PurgeFilter) -> Result<u64, StoreError> {
        delegate!(self, s => s.purge_tasks(filter).await)
    }

    async fn count_purgeable(&self, filter: &PurgeFilter, cap: u64) -> Result<u64, StoreError> {
        delegate!(self, s => s.count_purgeable(filter, cap).await)
    }

    async fn dead_letters(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>, StoreError> {
        delegate!(self, s => s.dead_letters(filter).await)
    }

    async fn task_view(
        &self,
        task_id: TaskId,
        items: tasker::store::ItemWindow,
    ) -> Result<TaskRecord, StoreError> {
        delegate!(self, s => s.task_view(task_id, items).await)
    }

    async fn step(
        &self,
        step_id: StepId,
    ) -> Result<(TaskId, tasker::store::StepRecord), StoreError> {
        delegate!(self, s => s.step(step_id).await)
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError> {
        delegate!(self, s => s.tasks(filter).await)
    }

    async fn transitions_window(
        &self,
        task_id: TaskId,
        window: TransitionWindow,
    ) -> Result<Vec<Transition>, StoreError> {
        delegate!(self, s => s.transitions_window(task_id, window).await)
    }

    async fn task_of_step(&self, step_id: StepId) -> Result<TaskId, StoreError> {
        delegate!(self, s => s.task_of_step(step_id).await)
    }

    async fn handler_of_task(&self, task_id: TaskId) -> Result<(String, String), StoreError> {
        delegate!(self, s => s.handler_of_task(task_id).await)
    }

    async fn save_checkpoint(
        &self,
        step_id: StepId,
        attempt: u32,
        value: &Value,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.save_checkpoint(step_id, attempt, value).await)
    }

    async fn checkpoint(&self, step_id: StepId) -> Result<Option<Checkpoint>, StoreError> {
        delegate!(self, s => s.checkpoint(step_id).await)
    }

    async fn ready_steps(&self) -> Result<i64, StoreError> {
        delegate!(self, s => s.ready_steps().await)
    }

    async fn activity(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<tasker::store::Activity, StoreError> {
        delegate!(self, s => s.activity(since).await)
    }

    async fn task_counts_at_a_glance(&self) -> Result<Vec<tasker::store::StateCount>, StoreError> {
        delegate!(self, s => s.task_counts_at_a_glance().await)
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
