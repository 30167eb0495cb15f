//! The operator's transaction primitives on PostgreSQL (see
//! `crate::operator`).

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{sql_query, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use tasker::store::StoreError;
use tasker::{StepError, StepState, TaskState};

use crate::dialect::Dialect;
use crate::operator::{self, StepCounts, Tx, TxError};
use crate::operator::{SkipPrimitives, Unblocked};
use crate::retention;
use crate::rows::{
    parse_state, ChildRow, CountRow, IdRow, StepCountsRow, StepNameRow, SATISFIED_SQL,
    STEP_COUNTS_SQL,
};

#[derive(QueryableByName)]
pub(super) struct StateRow {
    #[diesel(sql_type = Text)]
    pub(super) state: String,
}

/// The operator primitives on one PostgreSQL connection in a transaction.
pub(super) struct PgOps<'c> {
    pub(super) conn: &'c mut AsyncPgConnection,
    /// The channel that wakes workers (a fan-out group completed by an
    /// operator's action releases its children).
    pub(super) channel: &'c str,
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
                 claim_at = now() - make_interval(secs => head_start_ms::float8 / 1000),
                 max_attempts = attempts + attempt_budget, updated_at = now()
               WHERE task_id = $1 AND state = 'error' AND results IS NULL
                 AND ($2::bigint IS NULL OR workflow_step_id = $2)
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
               WHERE task_id = $1 AND (state IN ('pending', 'ready', 'in_progress')
                 OR (state = 'error' AND results IS NULL))
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
        cancel_steps(
            self.conn,
            "RECURSIVE down(id) AS (
               SELECT $1::bigint
               UNION SELECT e.to_step_id FROM tasker_workflow_step_edges e JOIN down ON e.from_step_id = down.id
             ),",
            "tasker_workflow_steps s JOIN down ON s.workflow_step_id = down.id",
            step_id,
            actor,
        )
        .await
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

    async fn lift_deadline(&mut self, task_id: i64) -> Tx<()> {
        sql_query(
            "WITH t AS (UPDATE tasker_tasks SET deadline_at = NULL
                        WHERE task_id = $1 AND deadline_at IS NOT NULL)
             UPDATE tasker_workflow_steps SET deadline_at = NULL
             WHERE task_id = $1 AND deadline_at IS NOT NULL",
        )
        .bind::<BigInt, _>(task_id)
        .execute(self.conn)
        .await?;
        Ok(())
    }

    async fn due_deadlines(&mut self, limit: u32) -> Tx<Vec<(i64, i64)>> {
        let rows = sql_query(
            "SELECT task_id, named_task_id FROM tasker_tasks
             WHERE deadline_at <= now() AND deadline_at IS NOT NULL AND state IN ('pending', 'in_progress')
             UNION
             SELECT task_id, named_task_id FROM tasker_workflow_steps
             WHERE deadline_at <= now() AND deadline_at IS NOT NULL AND state = 'ready'
             LIMIT $1",
        )
        .bind::<BigInt, _>(i64::from(limit))
        .load::<DueRow>(self.conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.task_id, r.named_task_id))
            .collect())
    }

    async fn deadline_passed(&mut self, task_id: i64) -> Tx<bool> {
        let rows = sql_query(
            "SELECT task_id AS id FROM tasker_tasks WHERE task_id = $1 AND deadline_at <= now()",
        )
        .bind::<BigInt, _>(task_id)
        .load::<IdRow>(self.conn)
        .await?;
        Ok(!rows.is_empty())
    }

    async fn stop_ready_steps(
        &mut self,
        task_id: i64,
        error: &StepError,
        actor: &str,
    ) -> Tx<Vec<(i64, String)>> {
        let rows = sql_query(
            "WITH due AS (
               SELECT workflow_step_id FROM tasker_workflow_steps
               WHERE task_id = $1 AND state = 'ready' AND deadline_at <= now()
               FOR UPDATE SKIP LOCKED
             ), s AS (
               UPDATE tasker_workflow_steps s SET state = 'error', last_error = $2::jsonb, updated_at = now()
               FROM due WHERE s.workflow_step_id = due.workflow_step_id
               RETURNING s.workflow_step_id, s.task_id, s.name, s.attempts
             ), audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, attempt, actor, error)
               SELECT workflow_step_id, task_id, 'ready', 'error', NULL, $3, $4 FROM s
             )
             SELECT workflow_step_id, name FROM s ORDER BY workflow_step_id",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Text, _>(serde_json::to_string(error).expect("errors serialize"))
        .bind::<Text, _>(actor)
        .bind::<Text, _>(error.to_string())
        .load::<StoppedRow>(self.conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.workflow_step_id, r.name))
            .collect())
    }
}

#[derive(QueryableByName)]
struct DueRow {
    #[diesel(sql_type = BigInt)]
    task_id: i64,
    #[diesel(sql_type = BigInt)]
    named_task_id: i64,
}

#[derive(QueryableByName)]
struct StoppedRow {
    #[diesel(sql_type = BigInt)]
    workflow_step_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
}

