WITH input AS MATERIALIZED (
  SELECT *, 'in_progress'::text AS running
  FROM unnest($1::bigint[], $2::int[], $3::text[], $6::bool[]) WITH ORDINALITY AS i(step_id, attempt, results, take, ord)
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
    AND (c.deadline_at IS NULL OR c.deadline_at > now())
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
LEFT JOIN LATERAL (
  SELECT f.state, f.created_at FROM finished f JOIN steps_done sd ON sd.task_id = f.task_id
  WHERE f.task_id = d.task_id AND f.state IN ('complete', 'cancelled') AND f.unfinished_steps = 0
    AND sd.last_step = i.step_id
) fin ON true
LEFT JOIN take tk ON tk.from_step_id = i.step_id
LEFT JOIN released n ON n.workflow_step_id = tk.to_step_id AND n.state = 'in_progress'
