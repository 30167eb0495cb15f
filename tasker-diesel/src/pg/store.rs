//! [`Store`] for [`PgStore`].

use std::time::Duration;

use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text};
use diesel::{sql_query, OptionalExtension};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::Value;
use tasker::store::{
    Capabilities, Checkpoint, ClaimRequest, ClaimedStep, Completed, Completion, Created,
    ExpiredTask, HandlerRecord, MigrationStatus, NewTask, OperatorAction, Outcome, Store,
    StoreError, TaskFilter, TaskRecord, Transition, TransitionWindow, UnfinishedHandler,
};
use tasker::store::{
    DeadLetter, DeadLetterFilter, ItemWindow, PurgeFilter, StepRecord, StepTransaction,
};
use tasker::{StepError, StepId, TaskId, TaskState};

use super::alone::record_each_alone;
use super::fan_out::record_instances;
use super::housekeeping::{vacuum_state, VACUUM_DEAD_ROWS};
use super::primitives::{task_of_step, PgOps, DIALECT};
use super::reads;
use super::rows::{create_many, create_one, CompleteRow};
use super::sql::{recover_sql, task_select, FAIL_SQL, RETRY_SQL};
use super::successes::record_successes;
use super::{db, PgStore};
use crate::activity;
use crate::audit;
use crate::checkpoint::{self, CheckpointRow};
use crate::fan_out;
use crate::migrations;
use crate::operator::{self, TxError};
use crate::retention;
use crate::rows::VersionRow;
use crate::rows::{
    lease_expired_error, CountRow, IdRow, StateCountRow, TaskRow, TransitionRow, UnfinishedRow,
    HAS_ANNOTATION_SQL,
};

/// Tasks per creation statement.
const CREATE_CHUNK: usize = 1_000;

