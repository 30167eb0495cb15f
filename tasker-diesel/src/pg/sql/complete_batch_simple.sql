WITH input AS MATERIALIZED (
  SELECT *, 'in_progress'::text AS running
  FROM unnest($1::bigint[], $2::int[], $3::text[]) WITH ORDINALITY AS i(step_id, attempt, results, ord)
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
  RETURNING t.task_id, t.state, t.unfinished_steps, t.created_at
), finished_audit AS (
  INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
  SELECT task_id, 'in_progress', state, $4 FROM finished
  WHERE state IN ('complete', 'cancelled') AND unfinished_steps = 0
), released_by AS (
  -- Who released each child that became ready: of several completions of
  -- the batch, the last, as when they are recorded one by one.
  SELECT DISTINCT ON (r.workflow_step_id) r.workflow_step_id, i.step_id
  FROM released r
  JOIN tasker_workflow_step_edges e ON e.to_step_id = r.workflow_step_id
  JOIN done d ON d.workflow_step_id = e.from_step_id
  JOIN input i ON i.step_id = d.workflow_step_id
  WHERE r.state = 'ready'
  ORDER BY r.workflow_step_id, i.ord DESC
), wake AS (
  SELECT pg_notify($5, '') FROM (SELECT 1 FROM released WHERE state = 'ready' LIMIT 1) r
)
SELECT (d.workflow_step_id IS NOT NULL)::int::bigint AS applied,
       (SELECT count(*) FROM released_by rb WHERE rb.step_id = i.step_id)
         + 0 * (SELECT count(*) FROM wake) AS released,
       fin.state AS task_state,
       (extract(epoch from now() - fin.created_at) * 1000)::bigint AS task_age_ms,
       NULL::bigint AS next_step_id, NULL::bigint AS next_task_id, NULL::bigint AS next_named_task_id,
       NULL::text AS next_name, NULL::int AS next_position, NULL::int AS next_attempts,
       NULL::int AS next_max_attempts, NULL::text AS next_context, NULL::text AS next_inputs
FROM input i LEFT JOIN done d ON d.workflow_step_id = i.step_id
LEFT JOIN LATERAL (
  SELECT f.state, f.created_at FROM finished f JOIN steps_done sd ON sd.task_id = f.task_id
  WHERE f.task_id = d.task_id AND f.state IN ('complete', 'cancelled') AND f.unfinished_steps = 0
    AND sd.last_step = i.step_id
) fin ON true
