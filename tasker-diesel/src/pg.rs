//! The PostgreSQL store: diesel-async with a bb8 pool. Hot paths (create,
//! claim, complete) are single statements with data-modifying CTEs: one
//! round trip each, atomic without an explicit transaction.

use std::sync::Arc;
use std::time::Duration;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text};
use diesel::{sql_query, QueryableByName};
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use serde_json::Value;
use tasker::store::{
    Capabilities, ClaimRequest, ClaimedStep, Completed, Completion, Created, HandlerRecord,
    NewTask, OperatorAction, Outcome, Store, StoreError, TaskFilter, TaskRecord, Transition,
    UnfinishedHandler,
};
use tasker::{StepId, StepState, TaskId, TaskState};
use tokio::sync::Notify;

use crate::operator::{self, StepCounts, Tx, TxError};
use crate::rows::{
    lease_expired_error, parse_state, ClaimRow, CountRow, IdRow, StateCountRow, StepCountsRow,
    StepRow, TaskRow, TransitionRow, UnfinishedRow, STEP_COUNTS_SQL,
};
use crate::MIGRATIONS_POSTGRES;

/// Options of a [`PgStore`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The schema holding tasker's tables (created by `migrate`). Lowercase
    /// letters, digits and `_`.
    pub schema: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// `true` (the default): every write waits for its WAL flush. `false`:
    /// claims, step results and lease changes commit without waiting
    /// (`synchronous_commit = off`); task creation and operator actions
    /// still wait. After a crash of the PostgreSQL *server* the last few
    /// hundred milliseconds of step results may be lost, and those steps
    /// run again, which at-least-once steps allow; nothing is corrupted
    /// and no created task is lost. Roughly halves a chain's per-step time.
    pub synchronous_commit: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: "public".to_owned(),
            pool_size: 10,
            synchronous_commit: true,
        }
    }
}

/// The PostgreSQL store: many workers on many machines.
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    synchronous_commit: bool,
    schema: String,
    channel: String,
    url: String,
    wakeups: Arc<Notify>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .finish()
    }
}

fn db(doing: &'static str) -> impl Fn(diesel::result::Error) -> StoreError {
    move |e| StoreError::database(doing, e)
}

/// A hand-written statement whose text never changes, marked safe to keep
/// prepared: diesel treats every `sql_query` as dynamic SQL and re-plans it
/// on each execution, which for the multi-CTE hot paths costs more than
/// running them. PostgreSQL then plans each prepared statement once per
/// connection (or keeps custom plans where they are better).
struct Prepared<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

const MS: &str = "(extract(epoch from {}) * 1000)::bigint";

fn ms(column: &str) -> String {
    MS.replace("{}", column)
}

impl PgStore {
    /// Connects with default options (schema `public`, 10 connections).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// Connects with `options`. Starts a listener connection for wake-ups.
    pub async fn connect_with(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        if options.schema.is_empty()
            || !options
                .schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Unavailable(format!(
                "invalid schema name {:?}: use lowercase letters, digits and `_`",
                options.schema
            )));
        }
        let schema = options.schema.clone();
        let mut config = ManagerConfig::default();
        config.recycling_method = RecyclingMethod::Fast;
        let setup_schema = schema.clone();
        let commit = if options.synchronous_commit {
            "on"
        } else {
            "off"
        };
        config.custom_setup = Box::new(move |url| {
            let schema = setup_schema.clone();
            Box::pin(async move {
                let mut conn = AsyncPgConnection::establish(url).await?;
                conn.batch_execute(&format!(
                    "SET search_path TO \"{schema}\"; SET synchronous_commit = {commit}"
                ))
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(conn)
            })
        });
        // Fail early, with a clear message, when the server is unreachable
        // (the pool would retry until its timeout).
        drop(AsyncPgConnection::establish(url).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {e}; is the server running and the URL right?",
                redact(url)
            ))
        })?);
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let pool = Pool::builder()
            .max_size(options.pool_size)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("connecting to PostgreSQL failed: {e}"))
            })?;
        let channel = format!("tasker_work_{schema}");
        let wakeups = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(
            url.to_owned(),
            channel.clone(),
            Arc::clone(&wakeups),
        ));
        Ok(PgStore {
            pool,
            synchronous_commit: options.synchronous_commit,
            schema,
            channel,
            url: url.to_owned(),
            wakeups,
            listener,
        })
    }

    /// The schema holding tasker's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn conn(&self) -> Result<PooledConnection<'_, AsyncPgConnection>, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Unavailable(format!("no PostgreSQL connection available: {e}"))
        })
    }

    async fn operator_tx(&self, action: OperatorAction, actor: &str) -> Result<(), TxError> {
        let mut conn = self.conn().await.map_err(TxError::Store)?;
        let channel = self.channel.clone();
        let actor = actor.to_owned();
        let durable = !self.synchronous_commit;
        conn.transaction(async move |conn| -> Result<(), TxError> {
            if durable {
                // Operator actions are acknowledged to a person: durable.
                conn.batch_execute("SET LOCAL synchronous_commit = on")
                    .await?;
            }
            operator::apply(&mut PgOps { conn }, &action, &actor).await?;
            sql_query("SELECT pg_notify($1, '')")
                .bind::<Text, _>(&channel)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    }
}

#[derive(QueryableByName)]
struct StateRow {
    #[diesel(sql_type = Text)]
    state: String,
}

/// The operator primitives on one PostgreSQL connection in a transaction.
struct PgOps<'c> {
    conn: &'c mut AsyncPgConnection,
}

impl PgOps<'_> {
    /// Locks one row and returns its state; `NotFound` names `what`.
    async fn lock_state<T: std::str::FromStr<Err = tasker::UnknownState>>(
        &mut self,
        sql: &'static str,
        what: &'static str,
        id: i64,
    ) -> Tx<T> {
        let row = sql_query(sql)
            .bind::<BigInt, _>(id)
            .get_results::<StateRow>(self.conn)
            .await?
            .pop()
            .ok_or(TxError::Store(StoreError::NotFound { what, id }))?;
        Ok(parse_state(&row.state)?)
    }
}

