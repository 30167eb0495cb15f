//! The embedded SQLite store: one file, one process. Every operation runs as
//! one immediate transaction on a blocking thread.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::{sql_query, Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use serde_json::Value;
use tasker::store::{
    Capabilities, ClaimRequest, ClaimedStep, Completed, Completion, Created, HandlerRecord,
    NewTask, OperatorAction, Outcome, Store, StoreError, TaskFilter, TaskRecord, Transition,
    UnfinishedHandler,
};
use tasker::{StepId, StepState, TaskId, TaskState};
use tokio::sync::Notify;

use crate::operator::{self, checked, StepCounts, Tx, TxError};
use crate::rows::{
    lease_expired_error, parse_state, ClaimRow, CountRow, IdRow, StateCountRow, StepCountsRow,
    StepRow, TaskRow, TransitionRow, UnfinishedRow, STEP_COUNTS_SQL,
};
use crate::MIGRATIONS_SQLITE;

/// The embedded SQLite store. One process owns the file: a second process
/// opening it gets a clear error.
pub struct SqliteStore {
    conn: Arc<Mutex<SqliteConnection>>,
    path: PathBuf,
    wakeups: Arc<Notify>,
    _lock: Option<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[derive(QueryableByName)]
struct StepStateRow {
    #[diesel(sql_type = BigInt)]
    workflow_step_id: i64,
    #[diesel(sql_type = BigInt)]
    task_id: i64,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

#[derive(QueryableByName)]
struct TaskStateRow {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    unfinished_steps: i32,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, and takes an
    /// exclusive lock on `<path>.lock` for this process.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot open lock file {}: {e}",
                    lock_path.display()
                ))
            })?;
        if let Err(e) = lock.try_lock() {
            return Err(StoreError::Unavailable(match e {
                std::fs::TryLockError::WouldBlock => format!(
                    "the SQLite database {} is in use by another tasker process; SQLite runs one \
                     worker process at a time. Stop the other process, use another file, or use \
                     PostgreSQL (DATABASE_URL=postgres://...) to run several workers",
                    path.display()
                ),
                std::fs::TryLockError::Error(e) => {
                    format!("cannot lock {}: {e}", lock_path.display())
                }
            }));
        }
        let url = path.to_string_lossy().into_owned();
        let conn = tokio::task::spawn_blocking(move || open_connection(&url))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening SQLite failed: {e}")))??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
            wakeups: Arc::new(Notify::new()),
            _lock: Some(lock),
        })
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let conn = open_connection(":memory:")?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: PathBuf::from(":memory:"),
            wakeups: Arc::new(Notify::new()),
            _lock: None,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in one immediate transaction on a blocking thread.
    async fn tx<T: Send + 'static>(
        &self,
        doing: &'static str,
        work: impl FnOnce(&mut SqliteConnection) -> Tx<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            conn.immediate_transaction(|conn| work(conn))
        })
        .await
        .map_err(|e| StoreError::Database {
            message: format!("{doing}: the database thread failed: {e}"),
            source: None,
        })?
        .map_err(|e| match e {
            TxError::Diesel(e) => StoreError::database(doing, e),
            TxError::Store(e) => e,
        })
    }
}

fn open_connection(url: &str) -> Result<SqliteConnection, StoreError> {
    let mut conn = SqliteConnection::establish(url)
        .map_err(|e| StoreError::Unavailable(format!("cannot open SQLite database {url}: {e}")))?;
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000;",
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot configure SQLite database {url}: {e}")))?;
    Ok(conn)
}

