WITH task AS (
  INSERT INTO tasker_tasks (named_task_id, state, context, identity_key, initiator, source_system,
                            reason, tags, unfinished_steps, priority, deadline_at)
  VALUES ($1, 'pending', $2::jsonb, $3, $4, $5, $6, $7::jsonb, $8, $18,
          now() + make_interval(secs => $19::float8 / 1000))
  ON CONFLICT (identity_key) DO NOTHING
  RETURNING task_id, deadline_at
), steps AS (
  INSERT INTO tasker_workflow_steps (task_id, named_task_id, name, position, state, max_attempts,
                                     attempt_budget, timeout_ms, pending_parents, priority,
                                     head_start_ms, claim_at, deadline_at)
  SELECT task.task_id, $1, s.name, s.position,
         CASE WHEN s.parents = 0 THEN 'ready' ELSE 'pending' END,
         s.max_attempts, s.max_attempts, s.timeout_ms, s.parents, s.priority, s.head_start,
         now() - make_interval(secs => s.head_start::float8 / 1000), task.deadline_at
  FROM task, unnest($9::text[], $10::int[], $11::int[], $12::bigint[], $13::int[], $20::smallint[],
                    $21::bigint[])
       AS s(name, position, max_attempts, timeout_ms, parents, priority, head_start)
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
SELECT task_id AS id FROM task WHERE (SELECT count(*) FROM wake) >= 0