impl operator::Primitives for PgOps<'_> {
    async fn lock_task(&mut self, task_id: i64) -> Tx<TaskState> {
        self.lock_state(
            "SELECT state FROM tasker_tasks WHERE task_id = $1 FOR UPDATE",
            "task",
            task_id,
        )
        .await
    }

    async fn task_of_step(&mut self, step_id: i64) -> Tx<i64> {
        task_of_step(self.conn, step_id).await
    }

    async fn lock_step(&mut self, step_id: i64) -> Tx<StepState> {
        self.lock_state(
            "SELECT state FROM tasker_workflow_steps WHERE workflow_step_id = $1 FOR UPDATE",
            "step",
            step_id,
        )
        .await
    }

    async fn retry_failed(&mut self, task_id: i64, step_id: Option<i64>, actor: &str) -> Tx<()> {
        sql_query(
            "WITH s AS (
               UPDATE tasker_workflow_steps SET state = 'ready', run_at = now(),
                 max_attempts = attempts + attempt_budget, updated_at = now()
               WHERE task_id = $1 AND state = 'error' AND ($2::bigint IS NULL OR workflow_step_id = $2)
               RETURNING workflow_step_id, task_id, attempts)
             INSERT INTO tasker_workflow_step_transitions
               (workflow_step_id, task_id, from_state, to_state, attempt, actor)
             SELECT workflow_step_id, task_id, 'error', 'ready', attempts, $3 FROM s",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Nullable<BigInt>, _>(step_id)
        .bind::<Text, _>(actor)
        .execute(self.conn)
        .await?;
        Ok(())
    }

    async fn close_steps(&mut self, task_id: i64, to: StepState, actor: &str) -> Tx<()> {
        sql_query(
            "WITH old AS (
               SELECT workflow_step_id, task_id, state, attempts FROM tasker_workflow_steps
               WHERE task_id = $1 AND state IN ('pending', 'ready', 'in_progress', 'error')
               FOR UPDATE),
             s AS (
               UPDATE tasker_workflow_steps w SET state = $3, lease_expires_at = NULL, updated_at = now()
               FROM old WHERE w.workflow_step_id = old.workflow_step_id
               RETURNING w.workflow_step_id),
             audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, attempt, actor)
               SELECT old.workflow_step_id, old.task_id, old.state, $3, old.attempts, $2
               FROM old JOIN s ON s.workflow_step_id = old.workflow_step_id)
             UPDATE tasker_tasks SET unfinished_steps = 0, updated_at = now() WHERE task_id = $1",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Text, _>(actor)
        .bind::<Text, _>(to.as_str())
        .execute(self.conn)
        .await?;
        Ok(())
    }

    async fn cancel_from(&mut self, step_id: i64, actor: &str) -> Tx<()> {
        sql_query(
            "WITH RECURSIVE down(id) AS (
               SELECT $1::bigint
               UNION SELECT e.to_step_id FROM tasker_workflow_step_edges e JOIN down ON e.from_step_id = down.id
             ), old AS (
               SELECT s.workflow_step_id, s.task_id, s.state, s.attempts
               FROM tasker_workflow_steps s JOIN down ON s.workflow_step_id = down.id
               WHERE s.state IN ('pending', 'ready', 'in_progress', 'error')
               FOR UPDATE OF s
             ), upd AS (
               UPDATE tasker_workflow_steps w SET state = 'cancelled', lease_expires_at = NULL,
                 updated_at = now()
               FROM old WHERE w.workflow_step_id = old.workflow_step_id
               RETURNING w.workflow_step_id, w.task_id
             ), audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, attempt, actor)
               SELECT old.workflow_step_id, old.task_id, old.state, 'cancelled', old.attempts, $2
               FROM old JOIN upd ON upd.workflow_step_id = old.workflow_step_id
             )
             UPDATE tasker_tasks t SET unfinished_steps = t.unfinished_steps - c.n, updated_at = now()
             FROM (SELECT task_id, count(*)::int AS n FROM upd GROUP BY task_id) c
             WHERE t.task_id = c.task_id",
        )
        .bind::<BigInt, _>(step_id)
        .bind::<Text, _>(actor)
        .execute(self.conn)
        .await?;
        Ok(())
    }

    async fn resolve_step(
        &mut self,
        step_id: i64,
        from: StepState,
        output: &Value,
        actor: &str,
    ) -> Tx<()> {
        sql_query(
            "WITH s AS (
               UPDATE tasker_workflow_steps SET state = 'resolved_manually', results = $2::jsonb,
                 lease_expires_at = NULL, updated_at = now()
               WHERE workflow_step_id = $1
               RETURNING workflow_step_id, task_id, attempts),
             audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, attempt, actor)
               SELECT workflow_step_id, task_id, $3, 'resolved_manually', attempts, $4 FROM s),
             released AS (
               UPDATE tasker_workflow_steps c SET pending_parents = c.pending_parents - 1,
                 state = CASE WHEN c.pending_parents = 1 AND c.state = 'pending' THEN 'ready' ELSE c.state END,
                 updated_at = now()
               FROM tasker_workflow_step_edges e, s
               WHERE e.from_step_id = s.workflow_step_id AND c.workflow_step_id = e.to_step_id
               RETURNING c.workflow_step_id, c.task_id, c.state),
             released_audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, actor)
               SELECT workflow_step_id, task_id, 'pending', 'ready', $4 FROM released WHERE state = 'ready')
             UPDATE tasker_tasks t SET unfinished_steps = t.unfinished_steps - 1, updated_at = now()
             FROM s WHERE t.task_id = s.task_id",
        )
        .bind::<BigInt, _>(step_id)
        .bind::<Text, _>(output.to_string())
        .bind::<Text, _>(from.as_str())
        .bind::<Text, _>(actor)
        .execute(self.conn)
        .await?;
        Ok(())
    }

    async fn step_counts(&mut self, task_id: i64) -> Tx<StepCounts> {
        let row = sql_query(STEP_COUNTS_SQL)
            .bind::<BigInt, _>(task_id)
            .get_result::<StepCountsRow>(self.conn)
            .await?;
        Ok(row.into())
    }

    async fn set_task_state(
        &mut self,
        task_id: i64,
        from: TaskState,
        to: TaskState,
        actor: &str,
    ) -> Tx<()> {
        sql_query(
            "WITH t AS (UPDATE tasker_tasks SET state = $3, updated_at = now()
                        WHERE task_id = $1 AND state = $2 RETURNING task_id)
             INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
             SELECT task_id, $2, $3, $4 FROM t",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Text, _>(from.as_str())
        .bind::<Text, _>(to.as_str())
        .bind::<Text, _>(actor)
        .execute(self.conn)
        .await?;
        Ok(())
    }
}

async fn task_of_step(conn: &mut AsyncPgConnection, step_id: i64) -> Result<i64, TxError> {
    sql_query("SELECT task_id AS id FROM tasker_workflow_steps WHERE workflow_step_id = $1")
        .bind::<BigInt, _>(step_id)
        .get_results::<IdRow>(conn)
        .await?
        .pop()
        .map(|r| r.id)
        .ok_or(TxError::Store(StoreError::NotFound {
            what: "step",
            id: step_id,
        }))
}