/// Records a step transition; `(step_id, task_id)` name the step.
fn step_audit(
    conn: &mut SqliteConnection,
    (step_id, task_id): (i64, i64),
    from: Option<&str>,
    to: &str,
    attempt: Option<i32>,
    actor: &str,
    error: Option<&str>,
) -> Tx<()> {
    sql_query(
        "INSERT INTO tasker_workflow_step_transitions
           (workflow_step_id, task_id, from_state, to_state, attempt, actor, error, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind::<BigInt, _>(step_id)
    .bind::<BigInt, _>(task_id)
    .bind::<Nullable<Text>, _>(from)
    .bind::<Text, _>(to)
    .bind::<Nullable<Integer>, _>(attempt)
    .bind::<Text, _>(actor)
    .bind::<Nullable<Text>, _>(error)
    .bind::<BigInt, _>(now_ms())
    .execute(conn)?;
    Ok(())
}

fn task_audit(
    conn: &mut SqliteConnection,
    task_id: i64,
    from: Option<&str>,
    to: &str,
    actor: &str,
) -> Tx<()> {
    sql_query(
        "INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor, created_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind::<BigInt, _>(task_id)
    .bind::<Nullable<Text>, _>(from)
    .bind::<Text, _>(to)
    .bind::<Text, _>(actor)
    .bind::<BigInt, _>(now_ms())
    .execute(conn)?;
    Ok(())
}

/// Moves a task from `from` to `to` (if it is still `from`), audited.
fn set_task_state(
    conn: &mut SqliteConnection,
    task_id: i64,
    from: &str,
    to: &str,
    actor: &str,
) -> Tx<bool> {
    let changed = sql_query(
        "UPDATE tasker_tasks SET state = ?, updated_at = ? WHERE task_id = ? AND state = ?",
    )
    .bind::<Text, _>(to)
    .bind::<BigInt, _>(now_ms())
    .bind::<BigInt, _>(task_id)
    .bind::<Text, _>(from)
    .execute(conn)?;
    if changed > 0 {
        task_audit(conn, task_id, Some(from), to, actor)?;
    }
    Ok(changed > 0)
}

fn task_state(conn: &mut SqliteConnection, task_id: i64) -> Tx<TaskStateRow> {
    sql_query("SELECT state, unfinished_steps FROM tasker_tasks WHERE task_id = ?")
        .bind::<BigInt, _>(task_id)
        .get_results::<TaskStateRow>(conn)?
        .pop()
        .ok_or(TxError::Store(StoreError::NotFound {
            what: "task",
            id: task_id,
        }))
}

fn step_state(conn: &mut SqliteConnection, step_id: i64) -> Tx<StepStateRow> {
    sql_query("SELECT workflow_step_id, task_id, state, attempts FROM tasker_workflow_steps WHERE workflow_step_id = ?")
        .bind::<BigInt, _>(step_id)
        .get_results::<StepStateRow>(conn)?
        .pop()
        .ok_or(TxError::Store(StoreError::NotFound {
            what: "step",
            id: step_id,
        }))
}

/// A step completed: release its children whose parents are now all done,
/// and count it off its task; the task finishes when nothing is left
/// (see `operator::finished_state`). Returns the released children and the
/// task's new state, if it changed.
fn finish_step(
    conn: &mut SqliteConnection,
    step_id: i64,
    task_id: i64,
    actor: &str,
) -> Tx<(Vec<i64>, Option<TaskState>)> {
    let released = release_children(conn, step_id, task_id, actor)?;
    let task = sql_query(
        "UPDATE tasker_tasks SET unfinished_steps = unfinished_steps - 1, updated_at = ?
         WHERE task_id = ? RETURNING state, unfinished_steps",
    )
    .bind::<BigInt, _>(now_ms())
    .bind::<BigInt, _>(task_id)
    .get_result::<TaskStateRow>(conn)?;
    let mut finished = None;
    // As on PostgreSQL: a worker's completion finishes an `in_progress`
    // task (operator actions keep a task with no failed step out of
    // `error`, and a task whose steps run is never `pending`).
    if task.unfinished_steps == 0 && task.state == TaskState::InProgress.as_str() {
        let counts = SqliteOps { conn }.step_counts_now(task_id)?;
        let (from, to) = checked(
            TaskState::InProgress,
            operator::finished_state(counts.cancelled),
        );
        if set_task_state(conn, task_id, from.as_str(), to.as_str(), actor)? {
            finished = Some(to);
        }
    }
    Ok((released, finished))
}

/// Decrements the children of a done step; those with no parent left go
/// `pending -> ready`, audited. Returns them.
fn release_children(
    conn: &mut SqliteConnection,
    step_id: i64,
    task_id: i64,
    actor: &str,
) -> Tx<Vec<i64>> {
    let children = sql_query(
        "UPDATE tasker_workflow_steps SET pending_parents = pending_parents - 1,
           state = CASE WHEN pending_parents = 1 AND state = 'pending' THEN 'ready' ELSE state END,
           updated_at = ?
         WHERE workflow_step_id IN (SELECT to_step_id FROM tasker_workflow_step_edges WHERE from_step_id = ?)
         RETURNING workflow_step_id, task_id, state, attempts",
    )
    .bind::<BigInt, _>(now_ms())
    .bind::<BigInt, _>(step_id)
    .load::<StepStateRow>(conn)?;
    let mut released = Vec::new();
    for child in children
        .iter()
        .filter(|c| c.state == StepState::Ready.as_str())
    {
        step_audit(
            conn,
            (child.workflow_step_id, task_id),
            Some("pending"),
            "ready",
            None,
            actor,
            None,
        )?;
        released.push(child.workflow_step_id);
    }
    Ok(released)
}

/// Moves `steps` to the final state `to` (cancelled or resolved by hand),
/// audited.
fn set_steps_state(
    conn: &mut SqliteConnection,
    steps: &[StepStateRow],
    to: StepState,
    actor: &str,
) -> Tx<()> {
    for step in steps {
        sql_query(
            "UPDATE tasker_workflow_steps SET state = ?, lease_expires_at = NULL, updated_at = ?
             WHERE workflow_step_id = ?",
        )
        .bind::<Text, _>(to.as_str())
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(step.workflow_step_id)
        .execute(conn)?;
        step_audit(
            conn,
            (step.workflow_step_id, step.task_id),
            Some(&step.state),
            to.as_str(),
            Some(step.attempts),
            actor,
            None,
        )?;
    }
    Ok(())
}

/// The operator primitives on the SQLite connection, inside the action's
/// immediate transaction (which holds the only write lock, so `lock_*`
/// only read).
struct SqliteOps<'c> {
    conn: &'c mut SqliteConnection,
}

impl SqliteOps<'_> {
    fn step_counts_now(&mut self, task_id: i64) -> Tx<StepCounts> {
        let row = sql_query(STEP_COUNTS_SQL)
            .bind::<BigInt, _>(task_id)
            .get_result::<StepCountsRow>(self.conn)?;
        Ok(row.into())
    }

    fn unfinished_steps(&mut self, sql: &str, id: i64) -> Tx<Vec<StepStateRow>> {
        Ok(sql_query(sql)
            .bind::<BigInt, _>(id)
            .load::<StepStateRow>(self.conn)?)
    }

    fn count_off(&mut self, task_id: i64, n: usize) -> Tx<()> {
        sql_query(
            "UPDATE tasker_tasks SET unfinished_steps = unfinished_steps - ?, updated_at = ?
             WHERE task_id = ?",
        )
        .bind::<Integer, _>(n as i32)
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(task_id)
        .execute(self.conn)?;
        Ok(())
    }
}

impl operator::Primitives for SqliteOps<'_> {
    async fn lock_task(&mut self, task_id: i64) -> Tx<TaskState> {
        Ok(parse_state(&task_state(self.conn, task_id)?.state)?)
    }

    async fn task_of_step(&mut self, step_id: i64) -> Tx<i64> {
        Ok(step_state(self.conn, step_id)?.task_id)
    }

    async fn lock_step(&mut self, step_id: i64) -> Tx<StepState> {
        Ok(parse_state(&step_state(self.conn, step_id)?.state)?)
    }

    async fn retry_failed(&mut self, task_id: i64, step_id: Option<i64>, actor: &str) -> Tx<()> {
        let failed = sql_query(
            "SELECT workflow_step_id, task_id, state, attempts FROM tasker_workflow_steps
             WHERE task_id = ? AND state = 'error' AND (? IS NULL OR workflow_step_id = ?)",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Nullable<BigInt>, _>(step_id)
        .bind::<Nullable<BigInt>, _>(step_id)
        .load::<StepStateRow>(self.conn)?;
        for step in &failed {
            sql_query(
                "UPDATE tasker_workflow_steps SET state = 'ready', run_at = ?,
                   max_attempts = attempts + attempt_budget, updated_at = ? WHERE workflow_step_id = ?",
            )
            .bind::<BigInt, _>(now_ms())
            .bind::<BigInt, _>(now_ms())
            .bind::<BigInt, _>(step.workflow_step_id)
            .execute(self.conn)?;
            step_audit(
                self.conn,
                (step.workflow_step_id, step.task_id),
                Some("error"),
                "ready",
                Some(step.attempts),
                actor,
                None,
            )?;
        }
        Ok(())
    }

    async fn close_steps(&mut self, task_id: i64, to: StepState, actor: &str) -> Tx<()> {
        let open = self.unfinished_steps(
            "SELECT workflow_step_id, task_id, state, attempts FROM tasker_workflow_steps
             WHERE task_id = ? AND state IN ('pending', 'ready', 'in_progress', 'error')",
            task_id,
        )?;
        set_steps_state(self.conn, &open, to, actor)?;
        sql_query("UPDATE tasker_tasks SET unfinished_steps = 0, updated_at = ? WHERE task_id = ?")
            .bind::<BigInt, _>(now_ms())
            .bind::<BigInt, _>(task_id)
            .execute(self.conn)?;
        Ok(())
    }

    async fn cancel_from(&mut self, step_id: i64, actor: &str) -> Tx<()> {
        let doomed = self.unfinished_steps(
            "WITH RECURSIVE down(id) AS (
               SELECT ?
               UNION SELECT e.to_step_id FROM tasker_workflow_step_edges e JOIN down ON e.from_step_id = down.id
             )
             SELECT s.workflow_step_id, s.task_id, s.state, s.attempts
             FROM tasker_workflow_steps s JOIN down ON s.workflow_step_id = down.id
             WHERE s.state IN ('pending', 'ready', 'in_progress', 'error')",
            step_id,
        )?;
        set_steps_state(self.conn, &doomed, StepState::Cancelled, actor)?;
        if let Some(first) = doomed.first() {
            self.count_off(first.task_id, doomed.len())?;
        }
        Ok(())
    }

    async fn resolve_step(
        &mut self,
        step_id: i64,
        from: StepState,
        output: &Value,
        actor: &str,
    ) -> Tx<()> {
        let step = sql_query(
            "UPDATE tasker_workflow_steps SET state = 'resolved_manually', results = ?,
               lease_expires_at = NULL, updated_at = ? WHERE workflow_step_id = ?
             RETURNING workflow_step_id, task_id, state, attempts",
        )
        .bind::<Text, _>(output.to_string())
        .bind::<BigInt, _>(now_ms())
        .bind::<BigInt, _>(step_id)
        .get_result::<StepStateRow>(self.conn)?;
        step_audit(
            self.conn,
            (step_id, step.task_id),
            Some(from.as_str()),
            StepState::ResolvedManually.as_str(),
            Some(step.attempts),
            actor,
            None,
        )?;
        release_children(self.conn, step_id, step.task_id, actor)?;
        self.count_off(step.task_id, 1)
    }

    async fn step_counts(&mut self, task_id: i64) -> Tx<StepCounts> {
        self.step_counts_now(task_id)
    }

    async fn set_task_state(
        &mut self,
        task_id: i64,
        from: TaskState,
        to: TaskState,
        actor: &str,
    ) -> Tx<()> {
        set_task_state(self.conn, task_id, from.as_str(), to.as_str(), actor).map(drop)
    }
}

