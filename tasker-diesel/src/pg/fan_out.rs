//! The fan-out primitives on PostgreSQL (see `crate::fan_out`).

use diesel::sql_types::{Array, BigInt, Bool, Integer, Text};
use diesel::{sql_query, QueryableByName};
use diesel_async::RunQueryDsl;

use super::primitives::{cancel_steps, PgOps};
use serde_json::Value;
use tasker::store::{Completed, Completion, Outcome, StoreError};
use tasker::{StepError, StepId};

use super::successes::record_successes;
use crate::fan_out::{
    AttemptRow, FanOutCount, FanOutPrimitives, FanOutRow, OutputRow, PlaceRow, Role, COLLECTED_SQL,
    COLLECTS_SQL, ROLE_SQL,
};
use crate::operator::Tx;
use crate::operator::TxError;
use crate::rows::{CountRow, IdRow};

impl FanOutPrimitives for PgOps<'_> {
    async fn lock_running(&mut self, step_id: i64, attempt: u32) -> Tx<Option<(i64, i32)>> {
        Ok(sql_query(
            "SELECT task_id, position FROM tasker_workflow_steps
             WHERE workflow_step_id = $1 AND attempts = $2 AND state = 'in_progress' FOR UPDATE",
        )
        .bind::<BigInt, _>(step_id)
        .bind::<Integer, _>(attempt as i32)
        .get_results::<PlaceRow>(self.conn)
        .await?
        .pop()
        .map(|r| (r.task_id, r.position)))
    }

    async fn insert_instances(
        &mut self,
        group: i64,
        items: &[String],
        ready: u32,
        source: &str,
        actor: &str,
    ) -> Tx<()> {
        sql_query(
            "WITH g AS (
               SELECT task_id, named_task_id, name, position, attempt_budget, timeout_ms, priority,
                      head_start_ms, deadline_at
               FROM tasker_workflow_steps WHERE workflow_step_id = $1
             ), ins AS (
               INSERT INTO tasker_workflow_steps (task_id, named_task_id, name, position, state,
                 max_attempts, attempt_budget, timeout_ms, pending_parents, priority, head_start_ms,
                 claim_at, deadline_at, item_index, item)
               SELECT g.task_id, g.named_task_id, g.name, g.position,
                      CASE WHEN i.n <= $3 THEN 'ready' ELSE 'pending' END,
                      g.attempt_budget, g.attempt_budget, g.timeout_ms, 0, g.priority, g.head_start_ms,
                      now() - make_interval(secs => g.head_start_ms::float8 / 1000), g.deadline_at,
                      (i.n - 1)::int, i.item::jsonb
               FROM g, unnest($2::text[]) WITH ORDINALITY AS i(item, n)
               RETURNING workflow_step_id, task_id, state
             ), audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, actor)
               SELECT workflow_step_id, task_id, NULL, state, $4 FROM ins
             ), edges AS (
               INSERT INTO tasker_workflow_step_edges (from_step_id, to_step_id, task_id)
               SELECT e.from_step_id, ins.workflow_step_id, ins.task_id
               FROM tasker_workflow_step_edges e
               JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
               CROSS JOIN ins
               WHERE e.to_step_id = $1 AND p.name <> $5
             )
             SELECT count(*) AS count FROM ins",
        )
        .bind::<BigInt, _>(group)
        .bind::<Array<Text>, _>(items)
        .bind::<BigInt, _>(i64::from(ready))
        .bind::<Text, _>(actor)
        .bind::<Text, _>(source)
        .get_result::<CountRow>(self.conn)
        .await?;
        Ok(())
    }

    async fn open_fan_out(
        &mut self,
        group: i64,
        (task_id, position): (i64, i32),
        (items, concurrency): (u32, u32),
        collect: bool,
    ) -> Tx<()> {
        sql_query(
            "WITH f AS (
               INSERT INTO tasker_step_fan_outs
                 (workflow_step_id, task_id, position, items, concurrency, unfinished, collect_errors)
               VALUES ($1, $2, $3, $4, $5, $4, $6)
             ), g AS (
               UPDATE tasker_workflow_steps SET lease_expires_at = NULL, worker_id = NULL,
                 updated_at = now()
               WHERE workflow_step_id = $1
             )
             UPDATE tasker_tasks SET unfinished_steps = unfinished_steps + $4, updated_at = now()
             WHERE task_id = $2",
        )
        .bind::<BigInt, _>(group)
        .bind::<BigInt, _>(task_id)
        .bind::<Integer, _>(position)
        .bind::<Integer, _>(items as i32)
        .bind::<Integer, _>(concurrency as i32)
        .bind::<Bool, _>(collect)
        .execute(self.conn)
        .await?;
        Ok(())
    }

    async fn count_off_items(&mut self, step_ids: &[i64]) -> Tx<Vec<(FanOutCount, i32, i64)>> {
        // The groups' rows locked in one order, so two batches of the same
        // groups never wait for each other in a cycle.
        let groups = sql_query(
            "SELECT f.workflow_step_id AS id FROM tasker_step_fan_outs f
             JOIN (SELECT DISTINCT task_id, position FROM tasker_workflow_steps
                   WHERE workflow_step_id = ANY($1) AND item_index IS NOT NULL) s
               ON s.task_id = f.task_id AND s.position = f.position
             ORDER BY f.workflow_step_id FOR UPDATE OF f",
        )
        .bind::<Array<BigInt>, _>(step_ids)
        .load::<IdRow>(self.conn)
        .await?;
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sql_query(
            "WITH c AS (
               SELECT task_id, position, count(*)::int AS n, max(workflow_step_id) AS step
               FROM tasker_workflow_steps
               WHERE workflow_step_id = ANY($1) AND item_index IS NOT NULL
               GROUP BY task_id, position
             )
             UPDATE tasker_step_fan_outs f SET unfinished = f.unfinished - c.n
             FROM c WHERE f.task_id = c.task_id AND f.position = c.position
             RETURNING f.workflow_step_id, f.task_id, f.position, f.items, f.concurrency,
                       f.unfinished, f.collect_errors, c.n, c.step",
        )
        .bind::<Array<BigInt>, _>(step_ids)
        .load::<CountedRow>(self.conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.fan_out.into(), r.n, r.step))
            .collect())
    }

    async fn release_items(
        &mut self,
        (task_id, position): (i64, i32),
        from: i32,
        to: i32,
        actor: &str,
    ) -> Tx<u32> {
        let released = sql_query(
            "WITH r AS (
               UPDATE tasker_workflow_steps SET state = 'ready', updated_at = now()
               WHERE task_id = $1 AND position = $2 AND COALESCE(item_index, -1) >= $3
                 AND COALESCE(item_index, -1) < $4 AND state = 'pending'
               RETURNING workflow_step_id, task_id, item_index
             ), audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, actor)
               SELECT workflow_step_id, task_id, 'pending', 'ready', $5 FROM r ORDER BY item_index
             )
             SELECT count(*) AS count FROM r",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Integer, _>(position)
        .bind::<Integer, _>(from)
        .bind::<Integer, _>(to)
        .bind::<Text, _>(actor)
        .get_result::<CountRow>(self.conn)
        .await?;
        Ok(released.count as u32)
    }

    async fn instance_outputs(
        &mut self,
        group: i64,
        (task_id, position): (i64, i32),
    ) -> Tx<(u32, Vec<OutputRow>)> {
        let attempt = sql_query(
            "SELECT attempts::bigint AS count FROM tasker_workflow_steps WHERE workflow_step_id = $1",
        )
        .bind::<BigInt, _>(group)
        .get_result::<CountRow>(self.conn)
        .await?;
        let outputs = sql_query(
            "SELECT results::text AS results, state = 'error' AS failed FROM tasker_workflow_steps
             WHERE task_id = $1 AND position = $2 AND item_index IS NOT NULL
             ORDER BY item_index",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Integer, _>(position)
        .load::<OutputRow>(self.conn)
        .await?;
        Ok((attempt.count as u32, outputs))
    }

    async fn complete_group(
        &mut self,
        group: i64,
        attempt: u32,
        output: Value,
        actor: &str,
    ) -> Tx<Completed> {
        let completion = group_success(group, attempt, output.clone(), actor);
        let row = record_successes(self.conn, &[(0, &completion, &output)], self.channel)
            .await?
            .pop()
            .ok_or_else(|| {
                TxError::Store(StoreError::Database {
                    message: "completing a fan-out group returned no row".to_owned(),
                    source: None,
                })
            })?;
        Ok(row.into_completed()?)
    }

    async fn collects(&mut self, step_id: i64) -> Tx<bool> {
        Ok(sql_query(COLLECTS_SQL)
            .bind::<BigInt, _>(step_id)
            .get_results::<CountRow>(self.conn)
            .await?
            .iter()
            .any(|r| r.count == 1))
    }

    async fn collected(&mut self, step_id: i64) -> Tx<bool> {
        let row = sql_query(COLLECTED_SQL)
            .bind::<BigInt, _>(step_id)
            .get_result::<CountRow>(self.conn)
            .await?;
        Ok(row.count > 0)
    }

    async fn collect_failure(
        &mut self,
        (step_id, attempt): (i64, u32),
        error: &StepError,
        result: &Value,
        actor: &str,
    ) -> Tx<bool> {
        let row = sql_query(
            "WITH s AS (
               UPDATE tasker_workflow_steps SET state = 'error', lease_expires_at = NULL,
                 last_error = $2::jsonb, results = $3::jsonb, updated_at = now()
               WHERE workflow_step_id = $1 AND attempts = $4 AND state = 'in_progress'
               RETURNING workflow_step_id, task_id
             ), audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, attempt, actor, error)
               SELECT workflow_step_id, task_id, 'in_progress', 'error', $4, $5, $6 FROM s
             ), t AS (
               UPDATE tasker_tasks SET unfinished_steps = unfinished_steps - 1, updated_at = now()
               WHERE task_id IN (SELECT task_id FROM s)
             )
             SELECT count(*) AS count FROM s",
        )
        .bind::<BigInt, _>(step_id)
        .bind::<Text, _>(serde_json::to_string(error).expect("errors serialize"))
        .bind::<Text, _>(result.to_string())
        .bind::<Integer, _>(attempt as i32)
        .bind::<Text, _>(actor)
        .bind::<Text, _>(error.to_string())
        .get_result::<CountRow>(self.conn)
        .await?;
        Ok(row.count > 0)
    }

    async fn expired_collected_items(&mut self, all: bool) -> Tx<Vec<(i64, u32)>> {
        let lease = if all {
            "s.lease_expires_at IS NOT NULL"
        } else {
            "s.lease_expires_at < now()"
        };
        let rows = sql_query(format!(
            "SELECT s.workflow_step_id, s.attempts FROM tasker_workflow_steps s
             JOIN tasker_step_fan_outs f ON f.task_id = s.task_id AND f.position = s.position
             WHERE s.state = 'in_progress' AND {lease} AND s.attempts >= s.max_attempts
               AND s.item_index IS NOT NULL AND f.collect_errors
             ORDER BY s.workflow_step_id LIMIT 1000 FOR UPDATE OF s SKIP LOCKED"
        ))
        .load::<AttemptRow>(self.conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.workflow_step_id, r.attempts as u32))
            .collect())
    }

    async fn role(&mut self, step_id: i64) -> Tx<Role> {
        let row = sql_query(ROLE_SQL)
            .bind::<BigInt, _>(step_id)
            .get_result::<CountRow>(self.conn)
            .await?;
        Ok(Role::from_code(row.count))
    }

    async fn cancel_instances(&mut self, group: i64, actor: &str) -> Tx<()> {
        cancel_steps(
            self.conn,
            "",
            "tasker_workflow_steps g
             JOIN tasker_workflow_steps s ON s.task_id = g.task_id AND s.position = g.position
               AND s.item_index IS NOT NULL AND g.workflow_step_id = $1",
            group,
            actor,
        )
        .await
    }
}