/// Hides the passwords of a database URL for messages: the one in the
/// user info (`postgres://user:secret@host`) and any given as a query
/// parameter (`?password=secret`, `sslpassword=`).
pub(crate) fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match base.find("://") {
        Some(scheme) => {
            let rest = &base[scheme + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            match authority.rfind('@') {
                Some(at) => {
                    let user = authority[..at].split(':').next().unwrap_or_default();
                    let hidden = if authority[..at].contains(':') {
                        ":***"
                    } else {
                        ""
                    };
                    format!("{}{user}{hidden}{}", &base[..scheme + 3], &rest[at..])
                }
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden_wherever_they_are() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact("postgres://app@db/app?password=s3cret&sslmode=require"),
            "postgres://app@db/app?password=***&sslmode=require"
        );
        assert_eq!(
            redact("postgres://db/app?sslpassword=x&user=u&PASSWORD=y"),
            "postgres://db/app?sslpassword=***&user=u&PASSWORD=***"
        );
        assert_eq!(redact("postgres://db/app"), "postgres://db/app");
        let odd = redact("postgres://u:p@ss@db/app");
        assert!(!odd.contains("p@ss") && !odd.contains(":p"), "{odd}");
    }
}

/// Listens for wake-up notifications, reconnecting on failure.
async fn listen(url: String, channel: String, wakeups: Arc<Notify>) {
    loop {
        match AsyncPgConnection::establish(&url).await {
            Ok(mut conn) => {
                if let Err(e) = conn.batch_execute(&format!("LISTEN \"{channel}\"")).await {
                    tracing::warn!("LISTEN failed: {e}; relying on polling");
                } else {
                    let mut stream = std::pin::pin!(conn.notifications_stream());
                    while let Some(notification) = stream.next().await {
                        match notification {
                            Ok(_) => wakeups.notify_one(),
                            Err(e) => {
                                tracing::warn!("notification listener failed: {e}; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!("notification listener cannot connect: {e}; relying on polling")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[derive(QueryableByName)]
struct BatchRow {
    #[diesel(embed)]
    result: CompleteRow,
    #[diesel(sql_type = Nullable<BigInt>)]
    next_step_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    next_task_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    next_named_task_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    next_name: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    next_position: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    next_attempts: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    next_max_attempts: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    next_context: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    next_inputs: Option<String>,
}

impl BatchRow {
    fn into_completed(self) -> Result<Completed, StoreError> {
        let mut completed = self.result.into_completed();
        if let (
            Some(step_id),
            Some(task_id),
            Some(named_task_id),
            Some(name),
            Some(position),
            Some(attempts),
            Some(max_attempts),
            Some(context),
            Some(inputs),
        ) = (
            self.next_step_id,
            self.next_task_id,
            self.next_named_task_id,
            self.next_name,
            self.next_position,
            self.next_attempts,
            self.next_max_attempts,
            self.next_context,
            self.next_inputs,
        ) {
            completed.next = Some(
                ClaimRow {
                    workflow_step_id: step_id,
                    task_id,
                    named_task_id,
                    name,
                    position,
                    attempts,
                    max_attempts,
                    context,
                    inputs,
                    task_started: false,
                }
                .into_claimed(),
            );
        }
        Ok(completed)
    }
}

impl CompleteRow {
    fn into_completed(self) -> Completed {
        Completed {
            applied: self.applied > 0,
            released: self.released as u32,
            task_state: self.task_state.and_then(|s| s.parse::<TaskState>().ok()),
            next: None,
        }
    }
}

#[derive(QueryableByName)]
struct CompleteRow {
    #[diesel(sql_type = BigInt)]
    applied: i64,
    #[diesel(sql_type = BigInt)]
    released: i64,
    #[diesel(sql_type = Nullable<Text>)]
    task_state: Option<String>,
}

/// BY_ID: statements that address steps by id compare `state` with a
/// value from their materialized input, not with the literal
/// `'in_progress'`. With the literal, PostgreSQL may prove the partial
/// index `tasker_workflow_steps_leased` usable and scan *all* of it (a
/// hash join) instead of probing the primary key; that index holds an
/// entry for every step that ran since the last vacuum, so the statement
/// grew with the history instead of with its batch (measured in the soak:
/// 2.47 ms and ~700 buffers per batched completion, 1.13 ms and ~430 by
/// key).
///
/// Completes many steps in one statement. Children of several completed
/// parents are decremented by the number of them; a task finished by the
/// batch is reported once, on its highest completed step. A completion that
/// asks for it (`take`) gets one of the children it releases claimed for the
/// same worker (`$4`, lease `$7` seconds), returned with its context and
/// inputs, so a chain needs one round trip per step.
const COMPLETE_BATCH_SQL: &str = "
WITH input AS MATERIALIZED (
  SELECT *, 'in_progress'::text AS running
  FROM unnest($1::bigint[], $2::int[], $3::text[], $6::bool[]) AS i(step_id, attempt, results, take)
), done AS (
  -- `s.state = i.running`, not `= 'in_progress'`: see BY_ID in the docs.
  UPDATE tasker_workflow_steps s SET state = 'complete', results = i.results::jsonb,
    lease_expires_at = NULL, updated_at = now()
  FROM input i
  WHERE s.workflow_step_id = i.step_id AND s.attempts = i.attempt AND s.state = i.running
  RETURNING s.workflow_step_id, s.task_id, s.attempts
), parents_done AS (
  SELECT e.to_step_id, count(*)::int AS n
  FROM tasker_workflow_step_edges e JOIN done ON e.from_step_id = done.workflow_step_id
  GROUP BY e.to_step_id
), candidates AS (
  SELECT DISTINCT ON (e.to_step_id) e.from_step_id, e.to_step_id
  FROM tasker_workflow_step_edges e
  JOIN input i ON i.step_id = e.from_step_id AND i.take
  JOIN done d ON d.workflow_step_id = e.from_step_id
  JOIN parents_done p ON p.to_step_id = e.to_step_id
  JOIN tasker_workflow_steps c ON c.workflow_step_id = e.to_step_id
  WHERE c.pending_parents = p.n AND c.state = 'pending'
  ORDER BY e.to_step_id, e.from_step_id
), take AS (
  SELECT DISTINCT ON (from_step_id) from_step_id, to_step_id FROM candidates
  ORDER BY from_step_id, to_step_id
), released AS (
  UPDATE tasker_workflow_steps c SET pending_parents = c.pending_parents - p.n,
    state = CASE WHEN c.pending_parents = p.n AND c.state = 'pending'
                 THEN CASE WHEN t.to_step_id IS NULL THEN 'ready' ELSE 'in_progress' END
                 ELSE c.state END,
    attempts = c.attempts + CASE WHEN c.pending_parents = p.n AND c.state = 'pending'
                                  AND t.to_step_id IS NOT NULL THEN 1 ELSE 0 END,
    lease_expires_at = CASE WHEN c.pending_parents = p.n AND c.state = 'pending' AND t.to_step_id IS NOT NULL
                            THEN now() + make_interval(secs => $7) ELSE c.lease_expires_at END,
    worker_id = CASE WHEN c.pending_parents = p.n AND c.state = 'pending' AND t.to_step_id IS NOT NULL
                     THEN $4 ELSE c.worker_id END,
    updated_at = now()
  FROM parents_done p LEFT JOIN take t ON t.to_step_id = p.to_step_id
  WHERE c.workflow_step_id = p.to_step_id
  RETURNING c.workflow_step_id, c.task_id, c.state, c.attempts, c.named_task_id, c.name, c.position,
            c.max_attempts
), audit AS (
  -- One insert, ordered: completions, then releases, then claims, so the
  -- audit trail's sequence follows cause and effect.
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, attempt, actor)
  SELECT workflow_step_id, task_id, from_state, to_state, attempt, $4 FROM (
    SELECT 0 AS k, workflow_step_id, task_id, 'in_progress' AS from_state, 'complete' AS to_state,
           attempts AS attempt
    FROM done
    UNION ALL
    SELECT v.k, r.workflow_step_id, r.task_id, v.from_state, v.to_state, v.attempt
    FROM released r
    CROSS JOIN LATERAL (VALUES (1, 'pending', 'ready', NULL::int), (2, 'ready', 'in_progress', r.attempts))
      AS v(k, from_state, to_state, attempt)
    WHERE r.state = 'ready' AND v.k = 1 OR r.state = 'in_progress'
  ) rows
  ORDER BY k, workflow_step_id
), steps_done AS (
  SELECT task_id, count(*)::int AS n, max(workflow_step_id) AS last_step FROM done GROUP BY task_id
), finished AS (
  UPDATE tasker_tasks t SET unfinished_steps = t.unfinished_steps - d.n,
    state = CASE WHEN t.unfinished_steps = d.n AND t.state = 'in_progress'
                 THEN CASE WHEN EXISTS (SELECT 1 FROM tasker_workflow_steps x
                                        WHERE x.task_id = t.task_id AND x.state = 'cancelled')
                           THEN 'cancelled' ELSE 'complete' END
                 ELSE t.state END,
    updated_at = now()
  FROM steps_done d WHERE t.task_id = d.task_id
  RETURNING t.task_id, t.state, t.unfinished_steps
), finished_audit AS (
  INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
  SELECT task_id, 'in_progress', state, $4 FROM finished
  WHERE state IN ('complete', 'cancelled') AND unfinished_steps = 0
), wake AS (
  SELECT pg_notify($5, '') FROM (SELECT 1 FROM released WHERE state = 'ready' LIMIT 1) r
)
SELECT (d.workflow_step_id IS NOT NULL)::int::bigint AS applied,
       (SELECT count(*) FROM released r JOIN tasker_workflow_step_edges e ON e.to_step_id = r.workflow_step_id
        WHERE e.from_step_id = i.step_id AND r.state = 'ready')
         + 0 * (SELECT count(*) FROM wake) AS released,
       (SELECT f.state FROM finished f JOIN steps_done sd ON sd.task_id = f.task_id
        WHERE f.task_id = d.task_id AND f.state IN ('complete', 'cancelled') AND f.unfinished_steps = 0
          AND sd.last_step = i.step_id) AS task_state,
       n.workflow_step_id AS next_step_id, n.task_id AS next_task_id,
       n.named_task_id AS next_named_task_id, n.name AS next_name, n.position AS next_position,
       n.attempts AS next_attempts, n.max_attempts AS next_max_attempts,
       (SELECT t.context::text FROM tasker_tasks t WHERE t.task_id = n.task_id) AS next_context,
       (SELECT COALESCE(json_agg(json_build_array(p.name, COALESCE(pi.results::json, p.results::json))), '[]'::json)::text
        FROM tasker_workflow_step_edges e
        JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
        LEFT JOIN input pi ON pi.step_id = p.workflow_step_id
        WHERE e.to_step_id = n.workflow_step_id) AS next_inputs
FROM input i
LEFT JOIN done d ON d.workflow_step_id = i.step_id
LEFT JOIN take tk ON tk.from_step_id = i.step_id
LEFT JOIN released n ON n.workflow_step_id = tk.to_step_id AND n.state = 'in_progress'";

/// `COMPLETE_BATCH_SQL` without claim on release, for batches where no
/// completion asks for it (cheaper for PostgreSQL to run). Children of several completed parents are decremented by
/// the number of them; a task finished by the batch is reported once, on
/// its highest completed step.
const COMPLETE_BATCH_SIMPLE_SQL: &str = "
WITH input AS MATERIALIZED (
  SELECT *, 'in_progress'::text AS running
  FROM unnest($1::bigint[], $2::int[], $3::text[]) AS i(step_id, attempt, results)
), done AS (
  UPDATE tasker_workflow_steps s SET state = 'complete', results = i.results::jsonb,
    lease_expires_at = NULL, updated_at = now()
  FROM input i
  WHERE s.workflow_step_id = i.step_id AND s.attempts = i.attempt AND s.state = i.running
  RETURNING s.workflow_step_id, s.task_id, s.attempts
), done_audit AS (
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, attempt, actor)
  SELECT workflow_step_id, task_id, 'in_progress', 'complete', attempts, $4 FROM done
), parents_done AS (
  SELECT e.to_step_id, count(*)::int AS n
  FROM tasker_workflow_step_edges e JOIN done ON e.from_step_id = done.workflow_step_id
  GROUP BY e.to_step_id
), released AS (
  UPDATE tasker_workflow_steps c SET pending_parents = c.pending_parents - p.n,
    state = CASE WHEN c.pending_parents = p.n AND c.state = 'pending' THEN 'ready' ELSE c.state END,
    updated_at = now()
  FROM parents_done p WHERE c.workflow_step_id = p.to_step_id
  RETURNING c.workflow_step_id, c.task_id, c.state
), released_audit AS (
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, actor)
  SELECT workflow_step_id, task_id, 'pending', 'ready', $4 FROM released WHERE state = 'ready'
), steps_done AS (
  SELECT task_id, count(*)::int AS n, max(workflow_step_id) AS last_step FROM done GROUP BY task_id
), finished AS (
  UPDATE tasker_tasks t SET unfinished_steps = t.unfinished_steps - d.n,
    state = CASE WHEN t.unfinished_steps = d.n AND t.state = 'in_progress'
                 THEN CASE WHEN EXISTS (SELECT 1 FROM tasker_workflow_steps x
                                        WHERE x.task_id = t.task_id AND x.state = 'cancelled')
                           THEN 'cancelled' ELSE 'complete' END
                 ELSE t.state END,
    updated_at = now()
  FROM steps_done d WHERE t.task_id = d.task_id
  RETURNING t.task_id, t.state, t.unfinished_steps
), finished_audit AS (
  INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
  SELECT task_id, 'in_progress', state, $4 FROM finished
  WHERE state IN ('complete', 'cancelled') AND unfinished_steps = 0
), wake AS (
  SELECT pg_notify($5, '') FROM (SELECT 1 FROM released WHERE state = 'ready' LIMIT 1) r
)
SELECT (d.workflow_step_id IS NOT NULL)::int::bigint AS applied,
       (SELECT count(*) FROM released r JOIN tasker_workflow_step_edges e ON e.to_step_id = r.workflow_step_id
        WHERE e.from_step_id = i.step_id AND r.state = 'ready')
         + 0 * (SELECT count(*) FROM wake) AS released,
       (SELECT f.state FROM finished f JOIN steps_done sd ON sd.task_id = f.task_id
        WHERE f.task_id = d.task_id AND f.state IN ('complete', 'cancelled') AND f.unfinished_steps = 0
          AND sd.last_step = i.step_id) AS task_state,
       NULL::bigint AS next_step_id, NULL::bigint AS next_task_id, NULL::bigint AS next_named_task_id,
       NULL::text AS next_name, NULL::int AS next_position, NULL::int AS next_attempts,
       NULL::int AS next_max_attempts, NULL::text AS next_context, NULL::text AS next_inputs
FROM input i LEFT JOIN done d ON d.workflow_step_id = i.step_id";

const RETRY_SQL: &str = "
WITH s AS (
  UPDATE tasker_workflow_steps SET state = 'ready',
    run_at = now() + make_interval(secs => $5), lease_expires_at = NULL, worker_id = NULL,
    last_error = $2::jsonb, updated_at = now()
  WHERE workflow_step_id = $1 AND attempts = $3 AND state = 'in_progress'
  RETURNING workflow_step_id, task_id
), audit AS (
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, attempt, actor, error)
  SELECT workflow_step_id, task_id, 'in_progress', 'ready', $3, $4, $6 FROM s
)
SELECT count(*) AS applied, 0::bigint AS released, NULL::text AS task_state FROM s";

const FAIL_SQL: &str = "
WITH s AS (
  UPDATE tasker_workflow_steps SET state = 'error', lease_expires_at = NULL, last_error = $2::jsonb,
    updated_at = now()
  WHERE workflow_step_id = $1 AND attempts = $3 AND state = 'in_progress'
  RETURNING workflow_step_id, task_id
), audit AS (
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, attempt, actor, error)
  SELECT workflow_step_id, task_id, 'in_progress', 'error', $3, $4, $5 FROM s
), t AS (
  UPDATE tasker_tasks SET state = 'error', updated_at = now()
  WHERE task_id IN (SELECT task_id FROM s) AND state = 'in_progress'
  RETURNING task_id
), t_audit AS (
  INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
  SELECT task_id, 'in_progress', 'error', $4 FROM t
)
SELECT (SELECT count(*) FROM s) AS applied, 0::bigint AS released,
       (SELECT 'error'::text FROM t) AS task_state";

fn recover_sql(all: bool) -> String {
    let condition = if all {
        "state = 'in_progress'"
    } else {
        "state = 'in_progress' AND lease_expires_at < now()"
    };
    format!(
        "WITH expired AS (
           SELECT workflow_step_id FROM tasker_workflow_steps WHERE {condition}
           ORDER BY lease_expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED
         ), back AS (
           UPDATE tasker_workflow_steps s
           SET state = CASE WHEN s.attempts >= s.max_attempts THEN 'error' ELSE 'ready' END,
             run_at = now(), lease_expires_at = NULL, worker_id = NULL, last_error = $1::jsonb,
             updated_at = now()
           FROM expired WHERE s.workflow_step_id = expired.workflow_step_id
           RETURNING s.workflow_step_id, s.task_id, s.state, s.attempts
         ), audit AS (
           INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, attempt, actor, error)
           SELECT workflow_step_id, task_id, 'in_progress', state, attempts, 'lease-recovery', $2 FROM back
         ), t AS (
           UPDATE tasker_tasks SET state = 'error', updated_at = now()
           WHERE task_id IN (SELECT task_id FROM back WHERE state = 'error') AND state = 'in_progress'
           RETURNING task_id
         ), t_audit AS (
           INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
           SELECT task_id, 'in_progress', 'error', 'lease-recovery' FROM t
         ), wake AS (
           SELECT pg_notify($3, '') FROM (SELECT 1 FROM back WHERE state = 'ready' LIMIT 1) r
         )
         SELECT (SELECT count(*) FROM back) + 0 * (SELECT count(*) FROM wake) AS count"
    )
}

const CLAIM_SQL: &str = "
WITH picked AS (
  SELECT workflow_step_id FROM tasker_workflow_steps
  WHERE state = 'ready' AND run_at <= now() AND named_task_id = ANY($1)
  ORDER BY run_at, workflow_step_id
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE tasker_workflow_steps s SET state = 'in_progress', attempts = s.attempts + 1,
    lease_expires_at = now() + make_interval(secs => $3), worker_id = $4, updated_at = now()
  FROM picked WHERE s.workflow_step_id = picked.workflow_step_id
  RETURNING s.workflow_step_id, s.task_id, s.named_task_id, s.name, s.position, s.attempts, s.max_attempts
), step_audit AS (
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, attempt, actor)
  SELECT workflow_step_id, task_id, 'ready', 'in_progress', attempts, $4 FROM claimed
), started AS (
  UPDATE tasker_tasks t SET state = 'in_progress', updated_at = now()
  WHERE t.task_id IN (SELECT task_id FROM claimed) AND t.state = 'pending'
  RETURNING t.task_id
), task_audit AS (
  INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
  SELECT task_id, 'pending', 'in_progress', $4 FROM started
)
SELECT c.workflow_step_id, c.task_id, c.named_task_id, c.name, c.position, c.attempts, c.max_attempts,
       t.context::text AS context,
       COALESCE((SELECT json_agg(json_build_array(p.name, p.results))
                 FROM tasker_workflow_step_edges e
                 JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
                 WHERE e.to_step_id = c.workflow_step_id), '[]'::json)::text AS inputs,
       c.task_id IN (SELECT task_id FROM started) AS task_started
FROM claimed c JOIN tasker_tasks t ON t.task_id = c.task_id";

const CREATE_SQL: &str = "
WITH task AS (
  INSERT INTO tasker_tasks (named_task_id, state, context, identity_key, initiator, source_system,
                            reason, tags, unfinished_steps)
  VALUES ($1, 'pending', $2::jsonb, $3, $4, $5, $6, $7::jsonb, $8)
  ON CONFLICT (identity_key) DO NOTHING
  RETURNING task_id
), steps AS (
  INSERT INTO tasker_workflow_steps (task_id, named_task_id, name, position, state, max_attempts,
                                     attempt_budget, timeout_ms, pending_parents)
  SELECT task.task_id, $1, s.name, s.position,
         CASE WHEN s.parents = 0 THEN 'ready' ELSE 'pending' END,
         s.max_attempts, s.max_attempts, s.timeout_ms, s.parents
  FROM task, unnest($9::text[], $10::int[], $11::int[], $12::bigint[], $13::int[])
       AS s(name, position, max_attempts, timeout_ms, parents)
  RETURNING workflow_step_id, task_id, position, state
), edges AS (
  INSERT INTO tasker_workflow_step_edges (from_step_id, to_step_id, task_id)
  SELECT f.workflow_step_id, t.workflow_step_id, f.task_id
  FROM unnest($14::int[], $15::int[]) AS e(from_pos, to_pos)
  JOIN steps f ON f.position = e.from_pos
  JOIN steps t ON t.position = e.to_pos
), task_audit AS (
  INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
  SELECT task_id, NULL, 'pending', $16 FROM task
), step_audit AS (
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, actor)
  SELECT workflow_step_id, task_id, NULL, state, $16 FROM steps
), wake AS (
  SELECT pg_notify($17, '') FROM task
)
SELECT task_id AS id FROM task WHERE (SELECT count(*) FROM wake) >= 0";

/// Writes one task with its steps and edges: one statement.
async fn create_one(
    conn: &mut AsyncPgConnection,
    task: &NewTask,
    channel: &str,
) -> Result<Created, diesel::result::Error> {
    let names: Vec<&str> = task.steps.iter().map(|s| s.name.as_str()).collect();
    let positions: Vec<i32> = task.steps.iter().map(|s| s.index as i32).collect();
    let max_attempts: Vec<i32> = task.steps.iter().map(|s| s.max_attempts as i32).collect();
    let timeouts: Vec<Option<i64>> = task
        .steps
        .iter()
        .map(|s| s.timeout.map(|t| t.as_millis() as i64))
        .collect();
    let parents: Vec<i32> = task.steps.iter().map(|s| s.parents.len() as i32).collect();
    let (from, to): (Vec<i32>, Vec<i32>) = task
        .steps
        .iter()
        .flat_map(|s| s.parents.iter().map(move |p| (*p as i32, s.index as i32)))
        .unzip();
    let actor = task
        .initiator
        .clone()
        .unwrap_or_else(|| "tasker".to_owned());
    let rows = Prepared(
        sql_query(CREATE_SQL)
            .bind::<BigInt, _>(task.handler_id)
            .bind::<Text, _>(task.context.to_string())
            .bind::<Nullable<Text>, _>(task.identity_key.as_deref())
            .bind::<Nullable<Text>, _>(task.initiator.as_deref())
            .bind::<Nullable<Text>, _>(task.source_system.as_deref())
            .bind::<Nullable<Text>, _>(task.reason.as_deref())
            .bind::<Text, _>(Value::from(task.tags.clone()).to_string())
            .bind::<Integer, _>(task.steps.len() as i32)
            .bind::<Array<Text>, _>(names)
            .bind::<Array<Integer>, _>(positions)
            .bind::<Array<Integer>, _>(max_attempts)
            .bind::<Array<Nullable<BigInt>>, _>(timeouts)
            .bind::<Array<Integer>, _>(parents)
            .bind::<Array<Integer>, _>(from)
            .bind::<Array<Integer>, _>(to)
            .bind::<Text, _>(actor)
            .bind::<Text, _>(channel),
    )
    .load::<IdRow>(conn)
    .await?;
    if let Some(row) = rows.into_iter().next() {
        return Ok(Created::New(TaskId(row.id)));
    }
    // The identity key exists (possibly committed after this statement's
    // snapshot): read it with a fresh one.
    let key = task.identity_key.as_deref().unwrap_or_default();
    let existing = sql_query("SELECT task_id AS id FROM tasker_tasks WHERE identity_key = $1")
        .bind::<Text, _>(key)
        .get_result::<IdRow>(conn)
        .await?;
    Ok(Created::Existing(TaskId(existing.id)))
}

impl Store for PgStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            distributed: true,
            skip_locked: true,
            notify: true,
            advisory_locks: true,
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("connecting to migrate failed: {e}")))?;
        // One migrator at a time across workers starting together.
        conn.batch_execute(&format!(
            "SELECT pg_advisory_lock(hashtext('tasker_migrate_{0}'));
             CREATE SCHEMA IF NOT EXISTS \"{0}\";
             SET search_path TO \"{0}\";",
            self.schema
        ))
        .await
        .map_err(db("preparing to migrate"))?;
        let result = tokio::task::spawn_blocking(move || {
            use diesel_migrations::MigrationHarness;
            let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
            let outcome = harness
                .run_pending_migrations(MIGRATIONS_POSTGRES)
                .map(|applied| applied.len())
                .map_err(|e| StoreError::Database {
                    message: format!("applying migrations failed: {e}"),
                    source: None,
                });
            (outcome, harness.into_inner())
        })
        .await
        .map_err(|e| StoreError::Database {
            message: format!("the migration task failed: {e}"),
            source: None,
        })?;
        let (outcome, mut conn) = result;
        let _ = conn.batch_execute("SELECT pg_advisory_unlock_all()").await;
        let applied = outcome?;
        if applied > 0 {
            tracing::info!(applied, schema = %self.schema, "applied migrations");
        }
        Ok(())
    }

    async fn migrations_current(&self) -> Result<bool, StoreError> {
        use diesel::migration::MigrationSource;
        // Read-only: a health check must not create the migrations table.
        let mut conn = self.conn().await?;
        let table = format!("\"{}\".__diesel_schema_migrations", self.schema);
        let exists = sql_query(
            "SELECT count(*) AS count FROM (SELECT to_regclass($1) AS t) r WHERE t IS NOT NULL",
        )
        .bind::<Text, _>(&table)
        .get_result::<CountRow>(&mut conn)
        .await
        .map_err(db("checking for the migrations table"))?
        .count
            > 0;
        if !exists {
            return Ok(false);
        }
        #[derive(QueryableByName)]
        struct VersionRow {
            #[diesel(sql_type = Text)]
            version: String,
        }
        let applied: Vec<String> = sql_query(format!("SELECT version FROM {table}"))
            .load::<VersionRow>(&mut conn)
            .await
            .map_err(db("reading applied migrations"))?
            .into_iter()
            .map(|r| r.version)
            .collect();
        let expected = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS_POSTGRES)
            .map_err(|e| StoreError::Database {
                message: format!("reading the embedded migrations failed: {e}"),
                source: None,
            })?;
        Ok(expected
            .iter()
            .all(|m| applied.contains(&m.name().version().to_string())))
    }

    async fn register_handler(&self, handler: &HandlerRecord) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        let id = sql_query(
            "WITH ns AS (
               INSERT INTO tasker_task_namespaces (name) VALUES ($1)
               ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
               RETURNING task_namespace_id
             ), nt AS (
               INSERT INTO tasker_named_tasks (task_namespace_id, name, version, fingerprint, description)
               SELECT task_namespace_id, $2, $3, $4, $5 FROM ns
               ON CONFLICT (task_namespace_id, name, version, fingerprint)
               DO UPDATE SET description = EXCLUDED.description
               RETURNING named_task_id
             ), steps AS (
               INSERT INTO tasker_named_steps (named_task_id, name, position)
               SELECT nt.named_task_id, s.name, (s.n - 1)::int FROM nt,
                 unnest($6::text[]) WITH ORDINALITY AS s(name, n)
               ON CONFLICT (named_task_id, position) DO NOTHING
             )
             SELECT named_task_id AS id FROM nt",
        )
        .bind::<Text, _>(&handler.namespace)
        .bind::<Text, _>(&handler.name)
        .bind::<Text, _>(&handler.version)
        .bind::<Text, _>(&handler.fingerprint)
        .bind::<Text, _>(&handler.description)
        .bind::<Array<Text>, _>(&handler.steps)
        .get_result::<IdRow>(&mut conn)
        .await
        .map_err(db("registering a handler"))?;
        Ok(id.id)
    }

    async fn unfinished_handlers(&self) -> Result<Vec<UnfinishedHandler>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = sql_query(
            "SELECT ns.name AS namespace, nt.name, nt.version, nt.fingerprint, count(*) AS tasks
             FROM tasker_tasks t
             JOIN tasker_named_tasks nt ON nt.named_task_id = t.named_task_id
             JOIN tasker_task_namespaces ns ON ns.task_namespace_id = nt.task_namespace_id
             WHERE t.state IN ('pending', 'in_progress', 'error')
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        )
        .load::<UnfinishedRow>(&mut conn)
        .await
        .map_err(db("listing unfinished handlers"))?;
        Ok(rows.into_iter().map(UnfinishedHandler::from).collect())
    }

    async fn create_task(&self, task: NewTask) -> Result<Created, StoreError> {
        if !self.synchronous_commit {
            // Creation is acknowledged to a caller: it must be durable.
            let mut created = self.create_tasks(vec![task]).await?;
            return Ok(created.pop().expect("one task in, one out"));
        }
        let mut conn = self.conn().await?;
        create_one(&mut conn, &task, &self.channel)
            .await
            .map_err(db("creating a task"))
    }

    async fn create_tasks(&self, tasks: Vec<NewTask>) -> Result<Vec<Created>, StoreError> {
        let mut conn = self.conn().await?;
        let channel = self.channel.clone();
        let durable = !self.synchronous_commit;
        conn.transaction(
            async move |conn| -> Result<Vec<Created>, diesel::result::Error> {
                if durable {
                    // Creation is acknowledged to a caller: it waits for
                    // the disk even with relaxed commits for step results.
                    conn.batch_execute("SET LOCAL synchronous_commit = on")
                        .await?;
                }
                let mut created = Vec::with_capacity(tasks.len());
                for task in &tasks {
                    created.push(create_one(conn, task, &channel).await?);
                }
                Ok(created)
            },
        )
        .await
        .map_err(db("creating tasks"))
    }

    async fn claim_steps(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedStep>, StoreError> {
        if request.handler_ids.is_empty() || request.limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let rows = Prepared(
            sql_query(CLAIM_SQL)
                .bind::<Array<BigInt>, _>(request.handler_ids)
                .bind::<Integer, _>(request.limit as i32)
                .bind::<Double, _>(request.lease.as_secs_f64())
                .bind::<Text, _>(request.worker),
        )
        .load::<ClaimRow>(&mut conn)
        .await
        .map_err(db("claiming steps"))?;
        Ok(rows.into_iter().map(ClaimRow::into_claimed).collect())
    }

    async fn renew_leases(
        &self,
        steps: &[(StepId, u32)],
        lease: Duration,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let ids: Vec<i64> = steps.iter().map(|(id, _)| id.0).collect();
        let attempts: Vec<i32> = steps.iter().map(|(_, a)| *a as i32).collect();
        sql_query(
            // Steps by id through the primary key (see BY_ID in the docs).
            "WITH l AS MATERIALIZED (
               SELECT id, attempt, 'in_progress'::text AS running
               FROM unnest($1::bigint[], $2::int[]) AS l(id, attempt))
             UPDATE tasker_workflow_steps s SET lease_expires_at = now() + make_interval(secs => $3)
             FROM l WHERE s.workflow_step_id = l.id AND s.attempts = l.attempt AND s.state = l.running",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Integer>, _>(attempts)
        .bind::<Double, _>(lease.as_secs_f64())
        .execute(&mut conn)
        .await
        .map_err(db("renewing leases"))?;
        Ok(())
    }

    async fn complete_steps(
        &self,
        completions: &[Completion],
    ) -> Result<Vec<Completed>, StoreError> {
        let mut conn = self.conn().await?;
        let mut results: Vec<Option<Completed>> = vec![None; completions.len()];
        // Successes: one statement for all of them.
        let successes: Vec<(usize, &Completion, &Value)> = completions
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match &c.outcome {
                Outcome::Complete(output) => Some((i, c, output)),
                _ => None,
            })
            .collect();
        if let Some((_, first, _)) = <[_]>::first(&successes) {
            let ids: Vec<i64> = successes.iter().map(|(_, c, _)| c.step_id.0).collect();
            let attempts: Vec<i32> = successes.iter().map(|(_, c, _)| c.attempt as i32).collect();
            let outputs: Vec<String> = successes.iter().map(|(_, _, o)| o.to_string()).collect();
            let take: Vec<bool> = successes
                .iter()
                .map(|(_, c, _)| c.take_next.is_some())
                .collect();
            let lease = successes
                .iter()
                .find_map(|(_, c, _)| c.take_next)
                .unwrap_or_default();
            let query = if take.iter().any(|t| *t) {
                sql_query(COMPLETE_BATCH_SQL)
                    .into_boxed::<diesel::pg::Pg>()
                    .bind::<Array<BigInt>, _>(ids)
                    .bind::<Array<Integer>, _>(attempts)
                    .bind::<Array<Text>, _>(outputs)
                    .bind::<Text, _>(&first.worker)
                    .bind::<Text, _>(&self.channel)
                    .bind::<Array<diesel::sql_types::Bool>, _>(take)
                    .bind::<Double, _>(lease.as_secs_f64())
            } else {
                sql_query(COMPLETE_BATCH_SIMPLE_SQL)
                    .into_boxed::<diesel::pg::Pg>()
                    .bind::<Array<BigInt>, _>(ids)
                    .bind::<Array<Integer>, _>(attempts)
                    .bind::<Array<Text>, _>(outputs)
                    .bind::<Text, _>(&first.worker)
                    .bind::<Text, _>(&self.channel)
            };
            let rows = Prepared(query)
                .load::<BatchRow>(&mut conn)
                .await
                .map_err(db("recording step results"))?;
            for ((i, _, _), row) in successes.iter().zip(rows) {
                results[*i] = Some(row.into_completed()?);
            }
        }
        // Failures: one statement each (they are rare).
        for (i, completion) in completions.iter().enumerate() {
            let query = match &completion.outcome {
                Outcome::Complete(_) => continue,
                Outcome::Retry { error, delay } => sql_query(RETRY_SQL)
                    .into_boxed::<diesel::pg::Pg>()
                    .bind::<BigInt, _>(completion.step_id.0)
                    .bind::<Text, _>(serde_json::to_string(error).expect("errors serialize"))
                    .bind::<Integer, _>(completion.attempt as i32)
                    .bind::<Text, _>(&completion.worker)
                    .bind::<Double, _>(delay.as_secs_f64())
                    .bind::<Text, _>(error.to_string()),
                Outcome::Fail(error) => sql_query(FAIL_SQL)
                    .into_boxed::<diesel::pg::Pg>()
                    .bind::<BigInt, _>(completion.step_id.0)
                    .bind::<Text, _>(serde_json::to_string(error).expect("errors serialize"))
                    .bind::<Integer, _>(completion.attempt as i32)
                    .bind::<Text, _>(&completion.worker)
                    .bind::<Text, _>(error.to_string()),
            };
            let row = query
                .get_result::<CompleteRow>(&mut conn)
                .await
                .map_err(db("recording a step failure"))?;
            results[i] = Some(row.into_completed());
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every completion has a result"))
            .collect())
    }

    async fn recover_expired(&self, all_in_progress: bool) -> Result<u64, StoreError> {
        let mut conn = self.conn().await?;
        let row = sql_query(recover_sql(all_in_progress))
            .bind::<Text, _>(lease_expired_error())
            .bind::<Text, _>("the lease expired: the worker stopped or lost its connection")
            .bind::<Text, _>(&self.channel)
            .get_result::<CountRow>(&mut conn)
            .await
            .map_err(db("recovering expired leases"))?;
        Ok(row.count as u64)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wakeups.notified()).await;
    }

    async fn operator_action(&self, action: OperatorAction, actor: &str) -> Result<(), StoreError> {
        self.operator_tx(action, actor)
            .await
            .map_err(|e| e.into_store("applying an operator action"))
    }

    async fn task(&self, task_id: TaskId) -> Result<TaskRecord, StoreError> {
        let mut conn = self.conn().await?;
        let task = sql_query(task_select("WHERE t.task_id = $1"))
            .bind::<BigInt, _>(task_id.0)
            .get_results::<TaskRow>(&mut conn)
            .await
            .map_err(db("reading a task"))?
            .pop()
            .ok_or(StoreError::NotFound {
                what: "task",
                id: task_id.0,
            })?;
        let steps = sql_query(format!(
            "SELECT s.workflow_step_id, s.name, s.state, s.attempts, s.max_attempts,
                    s.results::text AS results, s.last_error::text AS last_error,
                    {} AS run_at_ms,
                    COALESCE((SELECT json_agg(p.name ORDER BY p.position)
                              FROM tasker_workflow_step_edges e
                              JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
                              WHERE e.to_step_id = s.workflow_step_id), '[]'::json)::text AS depends_on
             FROM tasker_workflow_steps s WHERE s.task_id = $1 ORDER BY s.position",
            ms("s.run_at")
        ))
        .bind::<BigInt, _>(task_id.0)
        .load::<StepRow>(&mut conn)
        .await
        .map_err(db("reading a task's steps"))?;
        let steps = steps
            .into_iter()
            .map(StepRow::into_record)
            .collect::<Result<_, _>>()?;
        task.into_record(steps)
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = sql_query(task_select(
            "WHERE ($1::text IS NULL OR ns.name = $1) AND ($2::text IS NULL OR nt.name = $2)
               AND ($3::text IS NULL OR nt.version = $3) AND ($4::text IS NULL OR t.state = $4)
             ORDER BY t.created_at DESC, t.task_id DESC LIMIT $5 OFFSET $6",
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
        .load::<TaskRow>(&mut conn)
        .await
        .map_err(db("listing tasks"))?;
        rows.into_iter()
            .map(|r| r.into_record(Vec::new()))
            .collect()
    }

    async fn transitions(&self, task_id: TaskId) -> Result<Vec<Transition>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = sql_query(format!(
            "SELECT task_id, NULL::bigint AS workflow_step_id, from_state, to_state, NULL::int AS attempt,
                    actor, NULL::text AS error, {} AS at_ms, created_at AS at, 0 AS kind,
                    task_transition_id AS seq
             FROM tasker_task_transitions WHERE task_id = $1
             UNION ALL
             SELECT task_id, workflow_step_id, from_state, to_state, attempt, actor, error, {} AS at_ms,
                    created_at AS at, 1 AS kind, workflow_step_transition_id AS seq
             FROM tasker_workflow_step_transitions WHERE task_id = $1
             ORDER BY at, kind, seq",
            ms("created_at"),
            ms("created_at")
        ))
        .bind::<BigInt, _>(task_id.0)
        .load::<TransitionRow>(&mut conn)
        .await
        .map_err(db("reading transitions"))?;
        Ok(rows.into_iter().map(Transition::from).collect())
    }

    async fn task_of_step(&self, step_id: StepId) -> Result<TaskId, StoreError> {
        let mut conn = self.conn().await?;
        task_of_step(&mut conn, step_id.0)
            .await
            .map(TaskId)
            .map_err(|e| e.into_store("reading a step"))
    }

    async fn ready_steps(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        Ok(sql_query(
            "SELECT count(*) AS count FROM tasker_workflow_steps WHERE state = 'ready' AND run_at <= now()",
        )
        .get_result::<CountRow>(&mut conn)
        .await
        .map_err(db("counting ready steps"))?
        .count)
    }

    async fn task_counts(&self) -> Result<Vec<(TaskState, i64)>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = sql_query(
            "SELECT state, count(*) AS count FROM tasker_tasks GROUP BY state ORDER BY state",
        )
        .load::<StateCountRow>(&mut conn)
        .await
        .map_err(db("counting tasks"))?;
        rows.into_iter().map(StateCountRow::into_pair).collect()
    }

    async fn warnings(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn().await?;
        let vacuum = vacuum_state(&mut conn).await?;
        let mut warnings = Vec::new();
        if !vacuum.autovacuum {
            warnings.push(format!(
                "autovacuum is off on this PostgreSQL server: dead rows of tasker's queue tables \
                 pile up and every claim gets slower. Turn it on (autovacuum = on; see \
                 docs/operations.md). Until then tasker's workers vacuum tasker_workflow_steps \
                 and tasker_tasks themselves once more than {VACUUM_DEAD_ROWS} rows (or 2%) \
                 of one of them are dead."
            ));
        }
        Ok(warnings)
    }

    async fn housekeeping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let vacuum = vacuum_state(&mut conn).await?;
        if vacuum.autovacuum || !vacuum.needed {
            return Ok(());
        }
        // One worker vacuums; the others skip this tick.
        let lock = format!("hashtext('tasker_vacuum_{}')", self.schema);
        let locked = sql_query(format!(
            "SELECT pg_try_advisory_lock({lock})::int::bigint AS count"
        ))
        .get_result::<CountRow>(&mut conn)
        .await
        .map_err(db("taking the vacuum lock"))?
        .count
            == 1;
        if !locked {
            return Ok(());
        }
        let started = std::time::Instant::now();
        // One statement per call: PostgreSQL runs a multi-statement simple
        // query in one transaction, where VACUUM is not allowed.
        // Without autovacuum nothing analyzes the other tables either, and
        // statistics fresh for some tables and missing for others made
        // the planner pick worse joins than no statistics at all
        // (measured in the soak): analyze them all together.
        let mut vacuumed = Ok(());
        for statement in [
            "VACUUM (ANALYZE, SKIP_LOCKED) tasker_workflow_steps",
            "VACUUM (ANALYZE, SKIP_LOCKED) tasker_tasks",
            "ANALYZE (SKIP_LOCKED) tasker_workflow_step_edges, tasker_workflow_step_transitions, \
             tasker_task_transitions, tasker_named_steps, tasker_named_tasks, tasker_task_namespaces",
        ] {
            vacuumed = conn.batch_execute(statement).await;
            if vacuumed.is_err() {
                break;
            }
        }
        let _ = conn
            .batch_execute(&format!("SELECT pg_advisory_unlock({lock})"))
            .await;
        vacuumed.map_err(db("vacuuming the queue tables"))?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "vacuumed tasker's queue tables (autovacuum is off)"
        );
        Ok(())
    }
}