/// Claims a just-released child for the worker that released it.
fn take_child(
    conn: &mut SqliteConnection,
    step_id: i64,
    lease: Duration,
    worker: &str,
) -> Tx<ClaimedStep> {
    let now = now_ms();
    let step = sql_query(
        "UPDATE tasker_workflow_steps SET state = 'in_progress', attempts = attempts + 1,
           lease_expires_at = ?, worker_id = ?, updated_at = ?
         WHERE workflow_step_id = ? AND state = 'ready'
         RETURNING workflow_step_id, task_id, state, attempts",
    )
    .bind::<BigInt, _>(now + lease.as_millis() as i64)
    .bind::<Text, _>(worker)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(step_id)
    .get_result::<StepStateRow>(conn)?;
    step_audit(
        conn,
        (step.workflow_step_id, step.task_id),
        Some("ready"),
        "in_progress",
        Some(step.attempts),
        worker,
        None,
    )?;
    let row = claim_rows(conn, &step.workflow_step_id.to_string(), "")?
        .pop()
        .expect("the step just claimed exists");
    Ok(row.into_claimed())
}

/// Claim rows (context and parents' outputs) of the steps with these ids.
fn claim_rows(conn: &mut SqliteConnection, step_ids: &str, started: &str) -> Tx<Vec<ClaimRow>> {
    Ok(sql_query(format!(
        "SELECT s.workflow_step_id, s.task_id, s.named_task_id, s.name, s.position, s.attempts,
                s.max_attempts, t.context, s.task_id IN ({started}) AS task_started,
                COALESCE((SELECT json_group_array(json_array(p.name, json(p.results)))
                          FROM tasker_workflow_step_edges e
                          JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
                          WHERE e.to_step_id = s.workflow_step_id), '[]') AS inputs
         FROM tasker_workflow_steps s JOIN tasker_tasks t ON t.task_id = s.task_id
         WHERE s.workflow_step_id IN ({step_ids})
         ORDER BY s.run_at, s.workflow_step_id"
    ))
    .load::<ClaimRow>(conn)?)
}

