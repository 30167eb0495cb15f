//! [`Store`] for [`SqliteStore`].

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::{sql_query, OptionalExtension, RunQueryDsl};
use serde_json::Value;
use tasker::store::{
    Capabilities, Checkpoint, ClaimRequest, ClaimedStep, Completed, Completion, Created,
    ExpiredTask, HandlerRecord, MigrationStatus, NewTask, OperatorAction, Store, StoreError,
    TaskFilter, TaskRecord, Transition, TransitionWindow, UnfinishedHandler,
};
use tasker::store::{DeadLetter, DeadLetterFilter, ItemWindow, PurgeFilter, StepRecord};
use tasker::{StepError, StepId, TaskId, TaskState};

use super::complete::record_one;
use super::primitives::{SqliteOps, DIALECT};
use super::writes::{create_one, set_task_state, step_audit, step_state};
use super::{now_ms, SqliteStore, StepStateRow};
use crate::activity;
use crate::audit;
use crate::checkpoint::{self, CheckpointRow};
use crate::fan_out;
use crate::migrations;
use crate::operator::{self, Tx, TxError};
use crate::retention;
use crate::rows::VersionRow;
use crate::rows::{
    lease_expired_error, step_records, AnnotationRow, CountRow, IdRow, ItemStateRow, StateCountRow,
    StepRow, TaskRow, TransitionRow, UnfinishedRow, ANNOTATIONS_SQL, HAS_ANNOTATION_SQL,
    ITEM_COUNTS_SQL,
};