/// Dead rows in a queue table above which workers vacuum it themselves
/// when autovacuum is off (or 2% of its live rows, if more, as the
/// tables' autovacuum settings).
const VACUUM_DEAD_ROWS: i64 = 5_000;

/// At most one such vacuum of a table per this many seconds, across every
/// process (read from the table's statistics): autovacuum's own pace
/// (`autovacuum_naptime`). Vacuuming every few seconds cost more than the
/// dead rows it removed.
const VACUUM_INTERVAL_S: i64 = 60;

struct VacuumState {
    /// The server runs autovacuum (and it is not disabled on the tables).
    autovacuum: bool,
    /// A queue table has more dead rows than the threshold.
    needed: bool,
}

#[derive(QueryableByName)]
struct VacuumRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    autovacuum: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    needed: bool,
}

/// Whether autovacuum looks after the queue tables, and whether they need
/// a vacuum now. One cheap query on the statistics views.
async fn vacuum_state(conn: &mut AsyncPgConnection) -> Result<VacuumState, StoreError> {
    let row = sql_query(format!(
        "SELECT current_setting('autovacuum') = 'on'
                AND NOT EXISTS (SELECT 1 FROM pg_class c
                                WHERE c.oid IN (to_regclass('tasker_workflow_steps'), to_regclass('tasker_tasks'))
                                  AND c.reloptions @> ARRAY['autovacuum_enabled=false']) AS autovacuum,
                EXISTS (SELECT 1 FROM pg_stat_user_tables s
                        WHERE s.relid IN (to_regclass('tasker_workflow_steps'), to_regclass('tasker_tasks'))
                          AND s.n_dead_tup > GREATEST({VACUUM_DEAD_ROWS}, s.n_live_tup / 50)
                          AND COALESCE(GREATEST(s.last_vacuum, s.last_autovacuum), '-infinity')
                              < now() - make_interval(secs => {VACUUM_INTERVAL_S})) AS needed"
    ))
    .get_result::<VacuumRow>(conn)
    .await
    .map_err(db("reading the vacuum state"))?;
    Ok(VacuumState {
        autovacuum: row.autovacuum,
        needed: row.needed,
    })
}

fn task_select(tail: &str) -> String {
    format!(
        "SELECT t.task_id, ns.name AS namespace, nt.name, nt.version, t.state,
                t.context::text AS context, t.identity_key, t.initiator, t.source_system, t.reason,
                t.tags::text AS tags, {} AS created_ms, {} AS updated_ms
         FROM tasker_tasks t
         JOIN tasker_named_tasks nt ON nt.named_task_id = t.named_task_id
         JOIN tasker_task_namespaces ns ON ns.task_namespace_id = nt.task_namespace_id
         {tail}",
        ms("t.created_at"),
        ms("t.updated_at")
    )
}
