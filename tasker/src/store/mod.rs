//! The persistence port: what the engine needs from a database, with no SQL.
//!
//! `tasker-diesel` implements [`Store`] for PostgreSQL and SQLite. Every
//! method is one atomic unit: a store either applies all of it or none.
//! Methods that change many rows take slices so a store can batch them into
//! one round trip.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub use crate::ids::StepId;
use crate::ids::TaskId;
use crate::priority::{HeadStart, Priority};
use crate::state::{StepState, TaskState};
use crate::step::StepError;
pub use crate::transaction::StepTransaction;
pub use activity::{
    Activity, ActivityMinute, StateCount, WorkerSeen, ESTIMATE_ABOVE_ROWS, MAX_WORKERS_SEEN,
};
pub use audit::{Transition, TransitionWindow};
pub use claims::{
    ClaimRequest, ClaimedStep, Completed, Completion, ExpiredTask, Outcome, DEADLINE_EXCEEDED,
};
pub use items::{ItemCounts, ItemWindow};
pub use retention::{DeadLetter, DeadLetterFilter, PurgeFilter};

mod activity;
mod audit;
mod claims;
mod items;
mod retention;

/// What a store can do; the engine picks its coordination mode from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Several worker processes, on several machines, may share the store.
    pub distributed: bool,
    /// Claims skip rows other workers have locked (`FOR UPDATE SKIP LOCKED`).
    pub skip_locked: bool,
    /// A step's own writes can share a transaction with its completion
    /// record ([`Store::begin_step_transaction`]).
    pub step_transactions: bool,
}

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// `task`, `step`, ...
        what: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// The change is not legal in the row's current state.
    #[error("{what} {id} is {state}; {rule}")]
    Conflict {
        /// `task` or `step`.
        what: &'static str,
        /// Its id.
        id: i64,
        /// Its state now (`complete`, `pending`, ...).
        state: String,
        /// What the change needs, e.g. "only a task in `error` can be
        /// retried".
        rule: String,
    },
    /// The database could not be opened, or is in use by another process.
    #[error("{0}")]
    Unavailable(String),
    /// The request itself is not valid (a filter out of range, a state that
    /// may not be purged); nothing was read or changed.
    #[error("{0}")]
    Invalid(String),
    /// Any other database failure.
    #[error("{message}")]
    Database {
        /// What was being done, and what failed.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A database failure with its cause.
    pub fn database(
        doing: impl std::fmt::Display,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Database {
            message: format!("{doing}: {source}"),
            source: Some(Box::new(source)),
        }
    }
}

/// A handler and its step graph, as the store records it.
#[derive(Debug, Clone)]
pub struct HandlerRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Graph fingerprint.
    pub fingerprint: String,
    /// Description.
    pub description: String,
    /// Step names, in declaration order.
    pub steps: Vec<String>,
}

/// Tasks that are not finished, grouped by the handler shape they were
/// created from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedHandler {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Graph fingerprint at creation.
    pub fingerprint: String,
    /// How many unfinished tasks.
    pub tasks: i64,
}

/// One step to create with a task.
#[derive(Debug, Clone)]
pub struct NewStep {
    /// Step name.
    pub name: String,
    /// Position in the handler's declaration order.
    pub index: u32,
    /// Indices (into the task's steps) of the steps this one depends on.
    pub parents: Vec<u32>,
    /// Attempts allowed (`retry_limit + 1`, or 1 when not retryable).
    pub max_attempts: u32,
    /// Attempt timeout.
    pub timeout: Option<Duration>,
    /// The step's priority (its configured one, else its task's).
    pub priority: Priority,
    /// Its place in the claim queue: the step is claimed as if it had
    /// become ready this much earlier (see [`ClaimOrder`](crate::ClaimOrder)).
    pub head_start: HeadStart,
}

/// A task to create: the task row, its steps and their edges.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The handler's id from [`Store::register_handler`].
    pub handler_id: i64,
    /// The context, already checked against the context type.
    pub context: Value,
    /// Idempotency key: creating a task with a key that exists returns the
    /// existing task.
    pub identity_key: Option<String>,
    /// Who asked (a user, a service).
    pub initiator: Option<String>,
    /// The system the request came from.
    pub source_system: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// The task's priority.
    pub priority: Priority,
    /// The deadline, from creation (measured by the database's clock).
    pub max_execution_time: Option<Duration>,
    /// The steps.
    pub steps: Vec<NewStep>,
}

/// The result of [`Store::create_task`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "task_id", rename_all = "snake_case")]
pub enum Created {
    /// A new task.
    New(TaskId),
    /// A task with the same identity key already existed; nothing was written.
    Existing(TaskId),
}

impl Created {
    /// The task's id, new or existing.
    pub fn task_id(self) -> TaskId {
        match self {
            Created::New(id) | Created::Existing(id) => id,
        }
    }
}