/// The success that completes a fan-out group: recorded by its last
/// instance's worker (or the operator who resolved it).
fn group_success(group: i64, attempt: u32, output: Value, actor: &str) -> Completion {
    Completion {
        step_id: StepId(group),
        attempt,
        outcome: Outcome::Complete(output),
        worker: actor.to_owned(),
        duration: std::time::Duration::ZERO,
        take_next: None,
        annotations: Vec::new(),
        skip: Vec::new(),
        item_index: None,
    }
}

/// A fan-out row after a batch was counted off it: how many, and one of
/// them.
#[derive(QueryableByName)]
struct CountedRow {
    #[diesel(embed)]
    fan_out: FanOutRow,
    #[diesel(sql_type = Integer)]
    n: i32,
    #[diesel(sql_type = BigInt)]
    step: i64,
}

/// Records fan-out instances' successes in the caller's transaction: one
/// statement for their results (fenced by attempt, as any success), then
/// their groups counted, the next instances released and finished groups
/// completed (`crate::fan_out::items_finished`).
pub(super) async fn record_instances(
    conn: &mut diesel_async::AsyncPgConnection,
    instances: &[(usize, &Completion, &Value)],
    channel: &str,
) -> Tx<Vec<Completed>> {
    let Some((_, first, _)) = instances.first() else {
        return Ok(Vec::new());
    };
    let mut completed = record_successes(conn, instances, channel)
        .await?
        .into_iter()
        .map(super::rows::BatchRow::into_completed)
        .collect::<Result<Vec<_>, _>>()?;
    let applied: Vec<i64> = instances
        .iter()
        .zip(&completed)
        .filter(|(_, c)| c.applied)
        .map(|((_, c, _), _)| c.step_id.0)
        .collect();
    let finished =
        crate::fan_out::items_finished(&mut PgOps { conn, channel }, &applied, &first.worker)
            .await?;
    if finished.iter().any(|(_, f)| f.released > 0) {
        sql_query("SELECT pg_notify($1, '')")
            .bind::<Text, _>(channel)
            .execute(conn)
            .await?;
    }
    for (step, done) in finished {
        if let Some(i) = instances.iter().position(|(_, c, _)| c.step_id.0 == step) {
            done.add_to(&mut completed[i]);
        }
    }
    Ok(completed)
}
