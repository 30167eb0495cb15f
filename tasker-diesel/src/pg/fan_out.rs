//! The fan-out primitives on PostgreSQL (see `crate::fan_out`).

use diesel::sql_query;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel_async::RunQueryDsl;

use super::primitives::PgOps;
use crate::fan_out::{FanOutCount, FanOutPrimitives, FanOutRow, OutputRow, PlaceRow, COUNT_OFF_SQL};
use crate::operator::Tx;
use crate::rows::CountRow;

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
        items: u32,
        concurrency: u32,
    ) -> Tx<()> {
        sql_query(
            "WITH f AS (
               INSERT INTO tasker_step_fan_outs
                 (workflow_step_id, task_id, position, items, concurrency, unfinished)
               VALUES ($1, $2, $3, $4, $5, $4)
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
        .execute(self.conn)
        .await?;
        Ok(())
    }

    async fn count_off_item(&mut self, step_id: i64) -> Tx<Option<FanOutCount>> {
        Ok(sql_query(COUNT_OFF_SQL)
            .bind::<BigInt, _>(step_id)
            .get_results::<FanOutRow>(self.conn)
            .await?
            .pop()
            .map(Into::into))
    }

    async fn release_item(
        &mut self,
        (task_id, position): (i64, i32),
        index: i32,
        actor: &str,
    ) -> Tx<bool> {
        let released = sql_query(
            "WITH r AS (
               UPDATE tasker_workflow_steps SET state = 'ready', updated_at = now()
               WHERE task_id = $1 AND position = $2 AND COALESCE(item_index, -1) = $3
                 AND state = 'pending'
               RETURNING workflow_step_id, task_id
             ), audit AS (
               INSERT INTO tasker_workflow_step_transitions
                 (workflow_step_id, task_id, from_state, to_state, actor)
               SELECT workflow_step_id, task_id, 'pending', 'ready', $4 FROM r
             )
             SELECT count(*) AS count FROM r",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Integer, _>(position)
        .bind::<Integer, _>(index)
        .bind::<Text, _>(actor)
        .get_result::<CountRow>(self.conn)
        .await?;
        Ok(released.count > 0)
    }

    async fn instance_outputs(
        &mut self,
        group: i64,
        (task_id, position): (i64, i32),
    ) -> Tx<(u32, Vec<Option<String>>)> {
        let attempt = sql_query(
            "SELECT attempts::bigint AS count FROM tasker_workflow_steps WHERE workflow_step_id = $1",
        )
        .bind::<BigInt, _>(group)
        .get_result::<CountRow>(self.conn)
        .await?;
        let outputs = sql_query(
            "SELECT results::text AS results FROM tasker_workflow_steps
             WHERE task_id = $1 AND position = $2 AND item_index IS NOT NULL
             ORDER BY item_index",
        )
        .bind::<BigInt, _>(task_id)
        .bind::<Integer, _>(position)
        .load::<OutputRow>(self.conn)
        .await?;
        Ok((
            attempt.count as u32,
            outputs.into_iter().map(|r| r.results).collect(),
        ))
    }
}