/// Writes one task, its steps and edges (inside the caller's transaction).
fn create_one(conn: &mut SqliteConnection, task: &NewTask) -> Tx<Created> {
    if let Some(key) = &task.identity_key {
        let existing = sql_query("SELECT task_id AS id FROM tasker_tasks WHERE identity_key = ?")
            .bind::<Text, _>(key)
            .get_results::<IdRow>(conn)?;
        if let Some(row) = existing.into_iter().next() {
            return Ok(Created::Existing(TaskId(row.id)));
        }
    }
    let now = now_ms();
    let actor = task
        .initiator
        .clone()
        .unwrap_or_else(|| "tasker".to_owned());
    let task_id = sql_query(
        "INSERT INTO tasker_tasks (named_task_id, state, context, identity_key, initiator,
           source_system, reason, tags, unfinished_steps, created_at, updated_at)
         VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING task_id AS id",
    )
    .bind::<BigInt, _>(task.handler_id)
    .bind::<Text, _>(task.context.to_string())
    .bind::<Nullable<Text>, _>(task.identity_key.as_deref())
    .bind::<Nullable<Text>, _>(task.initiator.as_deref())
    .bind::<Nullable<Text>, _>(task.source_system.as_deref())
    .bind::<Nullable<Text>, _>(task.reason.as_deref())
    .bind::<Text, _>(Value::from(task.tags.clone()).to_string())
    .bind::<Integer, _>(task.steps.len() as i32)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(now)
    .get_result::<IdRow>(conn)?
    .id;
    task_audit(conn, task_id, None, "pending", &actor)?;
    let mut ids = vec![0i64; task.steps.len()];
    for step in &task.steps {
        let state = if step.parents.is_empty() {
            "ready"
        } else {
            "pending"
        };
        let id = sql_query(
            "INSERT INTO tasker_workflow_steps (task_id, named_task_id, name, position, state,
               max_attempts, attempt_budget, timeout_ms, pending_parents, run_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING workflow_step_id AS id",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<BigInt, _>(task.handler_id)
        .bind::<Text, _>(&step.name)
        .bind::<Integer, _>(step.index as i32)
        .bind::<Text, _>(state)
        .bind::<Integer, _>(step.max_attempts as i32)
        .bind::<Integer, _>(step.max_attempts as i32)
        .bind::<Nullable<BigInt>, _>(step.timeout.map(|t| t.as_millis() as i64))
        .bind::<Integer, _>(step.parents.len() as i32)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(now)
        .get_result::<IdRow>(conn)?
        .id;
        ids[step.index as usize] = id;
        step_audit(conn, (id, task_id), None, state, None, &actor, None)?;
    }
    for step in &task.steps {
        for parent in &step.parents {
            sql_query(
                "INSERT INTO tasker_workflow_step_edges (from_step_id, to_step_id, task_id) VALUES (?, ?, ?)",
            )
            .bind::<BigInt, _>(ids[*parent as usize])
            .bind::<BigInt, _>(ids[step.index as usize])
            .bind::<BigInt, _>(task_id)
            .execute(conn)?;
        }
    }
    Ok(Created::New(TaskId(task_id)))
}