impl Store for SqliteStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            distributed: false,
            skip_locked: false,
            step_transactions: false,
        }
    }

    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        if self.read_only {
            return Err(StoreError::Unavailable(format!(
                "cannot migrate the SQLite database {}: it was opened read-only",
                self.path.display()
            )));
        }
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            use diesel::connection::SimpleConnection;
            use diesel_migrations::MigrationHarness;
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let failed = |e: &dyn std::fmt::Display| StoreError::Database {
                message: format!("applying migrations failed: {e}"),
                source: None,
            };
            // A migration that rebuilds a table (SQLite cannot alter a
            // constraint) needs foreign keys off, outside its transaction,
            // and a check after: https://www.sqlite.org/lang_altertable.html
            conn.batch_execute("PRAGMA foreign_keys = OFF")
                .map_err(|e| failed(&e))?;
            let applied = conn
                .run_pending_migrations(migrations::SQLITE)
                .map(|applied| {
                    migrations::names::<diesel::sqlite::Sqlite>(&migrations::SQLITE, &applied)
                })
                .map_err(|e| e.to_string());
            let violations = sql_query("SELECT count(*) AS count FROM pragma_foreign_key_check")
                .get_result::<CountRow>(&mut *conn);
            conn.batch_execute("PRAGMA foreign_keys = ON")
                .map_err(|e| failed(&e))?;
            let applied = applied.map_err(|e| failed(&e))?;
            match violations {
                Ok(CountRow { count: 0 }) => {}
                Ok(CountRow { count }) => {
                    return Err(failed(&format!(
                        "{count} rows refer to rows that do not exist (PRAGMA foreign_key_check)"
                    )))
                }
                Err(e) => return Err(failed(&e)),
            }
            Ok(applied)
        })
        .await
        .map_err(|e| StoreError::Database {
            message: format!("the migration thread failed: {e}"),
            source: None,
        })?
    }

    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        // Read-only: diesel's own check creates the migrations table.
        let applied = self
            .read("reading applied migrations", |conn| {
                let exists = sql_query(
                    "SELECT count(*) AS count FROM sqlite_master \
                     WHERE type = 'table' AND name = '__diesel_schema_migrations'",
                )
                .get_result::<CountRow>(conn)?
                .count
                    > 0;
                if !exists {
                    return Ok(Vec::new());
                }
                Ok(
                    sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
                        .load::<VersionRow>(conn)?
                        .into_iter()
                        .map(|r| r.version)
                        .collect(),
                )
            })
            .await?;
        migrations::status::<diesel::sqlite::Sqlite>(&migrations::SQLITE, &applied)
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
        self.read("listing unfinished handlers", |conn| {
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
        self.claim(request).await
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
                    results.push(record_one(conn, c)?);
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
                // Items of collecting fan-outs out of attempts: their
                // failure is their result, not their task's.
                let (collected, _) = operator::run_now(fan_out::collect_expired(
                    &mut SqliteOps { conn },
                    all_in_progress,
                ))?;
                // A fan-out group runs without a lease while its
                // instances do: it is never recovered.
                let condition = if all_in_progress {
                    "state = 'in_progress' AND lease_expires_at IS NOT NULL"
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
                           run_at = ?, claim_at = ? - head_start_ms, lease_expires_at = NULL,
                           worker_id = NULL, last_error = ?, updated_at = ?
                         WHERE workflow_step_id = ? RETURNING workflow_step_id, task_id, state, attempts",
                    )
                    .bind::<BigInt, _>(now)
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
                Ok(expired.len() as u64 + collected)
            })
            .await?;
        if recovered > 0 {
            self.wakeups.notify_one();
        }
        Ok(recovered)
    }

    async fn expire_deadlines(
        &self,
        error: &StepError,
        actor: &str,
        limit: u32,
    ) -> Result<Vec<ExpiredTask>, StoreError> {
        let error = error.clone();
        let actor = actor.to_owned();
        self.tx("ending tasks past their deadline", move |conn| {
            operator::run_now(operator::expire_deadlines(
                &mut SqliteOps { conn },
                &error,
                &actor,
                limit,
            ))
        })
        .await
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

    async fn purge_tasks(&self, filter: &PurgeFilter) -> Result<u64, StoreError> {
        filter.check()?;
        let filter = filter.clone();
        self.tx("purging tasks", move |conn| {
            operator::run_now(retention::purge_batch(
                &mut SqliteOps { conn },
                &DIALECT,
                &filter,
            ))
        })
        .await
    }

    async fn count_purgeable(&self, filter: &PurgeFilter, cap: u64) -> Result<u64, StoreError> {
        filter.check()?;
        let filter = filter.clone();
        self.read("counting purgeable tasks", move |conn| {
            operator::run_now(retention::count_purgeable(
                &mut SqliteOps { conn },
                &DIALECT,
                &filter,
                cap,
            ))
        })
        .await
    }

    async fn dead_letters(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>, StoreError> {
        let filter = filter.clone();
        self.read("listing dead letters", move |conn| {
            operator::run_now(retention::dead_letters(
                &mut SqliteOps { conn },
                &DIALECT,
                &filter,
            ))
        })
        .await
    }

    async fn task_view(
        &self,
        task_id: TaskId,
        items: ItemWindow,
    ) -> Result<TaskRecord, StoreError> {
        let (task, steps, counts, annotations) = self
            .read("reading a task", move |conn| {
                let task = sql_query(task_select("WHERE t.task_id = ?"))
                    .bind::<BigInt, _>(task_id.0)
                    .get_results::<TaskRow>(conn)?
                    .pop()
                    .ok_or(TxError::Store(StoreError::NotFound {
                        what: "task",
                        id: task_id.0,
                    }))?;
                let steps = sql_query(steps_sql(
                    "(s.item_index IS NULL OR (s.item_index >= ? AND s.item_index < ?))",
                    items != ItemWindow::ALL,
                ))
                .bind::<BigInt, _>(task_id.0)
                .bind::<BigInt, _>(i64::from(items.offset))
                .bind::<BigInt, _>(items.end())
                .load::<StepRow>(conn)?;
                let counts = sql_query(ITEM_COUNTS_SQL)
                    .bind::<BigInt, _>(task_id.0)
                    .load::<ItemStateRow>(conn)?;
                let annotations = sql_query(
                    ANNOTATIONS_SQL
                        .replace("{text}", "")
                        .replace("{ms}", "a.created_at")
                        .replace("{task}", "?"),
                )
                .bind::<BigInt, _>(task_id.0)
                .load::<AnnotationRow>(conn)?;
                Ok((task, steps, counts, annotations))
            })
            .await?;
        let steps = step_records(steps, &counts)?;
        let mut record = task.into_record(steps)?;
        record.annotations = annotations.into_iter().map(Into::into).collect();
        Ok(record)
    }

    async fn step(&self, step_id: StepId) -> Result<(TaskId, StepRecord), StoreError> {
        let (task_id, rows, counts) = self
            .read("reading a step", move |conn| {
                let task_id = step_state(conn, step_id.0)?.task_id;
                let rows = sql_query(steps_sql("s.workflow_step_id = ?", false))
                    .bind::<BigInt, _>(task_id)
                    .bind::<BigInt, _>(step_id.0)
                    .load::<StepRow>(conn)?;
                let counts = match rows.as_slice().first() {
                    Some(row) if row.item_index.is_none() => sql_query(ITEM_COUNTS_SQL)
                        .bind::<BigInt, _>(task_id)
                        .load::<ItemStateRow>(conn)?,
                    _ => Vec::new(),
                };
                Ok((task_id, rows, counts))
            })
            .await?;
        let step = step_records(rows, &counts)?
            .pop()
            .ok_or(StoreError::NotFound {
                what: "step",
                id: step_id.0,
            })?;
        Ok((TaskId(task_id), step))
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let filter = filter.clone();
        let rows = self
            .read("listing tasks", move |conn| {
                Ok(sql_query(task_select(&format!(
                    "WHERE (?1 IS NULL OR ns.name = ?1) AND (?2 IS NULL OR nt.name = ?2)
                       AND (?3 IS NULL OR nt.version = ?3) AND (?4 IS NULL OR t.state = ?4)
                       AND {}
                       AND (?8 IS NULL OR (t.created_at, t.task_id) <
                            (SELECT c.created_at, c.task_id FROM tasker_tasks c WHERE c.task_id = ?8))
                       AND (?9 IS NULL OR t.created_at >= ?9)
                       AND (?10 IS NULL OR t.created_at < ?10)
                     ORDER BY t.created_at DESC, t.task_id DESC LIMIT ?5 OFFSET ?6",
                    HAS_ANNOTATION_SQL.replace("{p}", "?7")
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
                .load::<TaskRow>(conn)?)
            })
            .await?;
        rows.into_iter()
            .map(|r| r.into_record(Vec::new()))
            .collect()
    }

    async fn transitions_window(
        &self,
        task_id: TaskId,
        window: TransitionWindow,
    ) -> Result<Vec<Transition>, StoreError> {
        let sql = audit::transitions_sql(&DIALECT, window);
        let rows = self
            .read("reading transitions", move |conn| {
                Ok(sql_query(sql)
                    .bind::<BigInt, _>(task_id.0)
                    .load::<TransitionRow>(conn)?)
            })
            .await?;
        Ok(rows.into_iter().map(Transition::from).collect())
    }

    async fn task_of_step(&self, step_id: StepId) -> Result<TaskId, StoreError> {
        self.read("reading a step", move |conn| {
            Ok(TaskId(step_state(conn, step_id.0)?.task_id))
        })
        .await
    }

    async fn handler_of_task(&self, task_id: TaskId) -> Result<(String, String), StoreError> {
        let rows = self
            .read("reading a task's handler", move |conn| {
                Ok(sql_query(crate::rows::HANDLER_OF_TASK_SQL)
                    .bind::<BigInt, _>(task_id.0)
                    .load::<crate::rows::HandlerNameRow>(conn)?)
            })
            .await?;
        crate::rows::HandlerNameRow::one(rows, task_id)
    }

    async fn save_checkpoint(
        &self,
        step_id: StepId,
        attempt: u32,
        value: &Value,
    ) -> Result<bool, StoreError> {
        let value = value.to_string();
        self.tx("saving a checkpoint", move |conn| {
            let saved = sql_query(checkpoint::save_sql(&DIALECT))
                .bind::<BigInt, _>(step_id.0)
                .bind::<Integer, _>(attempt as i32)
                .bind::<Text, _>(value)
                .execute(conn)?;
            Ok(saved == 1)
        })
        .await
    }

    async fn checkpoint(&self, step_id: StepId) -> Result<Option<Checkpoint>, StoreError> {
        let row = self
            .read("reading a checkpoint", move |conn| {
                Ok(sql_query(checkpoint::load_sql(&DIALECT))
                    .bind::<BigInt, _>(step_id.0)
                    .get_result::<CheckpointRow>(conn)
                    .optional()?)
            })
            .await?;
        row.map(|row| row.into_checkpoint(step_id)).transpose()
    }

    async fn ready_steps(&self) -> Result<i64, StoreError> {
        self.read("counting ready steps", |conn| {
            Ok(sql_query(
                "SELECT count(*) AS count FROM tasker_workflow_steps WHERE state = 'ready' AND run_at <= ?",
            )
            .bind::<BigInt, _>(now_ms())
            .get_result::<CountRow>(conn)?
            .count)
        })
        .await
    }

    async fn activity(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<tasker::store::Activity, StoreError> {
        let since = since.timestamp_millis();
        self.read("reading the activity", move |conn| {
            let minutes = sql_query(activity::minutes_sql(&DIALECT))
                .bind::<BigInt, _>(since)
                .load(conn)?;
            let workers = sql_query(activity::workers_sql(&DIALECT))
                .bind::<BigInt, _>(since)
                .load(conn)?;
            Ok(activity::activity(minutes, workers))
        })
        .await
    }

    async fn task_counts(&self) -> Result<Vec<(TaskState, i64)>, StoreError> {
        let rows = self
            .read("counting tasks", |conn| {
                Ok(sql_query("SELECT state, count(*) AS count FROM tasker_tasks GROUP BY state ORDER BY state")
                    .load::<StateCountRow>(conn)?)
            })
            .await?;
        rows.into_iter().map(StateCountRow::into_pair).collect()
    }
}

pub(super) fn task_select(tail: &str) -> String {
    format!(
        "SELECT t.task_id, ns.name AS namespace, nt.name, nt.version, t.state, t.context, t.identity_key,
                t.initiator, t.source_system, t.reason, t.tags, t.priority,
                t.deadline_at AS deadline_ms, t.created_at AS created_ms,
                t.updated_at AS updated_ms
         FROM tasker_tasks t
         JOIN tasker_named_tasks nt ON nt.named_task_id = t.named_task_id
         JOIN tasker_task_namespaces ns ON ns.task_namespace_id = nt.task_namespace_id
         {tail}"
    )
}

/// The steps of task `?` that `filter` (binding its own parameters after
/// it) keeps, as [`StepRow`]s in position order (a group before its items);
/// `windowed`: without fan-out groups' outputs (the lists of their items'
/// outputs, as large as the items).
fn steps_sql(filter: &str, windowed: bool) -> String {
    let results = crate::rows::results_column(windowed);
    format!(
        "SELECT s.workflow_step_id, s.name, s.state, s.attempts, s.max_attempts,
                {results} AS results,
                s.last_error, s.run_at AS run_at_ms, s.priority,
                COALESCE((SELECT json_group_array(name) FROM (
                    SELECT p.name AS name FROM tasker_workflow_step_edges e
                    JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
                    WHERE e.to_step_id = s.workflow_step_id ORDER BY p.position)), '[]') AS depends_on,
                c.checkpoint AS checkpoint, c.attempt AS checkpoint_attempt,
                c.saved_at AS checkpoint_ms, s.item_index, s.item
         FROM tasker_workflow_steps s
         LEFT JOIN tasker_step_checkpoints c ON c.workflow_step_id = s.workflow_step_id
         WHERE s.task_id = ? AND {filter} ORDER BY s.position, s.item_index NULLS FIRST"
    )
}