/// Cancels the unfinished steps `steps` selects (a `FROM` naming them
/// `s`, after the CTEs `ctes`, over `$1` = `id`), audited as `actor`, and
/// counts them off their tasks: one statement.
pub(super) async fn cancel_steps(
    conn: &mut AsyncPgConnection,
    ctes: &str,
    steps: &str,
    id: i64,
    actor: &str,
) -> Tx<()> {
    sql_query(format!(
        "WITH {ctes} old AS (
           SELECT s.workflow_step_id, s.task_id, s.state, s.attempts
           FROM {steps}
           WHERE (s.state IN ('pending', 'ready', 'in_progress')
             OR (s.state = 'error' AND s.results IS NULL))
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
         WHERE t.task_id = c.task_id"
    ))
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(actor)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn task_of_step(
    conn: &mut AsyncPgConnection,
    step_id: i64,
) -> Result<i64, TxError> {
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

/// PostgreSQL's way of writing what `crate::retention` needs.
pub(super) const DIALECT: Dialect = Dialect {
    params: crate::dialect::same,
    time_param: |n| format!("to_timestamp(${n}::bigint / 1000.0)"),
    ms: super::sql::ms,
    error_class: |column| format!("({column} ->> 'class')"),
    lock_tasks: " FOR UPDATE OF t SKIP LOCKED",
    lock_shared: " FOR SHARE",
    json_param: |n| format!("CAST(${n} AS jsonb)"),
    now: "now()",
    lateral: true,
};

impl retention::RetentionOps for PgOps<'_> {
    async fn task_ids(&mut self, sql: &str, binds: &retention::Binds<'_>) -> Tx<Vec<i64>> {
        Ok(retention::bind_all!(sql_query(sql), binds)
            .load::<IdRow>(self.conn)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    async fn dead_letter_rows(
        &mut self,
        sql: &str,
        binds: &retention::Binds<'_>,
    ) -> Tx<Vec<retention::DeadLetterRow>> {
        Ok(retention::bind_all!(sql_query(sql), binds)
            .load::<retention::DeadLetterRow>(self.conn)
            .await?)
    }

    async fn execute(&mut self, sql: &str) -> Tx<usize> {
        Ok(sql_query(sql).execute(self.conn).await?)
    }
}

impl SkipPrimitives for PgOps<'_> {
    async fn steps_named(&mut self, task_id: i64, names: &[&str]) -> Tx<Vec<(i64, String)>> {
        let names: Vec<&str> = names.to_vec();
        let rows = sql_query(
            "SELECT workflow_step_id, name FROM tasker_workflow_steps
             WHERE task_id = $1 AND name = ANY($2) ORDER BY position",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<diesel::sql_types::Array<Text>, _>(names)
        .load::<StepNameRow>(self.conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.workflow_step_id, r.name))
            .collect())
    }

    async fn skip_step(&mut self, step_id: i64, task_id: i64, actor: &str) -> Tx<bool> {
        let row = sql_query(
            "WITH s AS (
               UPDATE tasker_workflow_steps SET state = 'skipped', updated_at = now()
               WHERE workflow_step_id = $1 AND task_id = $2 AND state = 'pending'
               RETURNING workflow_step_id, task_id),
             audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, actor)
               SELECT workflow_step_id, task_id, 'pending', 'skipped', $3 FROM s)
             SELECT count(*) AS count FROM s",
        )
        .bind::<BigInt, _>(step_id)
        .bind::<BigInt, _>(task_id)
        .bind::<Text, _>(actor)
        .get_result::<CountRow>(self.conn)
        .await?;
        Ok(row.count > 0)
    }

    async fn unblock_children(&mut self, step_id: i64) -> Tx<Vec<Unblocked>> {
        let mut children = sql_query(
            "UPDATE tasker_workflow_steps c SET pending_parents = c.pending_parents - 1,
               updated_at = now()
             FROM tasker_workflow_step_edges e
             WHERE e.from_step_id = $1 AND c.workflow_step_id = e.to_step_id
             RETURNING c.workflow_step_id, c.name, c.pending_parents, c.state, c.position",
        )
        .bind::<BigInt, _>(step_id)
        .load::<ChildRow>(self.conn)
        .await?;
        children.retain(ChildRow::unblocked);
        children.sort_by_key(|c| c.position);
        let mut unblocked = Vec::with_capacity(children.len());
        for child in children {
            // A statement of its own: READ COMMITTED takes a fresh snapshot,
            // so a parent whose completion committed while this transaction
            // waited for the child's row lock is seen as complete.
            let satisfied = sql_query(SATISFIED_SQL)
                .bind::<BigInt, _>(child.workflow_step_id)
                .get_result::<CountRow>(self.conn)
                .await?;
            unblocked.push(Unblocked {
                step_id: child.workflow_step_id,
                name: child.name,
                satisfied: satisfied.count > 0,
            });
        }
        Ok(unblocked)
    }

    async fn release_step(&mut self, step_id: i64, task_id: i64, actor: &str) -> Tx<()> {
        sql_query(
            "WITH r AS (
               UPDATE tasker_workflow_steps SET state = 'ready', updated_at = now()
               WHERE workflow_step_id = $1 AND state = 'pending'
               RETURNING workflow_step_id, task_id)
             INSERT INTO tasker_workflow_step_transitions
               (workflow_step_id, task_id, from_state, to_state, actor)
             SELECT workflow_step_id, $2, 'pending', 'ready', $3 FROM r",
        )
        .bind::<BigInt, _>(step_id)
        .bind::<BigInt, _>(task_id)
        .bind::<Text, _>(actor)
        .execute(self.conn)
        .await?;
        Ok(())
    }

    async fn count_off_steps(&mut self, task_id: i64, n: usize) -> Tx<()> {
        sql_query(
            "UPDATE tasker_tasks SET unfinished_steps = unfinished_steps - $2, updated_at = now()
             WHERE task_id = $1",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<BigInt, _>(n as i64)
        .execute(self.conn)
        .await?;
        Ok(())
    }
}
