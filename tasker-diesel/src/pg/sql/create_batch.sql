-- Many tasks in one statement: task-level arrays ($1..$9, one element per
-- task), step-level arrays ($10..$15, with the task's ordinal), edge arrays
-- ($16..$18), the notification channel ($19), then task priorities and
-- deadlines in ms ($20, $21) and step priorities and head starts ($22, $23). Task ids are drawn up front
-- so steps, edges and audit rows can refer to them; a task whose identity
-- key exists is skipped (its drawn id is simply unused) and not returned.
WITH input AS MATERIALIZED (
  SELECT t.ord, nextval(pg_get_serial_sequence('tasker_tasks', 'task_id')) AS task_id,
         t.handler_id, t.context, t.identity_key, t.initiator, t.source_system, t.reason,
         t.tags, t.step_count, t.actor, t.priority,
         now() + make_interval(secs => t.deadline_ms::float8 / 1000) AS deadline_at
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
              $7::text[], $8::int[], $9::text[], $20::smallint[], $21::bigint[]) WITH ORDINALITY
       AS t(handler_id, context, identity_key, initiator, source_system, reason, tags,
            step_count, actor, priority, deadline_ms, ord)
), task AS (
  INSERT INTO tasker_tasks (task_id, named_task_id, state, context, identity_key, initiator,
                            source_system, reason, tags, unfinished_steps, priority, deadline_at)
  SELECT task_id, handler_id, 'pending', context::jsonb, identity_key, initiator, source_system,
         reason, tags::jsonb, step_count, priority, deadline_at
  FROM input ORDER BY ord
  ON CONFLICT (identity_key) DO NOTHING
  RETURNING task_id, named_task_id, deadline_at
), steps AS (
  INSERT INTO tasker_workflow_steps (task_id, named_task_id, name, position, state, max_attempts,
                                     attempt_budget, timeout_ms, pending_parents, priority,
                                     head_start_ms, claim_at, deadline_at)
  SELECT task.task_id, task.named_task_id, s.name, s.position,
         CASE WHEN s.parents = 0 THEN 'ready' ELSE 'pending' END,
         s.max_attempts, s.max_attempts, s.timeout_ms, s.parents, s.priority, s.head_start,
         now() - make_interval(secs => s.head_start::float8 / 1000), task.deadline_at
  FROM unnest($10::bigint[], $11::text[], $12::int[], $13::int[], $14::bigint[], $15::int[],
              $22::smallint[], $23::bigint[])
       AS s(task_ord, name, position, max_attempts, timeout_ms, parents, priority, head_start)
  JOIN input i ON i.ord = s.task_ord
  JOIN task ON task.task_id = i.task_id
  RETURNING workflow_step_id, task_id, position, state
), edges AS (
  INSERT INTO tasker_workflow_step_edges (from_step_id, to_step_id, task_id)
  SELECT f.workflow_step_id, t.workflow_step_id, f.task_id
  FROM unnest($16::bigint[], $17::int[], $18::int[]) AS e(task_ord, from_pos, to_pos)
  JOIN input i ON i.ord = e.task_ord
  JOIN steps f ON f.task_id = i.task_id AND f.position = e.from_pos
  JOIN steps t ON t.task_id = i.task_id AND t.position = e.to_pos
), task_audit AS (
  INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
  SELECT task.task_id, NULL, 'pending', i.actor FROM task JOIN input i ON i.task_id = task.task_id
), step_audit AS (
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, actor)
  SELECT s.workflow_step_id, s.task_id, NULL, s.state, i.actor
  FROM steps s JOIN input i ON i.task_id = s.task_id
), wake AS (
  SELECT pg_notify($19, '') WHERE EXISTS (SELECT 1 FROM task)
)
SELECT i.ord AS ord, task.task_id AS id
FROM input i JOIN task ON task.task_id = i.task_id
WHERE (SELECT count(*) FROM wake) >= 0