impl Store for SqliteStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            distributed: false,
            skip_locked: false,
            notify: false,
            advisory_locks: false,
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            use diesel_migrations::MigrationHarness;
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            conn.run_pending_migrations(MIGRATIONS_SQLITE)
                .map(drop)
                .map_err(|e| StoreError::Database {
                    message: format!("applying migrations failed: {e}"),
                    source: None,
                })
        })
        .await
        .map_err(|e| StoreError::Database {
            message: format!("the migration thread failed: {e}"),
            source: None,
        })?
    }

    async fn migrations_current(&self) -> Result<bool, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            use diesel_migrations::MigrationHarness;
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            conn.has_pending_migration(MIGRATIONS_SQLITE)
                .map(|pending| !pending)
                .map_err(|e| StoreError::Database {
                    message: format!("reading the migration state failed: {e}"),
                    source: None,
                })
        })
        .await
        .map_err(|e| StoreError::Database {
            message: format!("the migration thread failed: {e}"),
            source: None,
        })?
    }

    async fn register_handler(&self, handler: &HandlerRecord) -> Result<i64, StoreError> {
        let handler = handler.clone();
        self.tx("registering a handler", move |conn| {
            let now = now_ms();
            sql_query("INSERT INTO tasker_task_namespaces (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
                .bind::<Text, _>(&handler.namespace)
                .bind::<BigInt, _>(now)
                .execute(conn)?;
            let ns = sql_query("SELECT task_namespace_id AS id FROM tasker_task_namespaces WHERE name = ?")
                .bind::<Text, _>(&handler.namespace)
                .get_result::<IdRow>(conn)?
                .id;
            sql_query(
                "INSERT INTO tasker_named_tasks (task_namespace_id, name, version, fingerprint, description, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (task_namespace_id, name, version, fingerprint) DO UPDATE SET description = excluded.description",
            )
            .bind::<BigInt, _>(ns)
            .bind::<Text, _>(&handler.name)
            .bind::<Text, _>(&handler.version)
            .bind::<Text, _>(&handler.fingerprint)
            .bind::<Text, _>(&handler.description)
            .bind::<BigInt, _>(now)
            .execute(conn)?;
            let id = sql_query(
                "SELECT named_task_id AS id FROM tasker_named_tasks
                 WHERE task_namespace_id = ? AND name = ? AND version = ? AND fingerprint = ?",
            )
            .bind::<BigInt, _>(ns)
            .bind::<Text, _>(&handler.name)
            .bind::<Text, _>(&handler.version)
            .bind::<Text, _>(&handler.fingerprint)
            .get_result::<IdRow>(conn)?
            .id;
            for (position, name) in handler.steps.iter().enumerate() {
                sql_query(
                    "INSERT INTO tasker_named_steps (named_task_id, name, position) VALUES (?, ?, ?)
                     ON CONFLICT (named_task_id, position) DO NOTHING",
                )
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(name)
                .bind::<Integer, _>(position as i32)
                .execute(conn)?;
            }
            Ok(id)
        })
        .await
    }

    async fn unfinished_handlers(&self) -> Result<Vec<UnfinishedHandler>, StoreError> {
        self.tx("listing unfinished handlers", |conn| {
            let rows = sql_query(
                "SELECT ns.name AS namespace, nt.name, nt.version, nt.fingerprint, count(*) AS tasks
                 FROM tasker_tasks t
                 JOIN tasker_named_tasks nt ON nt.named_task_id = t.named_task_id
                 JOIN tasker_task_namespaces ns ON ns.task_namespace_id = nt.task_namespace_id
                 WHERE t.state IN ('pending', 'in_progress', 'error')
                 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            )
            .load::<UnfinishedRow>(conn)?;
            Ok(rows.into_iter().map(UnfinishedHandler::from).collect())
        })
        .await
    }

    async fn create_task(&self, task: NewTask) -> Result<Created, StoreError> {
        let mut created = self.create_tasks(vec![task]).await?;
        Ok(created.pop().expect("one task in, one out"))
    }

    async fn create_tasks(&self, tasks: Vec<NewTask>) -> Result<Vec<Created>, StoreError> {
        let created = self
            .tx("creating tasks", move |conn| {
                tasks
                    .iter()
                    .map(|task| create_one(conn, task))
                    .collect::<Tx<Vec<_>>>()
            })
            .await?;
        if created.iter().any(|c| matches!(c, Created::New(_))) {
            self.wakeups.notify_one();
        }
        Ok(created)
    }

    async fn claim_steps(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedStep>, StoreError> {
        if request.handler_ids.is_empty() || request.limit == 0 {
            return Ok(Vec::new());
        }
        let ids = request
            .handler_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let limit = request.limit as i64;
        let lease_ms = request.lease.as_millis() as i64;
        let worker = request.worker.to_owned();
        let rows = self
            .tx("claiming steps", move |conn| {
                let now = now_ms();
                let claimed = sql_query(format!(
                    "UPDATE tasker_workflow_steps SET state = 'in_progress', attempts = attempts + 1,
                       lease_expires_at = ?, worker_id = ?, updated_at = ?
                     WHERE workflow_step_id IN (
                       SELECT workflow_step_id FROM tasker_workflow_steps
                       WHERE state = 'ready' AND run_at <= ? AND named_task_id IN ({ids})
                       ORDER BY run_at, workflow_step_id LIMIT ?)
                     RETURNING workflow_step_id, task_id, state, attempts"
                ))
                .bind::<BigInt, _>(now + lease_ms)
                .bind::<Text, _>(&worker)
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(limit)
                .load::<StepStateRow>(conn)?;
                if claimed.is_empty() {
                    return Ok(Vec::new());
                }
                let mut started = Vec::new();
                for step in &claimed {
                    step_audit(conn, (step.workflow_step_id, step.task_id), Some("ready"), "in_progress", Some(step.attempts), &worker, None)?;
                    if set_task_state(conn, step.task_id, "pending", "in_progress", &worker)? {
                        started.push(step.task_id);
                    }
                }
                let started = started
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let step_ids = claimed
                    .iter()
                    .map(|s| s.workflow_step_id.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                claim_rows(conn, &step_ids, &started)
            })
            .await?;
        Ok(rows.into_iter().map(ClaimRow::into_claimed).collect())
    }

    async fn renew_leases(
        &self,
        steps: &[(StepId, u32)],
        lease: Duration,
    ) -> Result<(), StoreError> {
        let steps = steps.to_vec();
        self.tx("renewing leases", move |conn| {
            let until = now_ms() + lease.as_millis() as i64;
            for (step, attempt) in steps {
                sql_query(
                    "UPDATE tasker_workflow_steps SET lease_expires_at = ?
                     WHERE workflow_step_id = ? AND attempts = ? AND state = 'in_progress'",
                )
                .bind::<BigInt, _>(until)
                .bind::<BigInt, _>(step.0)
                .bind::<Integer, _>(attempt as i32)
                .execute(conn)?;
            }
            Ok(())
        })
        .await
    }

    async fn complete_steps(
        &self,
        completions: &[Completion],
    ) -> Result<Vec<Completed>, StoreError> {
        let completions = completions.to_vec();
        let results = self
            .tx("recording step results", move |conn| {
                let mut results = Vec::with_capacity(completions.len());
                for c in &completions {
                    let now = now_ms();
                    let (state, results_json, error) = match &c.outcome {
                        Outcome::Complete(output) => ("complete", Some(output.to_string()), None),
                        Outcome::Retry { error, .. } => ("ready", None, Some(error)),
                        Outcome::Fail(error) => ("error", None, Some(error)),
                    };
                    let run_at = match &c.outcome {
                        Outcome::Retry { delay, .. } => now + delay.as_millis() as i64,
                        _ => now,
                    };
                    let updated = sql_query(
                        "UPDATE tasker_workflow_steps SET state = ?, results = COALESCE(?, results),
                           last_error = COALESCE(?, last_error), run_at = ?, lease_expires_at = NULL,
                           updated_at = ?
                         WHERE workflow_step_id = ? AND attempts = ? AND state = 'in_progress'
                         RETURNING workflow_step_id, task_id, state, attempts",
                    )
                    .bind::<Text, _>(state)
                    .bind::<Nullable<Text>, _>(results_json)
                    .bind::<Nullable<Text>, _>(error.map(|e| serde_json::to_string(e).expect("errors serialize")))
                    .bind::<BigInt, _>(run_at)
                    .bind::<BigInt, _>(now)
                    .bind::<BigInt, _>(c.step_id.0)
                    .bind::<Integer, _>(c.attempt as i32)
                    .load::<StepStateRow>(conn)?;
                    let Some(step) = updated.into_iter().next() else {
                        results.push(Completed {
                            applied: false,
                            released: 0,
                            task_state: None,
                            next: None,
                        });
                        continue;
                    };
                    let message = error.map(ToString::to_string);
                    step_audit(conn, (step.workflow_step_id, step.task_id), Some("in_progress"), state, Some(step.attempts), &c.worker, message.as_deref())?;
                    let mut completed = Completed {
                        applied: true,
                        released: 0,
                        task_state: None,
                        next: None,
                    };
                    match &c.outcome {
                        Outcome::Complete(_) => {
                            let (released, finished) = finish_step(conn, step.workflow_step_id, step.task_id, &c.worker)?;
                            completed.released = released.len() as u32;
                            completed.task_state = finished;
                            if let (Some(lease), Some(child)) = (c.take_next, released.first()) {
                                completed.next = Some(take_child(conn, *child, lease, &c.worker)?);
                                completed.released -= 1;
                            }
                        }
                        Outcome::Fail(_) => {
                            if set_task_state(conn, step.task_id, "in_progress", "error", &c.worker)? {
                                completed.task_state = Some(TaskState::Error);
                            }
                        }
                        Outcome::Retry { .. } => {}
                    }
                    results.push(completed);
                }
                Ok(results)
            })
            .await?;
        if results.iter().any(|r| r.released > 0) {
            self.wakeups.notify_one();
        }
        Ok(results)
    }

    async fn recover_expired(&self, all_in_progress: bool) -> Result<u64, StoreError> {
        let recovered = self
            .tx("recovering expired leases", move |conn| {
                let now = now_ms();
                let condition = if all_in_progress {
                    "state = 'in_progress'"
                } else {
                    "state = 'in_progress' AND lease_expires_at < ?"
                };
                let mut query = sql_query(format!(
                    "SELECT workflow_step_id, task_id, state, attempts FROM tasker_workflow_steps WHERE {condition}"
                ))
                .into_boxed();
                if !all_in_progress {
                    query = query.bind::<BigInt, _>(now);
                }
                let expired = query.load::<StepStateRow>(conn)?;
                let message = "the lease expired: the worker stopped or lost its connection";
                for step in &expired {
                    let back = sql_query(
                        "UPDATE tasker_workflow_steps
                         SET state = CASE WHEN attempts >= max_attempts THEN 'error' ELSE 'ready' END,
                           run_at = ?, lease_expires_at = NULL, worker_id = NULL, last_error = ?, updated_at = ?
                         WHERE workflow_step_id = ? RETURNING workflow_step_id, task_id, state, attempts",
                    )
                    .bind::<BigInt, _>(now)
                    .bind::<Text, _>(lease_expired_error())
                    .bind::<BigInt, _>(now)
                    .bind::<BigInt, _>(step.workflow_step_id)
                    .get_result::<StepStateRow>(conn)?;
                    step_audit(conn, (back.workflow_step_id, back.task_id), Some("in_progress"), &back.state, Some(back.attempts), "lease-recovery", Some(message))?;
                    if back.state == "error" {
                        set_task_state(conn, back.task_id, "in_progress", "error", "lease-recovery")?;
                    }
                }
                Ok(expired.len() as u64)
            })
            .await?;
        if recovered > 0 {
            self.wakeups.notify_one();
        }
        Ok(recovered)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wakeups.notified()).await;
    }

    async fn operator_action(&self, action: OperatorAction, actor: &str) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.tx("applying an operator action", move |conn| {
            operator::run_now(operator::apply(&mut SqliteOps { conn }, &action, &actor))
        })
        .await?;
        self.wakeups.notify_one();
        Ok(())
    }

    async fn task(&self, task_id: TaskId) -> Result<TaskRecord, StoreError> {
        let (task, steps) = self
            .tx("reading a task", move |conn| {
                let task = sql_query(task_select("WHERE t.task_id = ?"))
                    .bind::<BigInt, _>(task_id.0)
                    .get_results::<TaskRow>(conn)?
                    .pop()
                    .ok_or(TxError::Store(StoreError::NotFound {
                        what: "task",
                        id: task_id.0,
                    }))?;
                let steps = sql_query(
                    "SELECT s.workflow_step_id, s.name, s.state, s.attempts, s.max_attempts, s.results,
                            s.last_error, s.run_at AS run_at_ms,
                            COALESCE((SELECT json_group_array(name) FROM (
                                SELECT p.name AS name FROM tasker_workflow_step_edges e
                                JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
                                WHERE e.to_step_id = s.workflow_step_id ORDER BY p.position)), '[]') AS depends_on
                     FROM tasker_workflow_steps s WHERE s.task_id = ? ORDER BY s.position",
                )
                .bind::<BigInt, _>(task_id.0)
                .load::<StepRow>(conn)?;
                Ok((task, steps))
            })
            .await?;
        let steps = steps
            .into_iter()
            .map(StepRow::into_record)
            .collect::<Result<_, _>>()?;
        task.into_record(steps)
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let filter = filter.clone();
        let rows = self
            .tx("listing tasks", move |conn| {
                Ok(sql_query(task_select(
                    "WHERE (?1 IS NULL OR ns.name = ?1) AND (?2 IS NULL OR nt.name = ?2)
                       AND (?3 IS NULL OR nt.version = ?3) AND (?4 IS NULL OR t.state = ?4)
                     ORDER BY t.created_at DESC, t.task_id DESC LIMIT ?5 OFFSET ?6",
                ))
                .bind::<Nullable<Text>, _>(filter.namespace.as_deref())
                .bind::<Nullable<Text>, _>(filter.name.as_deref())
                .bind::<Nullable<Text>, _>(filter.version.as_deref())
                .bind::<Nullable<Text>, _>(filter.state.map(|s| s.as_str()))
                .bind::<BigInt, _>(i64::from(if filter.limit == 0 {
                    100
                } else {
                    filter.limit
                }))
                .bind::<BigInt, _>(i64::from(filter.offset))
                .load::<TaskRow>(conn)?)
            })
            .await?;
        rows.into_iter()
            .map(|r| r.into_record(Vec::new()))
            .collect()
    }

    async fn transitions(&self, task_id: TaskId) -> Result<Vec<Transition>, StoreError> {
        let rows = self
            .tx("reading transitions", move |conn| {
                Ok(sql_query(
                    "SELECT * FROM (
                       SELECT task_id, NULL AS workflow_step_id, from_state, to_state, NULL AS attempt, actor,
                              NULL AS error, created_at AS at_ms, 0 AS kind, task_transition_id AS seq
                       FROM tasker_task_transitions WHERE task_id = ?1
                       UNION ALL
                       SELECT task_id, workflow_step_id, from_state, to_state, attempt, actor, error,
                              created_at AS at_ms, 1 AS kind, workflow_step_transition_id AS seq
                       FROM tasker_workflow_step_transitions WHERE task_id = ?1)
                     ORDER BY at_ms, kind, seq",
                )
                .bind::<BigInt, _>(task_id.0)
                .load::<TransitionRow>(conn)?)
            })
            .await?;
        Ok(rows.into_iter().map(Transition::from).collect())
    }

    async fn task_of_step(&self, step_id: StepId) -> Result<TaskId, StoreError> {
        self.tx("reading a step", move |conn| {
            Ok(TaskId(step_state(conn, step_id.0)?.task_id))
        })
        .await
    }

    async fn ready_steps(&self) -> Result<i64, StoreError> {
        self.tx("counting ready steps", |conn| {
            Ok(sql_query(
                "SELECT count(*) AS count FROM tasker_workflow_steps WHERE state = 'ready' AND run_at <= ?",
            )
            .bind::<BigInt, _>(now_ms())
            .get_result::<CountRow>(conn)?
            .count)
        })
        .await
    }

    async fn task_counts(&self) -> Result<Vec<(TaskState, i64)>, StoreError> {
        let rows = self
            .tx("counting tasks", |conn| {
                Ok(sql_query("SELECT state, count(*) AS count FROM tasker_tasks GROUP BY state ORDER BY state")
                    .load::<StateCountRow>(conn)?)
            })
            .await?;
        rows.into_iter().map(StateCountRow::into_pair).collect()
    }
}

fn task_select(tail: &str) -> String {
    format!(
        "SELECT t.task_id, ns.name AS namespace, nt.name, nt.version, t.state, t.context, t.identity_key,
                t.initiator, t.source_system, t.reason, t.tags, t.created_at AS created_ms,
                t.updated_at AS updated_ms
         FROM tasker_tasks t
         JOIN tasker_named_tasks nt ON nt.named_task_id = t.named_task_id
         JOIN tasker_task_namespaces ns ON ns.task_namespace_id = nt.task_namespace_id
         {tail}"
    )
}