impl Store for PgStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            distributed: true,
            skip_locked: true,
            step_transactions: true,
        }
    }

    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
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
                .run_pending_migrations(migrations::POSTGRES)
                .map(|applied| migrations::names::<diesel::pg::Pg>(&migrations::POSTGRES, &applied))
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
        if !applied.is_empty() {
            tracing::info!(?applied, schema = %self.schema, "applied migrations");
        }
        Ok(applied)
    }

    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        // Read-only: a health check or `migrate --status` must not create
        // the migrations table.
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
        let applied: Vec<String> = if exists {
            sql_query(format!("SELECT version FROM {table} ORDER BY version"))
                .load::<VersionRow>(&mut conn)
                .await
                .map_err(db("reading applied migrations"))?
                .into_iter()
                .map(|r| r.version)
                .collect()
        } else {
            Vec::new()
        };
        migrations::status::<diesel::pg::Pg>(&migrations::POSTGRES, &applied)
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
                // Bounded statements: arrays of at most CREATE_CHUNK tasks.
                let mut created = Vec::with_capacity(tasks.len());
                for chunk in tasks.chunks(CREATE_CHUNK) {
                    created.extend(create_many(conn, chunk, &channel).await?);
                }
                Ok(created)
            },
        )
        .await
        .map_err(db("creating tasks"))
    }

    async fn claim_steps(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedStep>, StoreError> {
        self.claim(request).await
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
        // Those with annotations, a decision's skips or a fan-out's
        // bookkeeping: each in a transaction of its own, written only when
        // the result is applied; and fan-outs expanded.
        let (alone, rest): (Vec<_>, Vec<_>) = successes
            .into_iter()
            .partition(|(_, c, _)| !c.annotations.is_empty() || !c.skip.is_empty());
        // A fan-out's instances: together, in one transaction with their
        // groups' bookkeeping.
        let (instances, plain): (Vec<_>, Vec<_>) = rest
            .into_iter()
            .partition(|(_, c, _)| c.item_index.is_some());
        let alone: Vec<(usize, &Completion)> = alone
            .into_iter()
            .map(|(i, c, _)| (i, c))
            .chain(
                completions
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| match c.outcome {
                        Outcome::FanOut { .. } => true,
                        // An item's failure may be its group's to collect.
                        Outcome::Fail(_) => c.item_index.is_some(),
                        _ => false,
                    }),
            )
            .collect();
        if !plain.is_empty() {
            let recorded = record_successes(&mut conn, &plain, &self.channel)
                .await
                .map_err(db("recording step results"))?;
            for ((i, _, _), row) in plain.iter().zip(recorded) {
                results[*i] = Some(row.into_completed()?);
            }
        }
        // Failures: one statement each (they are rare).
        for (i, completion) in completions.iter().enumerate() {
            let query = match &completion.outcome {
                Outcome::Complete(_) | Outcome::FanOut { .. } => continue,
                Outcome::Fail(_) if completion.item_index.is_some() => continue,
                Outcome::Retry { error, delay } => sql_query(RETRY_SQL)
                    .into_boxed::<diesel::pg::Pg>()
                    .bind::<BigInt, _>(completion.step_id.0)
                    .bind::<Text, _>(serde_json::to_string(error).expect("errors serialize"))
                    .bind::<Integer, _>(completion.attempt as i32)
                    .bind::<Text, _>(&completion.worker)
                    .bind::<Double, _>(delay.as_secs_f64())
                    .bind::<Text, _>(error.to_string()),
                Outcome::Fail(error) => fail_query(completion, error),
            };
            let row = query
                .get_result::<CompleteRow>(&mut conn)
                .await
                .map_err(db("recording a step failure"))?;
            results[i] = Some(row.into_completed());
        }
        if !instances.is_empty() {
            let channel = &self.channel;
            let instances = &instances;
            let recorded = conn
                .transaction(async move |conn| record_instances(conn, instances, channel).await)
                .await
                .map_err(|e: TxError| e.into_store("recording fan-out items"))?;
            for ((i, _, _), completed) in instances.iter().zip(recorded) {
                results[*i] = Some(completed);
            }
        }
        // On connections of their own: this call's is returned first, so
        // a small pool is never waited on by its own holder.
        drop(conn);
        for (i, completed) in record_each_alone(self, &alone).await? {
            results[i] = Some(completed);
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every completion has a result"))
            .collect())
    }

    async fn recover_expired(&self, all_in_progress: bool) -> Result<u64, StoreError> {
        let mut conn = self.conn().await?;
        // Items of collecting fan-outs out of attempts: their failure is
        // their result, not their task's.
        let channel = &self.channel;
        let collected = conn
            .transaction(async move |conn| {
                let (collected, released) =
                    fan_out::collect_expired(&mut PgOps { conn, channel }, all_in_progress).await?;
                if released > 0 {
                    sql_query("SELECT pg_notify($1, '')")
                        .bind::<Text, _>(channel)
                        .execute(conn)
                        .await?;
                }
                Ok(collected)
            })
            .await
            .map_err(|e: TxError| e.into_store("collecting expired fan-out items"))?;
        let row = sql_query(recover_sql(all_in_progress))
            .bind::<Text, _>(lease_expired_error())
            .bind::<Text, _>("the lease expired: the worker stopped or lost its connection")
            .bind::<Text, _>(&self.channel)
            .get_result::<CountRow>(&mut conn)
            .await
            .map_err(db("recovering expired leases"))?;
        Ok(row.count as u64 + collected)
    }

    async fn expire_deadlines(
        &self,
        error: &StepError,
        actor: &str,
        limit: u32,
    ) -> Result<Vec<ExpiredTask>, StoreError> {
        let mut conn = self.conn().await?;
        let error = error.clone();
        let actor = actor.to_owned();
        let channel = &self.channel;
        conn.transaction(async move |conn| -> Result<_, TxError> {
            operator::expire_deadlines(&mut PgOps { conn, channel }, &error, &actor, limit).await
        })
        .await
        .map_err(|e| e.into_store("ending tasks past their deadline"))
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wakeups.notified()).await;
    }

    async fn operator_action(&self, action: OperatorAction, actor: &str) -> Result<(), StoreError> {
        self.operator_tx(action, actor)
            .await
            .map_err(|e| e.into_store("applying an operator action"))
    }

    async fn begin_step_transaction(
        &self,
        step_id: StepId,
        attempt: u32,
    ) -> Result<Box<dyn StepTransaction>, StoreError> {
        self.begin_transaction_for_step(step_id, attempt).await
    }

    async fn complete_in_transaction(
        &self,
        transaction: Box<dyn StepTransaction>,
        completion: &Completion,
    ) -> Result<Completed, StoreError> {
        self.complete_in_step_transaction(transaction, completion)
            .await
    }

    async fn purge_tasks(&self, filter: &PurgeFilter) -> Result<u64, StoreError> {
        filter.check()?;
        let mut conn = self.conn().await?;
        let channel = &self.channel;
        conn.transaction(async move |conn| {
            retention::purge_batch(&mut PgOps { conn, channel }, &DIALECT, filter).await
        })
        .await
        .map_err(|e: TxError| e.into_store("purging tasks"))
    }

    async fn count_purgeable(&self, filter: &PurgeFilter, cap: u64) -> Result<u64, StoreError> {
        filter.check()?;
        let mut conn = self.conn().await?;
        retention::count_purgeable(
            &mut PgOps {
                conn: &mut conn,
                channel: &self.channel,
            },
            &DIALECT,
            filter,
            cap,
        )
        .await
        .map_err(|e| e.into_store("counting purgeable tasks"))
    }

    async fn dead_letters(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>, StoreError> {
        let mut conn = self.conn().await?;
        retention::dead_letters(
            &mut PgOps {
                conn: &mut conn,
                channel: &self.channel,
            },
            &DIALECT,
            filter,
        )
        .await
        .map_err(|e| e.into_store("listing dead letters"))
    }

    async fn task_view(
        &self,
        task_id: TaskId,
        items: ItemWindow,
    ) -> Result<TaskRecord, StoreError> {
        reads::task_view(&mut *self.conn().await?, task_id, items).await
    }

    async fn step(&self, step_id: StepId) -> Result<(TaskId, StepRecord), StoreError> {
        reads::step(&mut *self.conn().await?, step_id).await
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = sql_query(task_select(&format!(
            "WHERE ($1::text IS NULL OR ns.name = $1) AND ($2::text IS NULL OR nt.name = $2)
               AND ($3::text IS NULL OR nt.version = $3) AND ($4::text IS NULL OR t.state = $4)
               AND {}
               AND ($8::bigint IS NULL OR (t.created_at, t.task_id) <
                    (SELECT c.created_at, c.task_id FROM tasker_tasks c WHERE c.task_id = $8))
               AND ($9::bigint IS NULL OR t.created_at >= to_timestamp($9::bigint / 1000.0))
               AND ($10::bigint IS NULL OR t.created_at < to_timestamp($10::bigint / 1000.0))
             ORDER BY t.created_at DESC, t.task_id DESC LIMIT $5 OFFSET $6",
            HAS_ANNOTATION_SQL.replace("{p}", "$7::text")
        )))
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
        .bind::<Nullable<Text>, _>(filter.annotation_type.as_deref())
        .bind::<Nullable<BigInt>, _>(filter.after_task.map(|t| t.0))
        .bind::<Nullable<BigInt>, _>(filter.created_after.map(|t| t.timestamp_millis()))
        .bind::<Nullable<BigInt>, _>(filter.created_before.map(|t| t.timestamp_millis()))
        .load::<TaskRow>(&mut conn)
        .await
        .map_err(db("listing tasks"))?;
        rows.into_iter()
            .map(|r| r.into_record(Vec::new()))
            .collect()
    }

    async fn transitions_window(
        &self,
        task_id: TaskId,
        window: TransitionWindow,
    ) -> Result<Vec<Transition>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = sql_query(audit::transitions_sql(&DIALECT, window))
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

    async fn handler_of_task(&self, task_id: TaskId) -> Result<(String, String), StoreError> {
        let mut conn = self.conn().await?;
        let rows = sql_query(crate::rows::HANDLER_OF_TASK_SQL)
            .bind::<BigInt, _>(task_id.0)
            .load::<crate::rows::HandlerNameRow>(&mut conn)
            .await
            .map_err(db("reading a task's handler"))?;
        crate::rows::HandlerNameRow::one(rows, task_id)
    }

    async fn save_checkpoint(
        &self,
        step_id: StepId,
        attempt: u32,
        value: &Value,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let saved = sql_query(checkpoint::save_sql(&DIALECT))
            .bind::<BigInt, _>(step_id.0)
            .bind::<Integer, _>(attempt as i32)
            .bind::<Text, _>(value.to_string())
            .execute(&mut conn)
            .await
            .map_err(db("saving a checkpoint"))?;
        Ok(saved == 1)
    }

    async fn checkpoint(&self, step_id: StepId) -> Result<Option<Checkpoint>, StoreError> {
        let mut conn = self.conn().await?;
        sql_query(checkpoint::load_sql(&DIALECT))
            .bind::<BigInt, _>(step_id.0)
            .get_result::<CheckpointRow>(&mut conn)
            .await
            .optional()
            .map_err(db("reading a checkpoint"))?
            .map(|row| row.into_checkpoint(step_id))
            .transpose()
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

    async fn activity(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<tasker::store::Activity, StoreError> {
        let mut conn = self.conn().await?;
        let since = since.timestamp_millis();
        let minutes = sql_query(activity::minutes_sql(&DIALECT))
            .bind::<BigInt, _>(since)
            .load(&mut conn)
            .await
            .map_err(db("reading the activity"))?;
        let workers = sql_query(activity::workers_sql(&DIALECT))
            .bind::<BigInt, _>(since)
            .load(&mut conn)
            .await
            .map_err(db("reading the workers seen"))?;
        Ok(activity::activity(minutes, workers))
    }

    async fn task_counts_at_a_glance(&self) -> Result<Vec<tasker::store::StateCount>, StoreError> {
        reads::counts_at_a_glance(&mut *self.conn().await?).await
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

/// The statement that fails a step for good in `completion`'s attempt, and
/// its task with it.
pub(super) fn fail_query<'a>(
    completion: &'a Completion,
    error: &StepError,
) -> diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    sql_query(FAIL_SQL)
        .into_boxed::<diesel::pg::Pg>()
        .bind::<BigInt, _>(completion.step_id.0)
        .bind::<Text, _>(serde_json::to_string(error).expect("errors serialize"))
        .bind::<Integer, _>(completion.attempt as i32)
        .bind::<Text, _>(&completion.worker)
        .bind::<Text, _>(error.to_string())
}