/// A step as stored, for reading.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// The step.
    pub step_id: StepId,
    /// Name.
    pub name: String,
    /// State.
    pub state: StepState,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The output, when complete (or resolved with one).
    pub output: Option<Value>,
    /// The last error, if any.
    pub last_error: Option<StepError>,
    /// When it may next be claimed (for `ready` steps).
    pub run_at: Option<DateTime<Utc>>,
    /// Its priority.
    pub priority: Priority,
    /// The names of the steps it depends on.
    pub depends_on: Vec<String>,
    /// Its last checkpoint, when it saved one
    /// ([`StepContext::save_checkpoint`](crate::StepContext::save_checkpoint)):
    /// a running batch's progress.
    pub checkpoint: Option<Checkpoint>,
    /// For an instance of a fan-out step (`#[step(for_each = ...)]`): its
    /// place among the items, 0-based. It shares its name with the step's
    /// group row (where this is `None`), which completes when the last
    /// instance does.
    pub item_index: Option<u32>,
    /// For an instance of a fan-out step: its item.
    pub item: Option<Value>,
    /// For a fan-out step's group row: all its items counted by state
    /// (however many of them the read holds: see [`ItemWindow`]). `None`
    /// for every other step, and for a fan-out that has not expanded yet
    /// (or had no items).
    pub items: Option<ItemCounts>,
}

/// A step's checkpoint as stored (see
/// [`StepContext::save_checkpoint`](crate::StepContext::save_checkpoint)).
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkpoint {
    /// What the step saved.
    pub value: Value,
    /// The attempt that saved it.
    pub attempt: u32,
    /// When, by the store's clock.
    pub saved_at: DateTime<Utc>,
}

/// A task as stored, for reading.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct TaskRecord {
    /// The task.
    pub task_id: TaskId,
    /// Namespace of its handler.
    pub namespace: String,
    /// Handler name.
    pub name: String,
    /// Handler version.
    pub version: String,
    /// State.
    pub state: TaskState,
    /// Context.
    pub context: Value,
    /// Idempotency key.
    pub identity_key: Option<String>,
    /// Who asked.
    pub initiator: Option<String>,
    /// The system the request came from.
    pub source_system: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Its priority.
    pub priority: Priority,
    /// After this, steps not yet started are failed instead of run
    /// (`max_execution_time`); `None` when the task has no deadline or an
    /// operator retry lifted it.
    pub deadline: Option<DateTime<Utc>>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When it last changed state.
    pub updated_at: DateTime<Utc>,
    /// Its steps, in declaration order.
    pub steps: Vec<StepRecord>,
    /// What its steps recorded with
    /// [`StepContext::annotate`](crate::StepContext::annotate), oldest first
    /// (read with the task; empty in lists).
    pub annotations: Vec<crate::TaskAnnotation>,
}

/// Filters for listing tasks.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Namespace.
    pub namespace: Option<String>,
    /// Handler name.
    pub name: Option<String>,
    /// Handler version.
    pub version: Option<String>,
    /// State.
    pub state: Option<TaskState>,
    /// Only tasks with an annotation of this type.
    pub annotation_type: Option<String>,
    /// Only tasks created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only tasks created before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// Only tasks listed after this one (keyset paging: pass the last task
    /// of the previous page; it costs the same on every page, unlike
    /// `offset`). A task that no longer exists ends the list.
    pub after_task: Option<TaskId>,
    /// At most this many (newest first).
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// The migrations a database has applied and those it still lacks, by
/// name (`<version>_<title>`), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    /// Applied, oldest first.
    pub applied: Vec<String>,
    /// Not applied yet, oldest first.
    pub pending: Vec<String>,
}

impl MigrationStatus {
    /// Whether nothing is pending.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// An operator action on a task or step.
#[derive(Debug, Clone)]
pub enum OperatorAction {
    /// Give failed steps of the task a new set of attempts.
    RetryTask(TaskId),
    /// Give one failed step a new set of attempts.
    RetryStep(StepId),
    /// Cancel the task and every unfinished step.
    CancelTask(TaskId),
    /// Mark the task done by hand: every unfinished step is resolved
    /// without an output and the task ends `resolved_manually`.
    ResolveTask(TaskId),
    /// Cancel one unfinished step and every unfinished step after it. The
    /// rest of the task runs on; a task with a cancelled step ends
    /// `cancelled` once nothing else is left to run.
    CancelStep(StepId),
    /// Mark a step done by hand, with an output for the steps that read it.
    ResolveStep {
        /// The step.
        step_id: StepId,
        /// Its output (JSON `null` when none is given).
        output: Value,
    },
}

/// The persistence port. See the module docs.
pub trait Store: Send + Sync + 'static {
    /// What this store can do.
    fn capabilities(&self) -> Capabilities;

    /// Creates or updates tasker's tables; the names of the migrations it
    /// applied (empty when the database was current).
    fn migrate(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Which migrations the database has and which it lacks. Read-only: it
    /// creates nothing, not even the table that records migrations.
    fn migration_status(&self) -> impl Future<Output = Result<MigrationStatus, StoreError>> + Send;

    /// Whether every migration has been applied (read-only).
    fn migrations_current(&self) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async { Ok(self.migration_status().await?.is_current()) }
    }

    /// Records a handler shape; returns its id. Idempotent.
    fn register_handler(
        &self,
        handler: &HandlerRecord,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Handler shapes that unfinished tasks were created from.
    fn unfinished_handlers(
        &self,
    ) -> impl Future<Output = Result<Vec<UnfinishedHandler>, StoreError>> + Send;

    /// Writes the task, its steps (roots `ready`) and edges atomically, or
    /// returns the existing task with the same identity key.
    fn create_task(
        &self,
        task: NewTask,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send;

    /// Creates several tasks in one transaction: all or none.
    fn create_tasks(
        &self,
        tasks: Vec<NewTask>,
    ) -> impl Future<Output = Result<Vec<Created>, StoreError>> + Send;

    /// Claims up to `limit` ready steps whose time has come, under a lease,
    /// moving them (and pending tasks) to `in_progress`.
    fn claim_steps(
        &self,
        request: ClaimRequest<'_>,
    ) -> impl Future<Output = Result<Vec<ClaimedStep>, StoreError>> + Send;

    /// Extends the leases of steps still running.
    fn renew_leases(
        &self,
        steps: &[(StepId, u32)],
        lease: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records the ends of attempts: output and release of children, retry
    /// scheduling, or failure, with task finalisation; one transaction.
    fn complete_steps(
        &self,
        completions: &[Completion],
    ) -> impl Future<Output = Result<Vec<Completed>, StoreError>> + Send;

    /// Steps whose lease expired go back to `ready` (or to `error` when out
    /// of attempts). `all_in_progress` reclaims every running step at once:
    /// for a single-process store at start-up, whose previous process died.
    fn recover_expired(
        &self,
        all_in_progress: bool,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Waits until work may be available, or `timeout` passes.
    fn wait_for_work(&self, timeout: Duration) -> impl Future<Output = ()> + Send;

    /// Applies an operator action.
    fn operator_action(
        &self,
        action: OperatorAction,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One task with its steps, every fan-out item among them (a read
    /// that grows with the items: use [`task_view`](Self::task_view) where
    /// a task may have many).
    fn task(&self, task_id: TaskId) -> impl Future<Output = Result<TaskRecord, StoreError>> + Send {
        self.task_view(task_id, ItemWindow::ALL)
    }

    /// One task with its steps, of each fan-out's items those in `items`
    /// (and every group's [`StepRecord::items`] counts): what the API and
    /// the CLI show, a read bounded by the window.
    fn task_view(
        &self,
        task_id: TaskId,
        items: ItemWindow,
    ) -> impl Future<Output = Result<TaskRecord, StoreError>> + Send;

    /// One step, with its task's id (a group with its
    /// [`StepRecord::items`] counts). `NotFound` when there is none.
    fn step(
        &self,
        step_id: StepId,
    ) -> impl Future<Output = Result<(TaskId, StepRecord), StoreError>> + Send;

    /// Tasks matching `filter`, newest first, without their steps.
    fn tasks(
        &self,
        filter: &TaskFilter,
    ) -> impl Future<Output = Result<Vec<TaskRecord>, StoreError>> + Send;

    /// The audit trail of a task: its transitions and its steps' (every
    /// fan-out item's among them), in order. A read that grows with the
    /// items: use [`transitions_window`](Self::transitions_window) where a
    /// task may have many.
    fn transitions(
        &self,
        task_id: TaskId,
    ) -> impl Future<Output = Result<Vec<Transition>, StoreError>> + Send {
        self.transitions_window(task_id, TransitionWindow::ALL)
    }

    /// The part of a task's audit trail in `window`, oldest first (with
    /// [`TransitionWindow::newest`], the newest `n` of it, still oldest
    /// first). Ordered by time, then task before step transitions, then
    /// as written.
    fn transitions_window(
        &self,
        task_id: TaskId,
        window: TransitionWindow,
    ) -> impl Future<Output = Result<Vec<Transition>, StoreError>> + Send;

    /// The task a step belongs to.
    fn task_of_step(
        &self,
        step_id: StepId,
    ) -> impl Future<Output = Result<TaskId, StoreError>> + Send;

    /// The namespace and name of a task's handler (one row: what an
    /// authorization check needs). `NotFound` when there is no such task.
    fn handler_of_task(
        &self,
        task_id: TaskId,
    ) -> impl Future<Output = Result<(String, String), StoreError>> + Send;

    /// Saves `value` as the checkpoint of step `step_id` for `attempt`,
    /// replacing any earlier one, when that attempt still holds the step
    /// (`in_progress` with that attempt number); otherwise writes nothing
    /// and returns `false`. Atomic against lease recovery and operator
    /// actions: a save that returns `true` was made while the attempt held
    /// the step, and no save of an older attempt ever replaces a newer
    /// attempt's. The value has passed the payload checks.
    fn save_checkpoint(
        &self,
        step_id: StepId,
        attempt: u32,
        value: &Value,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The last checkpoint saved for step `step_id`, by any attempt.
    fn checkpoint(
        &self,
        step_id: StepId,
    ) -> impl Future<Output = Result<Option<Checkpoint>, StoreError>> + Send;

    /// Steps ready to run now (the ready queue's depth).
    fn ready_steps(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Step attempts completed and failed per minute since `since`, and
    /// the workers that claimed steps since then (from the audit trail).
    fn activity(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Activity, StoreError>> + Send;

    /// Counts of tasks by state.
    fn task_counts(&self)
        -> impl Future<Output = Result<Vec<(TaskState, i64)>, StoreError>> + Send;

    /// Counts of tasks by state for an overview that must answer quickly
    /// on any number of tasks: the unfinished states (`pending`,
    /// `in_progress`, `error`) are always counted; a store may estimate
    /// the finished ones from its statistics once the table holds more
    /// than [`ESTIMATE_ABOVE_ROWS`] tasks (`exact: false`). By default,
    /// [`task_counts`](Store::task_counts), all exact.
    fn task_counts_at_a_glance(
        &self,
    ) -> impl Future<Output = Result<Vec<StateCount>, StoreError>> + Send {
        async {
            Ok(self
                .task_counts()
                .await?
                .into_iter()
                .map(|(state, count)| StateCount {
                    state,
                    count,
                    exact: true,
                })
                .collect())
        }
    }

    /// Problems of the database's set-up that an operator should fix
    /// (PostgreSQL: autovacuum turned off). Empty when all is well.
    fn warnings(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Deletes one batch of tasks that `filter` names, with their steps,
    /// edges, transitions and annotations, in one transaction; returns how
    /// many tasks it deleted (fewer than `filter.batch`: nothing is left).
    /// Tasks with a step `in_progress` are never deleted. Call it again
    /// for the next batch ([`Tasker::purge`](crate::Tasker::purge) loops).
    fn purge_tasks(
        &self,
        filter: &PurgeFilter,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many tasks [`purge_tasks`](Store::purge_tasks) with `filter`
    /// would delete now (all batches), counting at most `cap`. Reads only.
    fn count_purgeable(
        &self,
        filter: &PurgeFilter,
        cap: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Failed steps of failed tasks, most recent failure first.
    fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// Opens a transaction for one attempt of a `#[step(transactional)]`
    /// step. Stores without [`Capabilities::step_transactions`] refuse.
    fn begin_step_transaction(
        &self,
        step_id: StepId,
        attempt: u32,
    ) -> impl Future<Output = Result<Box<dyn StepTransaction>, StoreError>> + Send {
        let _ = (step_id, attempt);
        async {
            Err(StoreError::Invalid(
                "this store cannot share a transaction with a step (needs PostgreSQL)".to_owned(),
            ))
        }
    }

    /// Records a transactional step's successful `completion` in its
    /// transaction and commits both, or, when the attempt is no longer the
    /// step's (reclaimed, cancelled, resolved), rolls both back and reports
    /// `applied: false`.
    fn complete_in_transaction(
        &self,
        transaction: Box<dyn StepTransaction>,
        completion: &Completion,
    ) -> impl Future<Output = Result<Completed, StoreError>> + Send {
        let _ = (transaction, completion);
        async {
            Err(StoreError::Invalid(
                "this store cannot share a transaction with a step (needs PostgreSQL)".to_owned(),
            ))
        }
    }

    /// Ends tasks past their deadline: their `ready` steps (including
    /// those waiting to retry) go to `error` with `error` as their last
    /// error, audited with `actor`, and the task goes to `error` if it was
    /// pending or in progress. `pending` steps stay pending; steps already
    /// running finish and their results are recorded, and what they
    /// release is stopped by a later call (claims never pick a step past
    /// its deadline meanwhile). At most `limit` tasks per call; cheap when
    /// none is due.
    fn expire_deadlines(
        &self,
        error: &StepError,
        actor: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ExpiredTask>, StoreError>> + Send;

    /// Housekeeping the store needs now and then; workers call it from
    /// their maintenance tick, so it must be cheap when there is nothing
    /// to do. (PostgreSQL: vacuums the queue tables when autovacuum is
    /// off and dead rows pile up.)
    fn housekeeping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }
}
