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
  RETURNING task_id, created_at
), t_audit AS (
  INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
  SELECT task_id, 'in_progress', 'error', $4 FROM t
)
SELECT (SELECT count(*) FROM s) AS applied, 0::bigint AS released,
       (SELECT 'error'::text FROM t) AS task_state,
       (SELECT (extract(epoch from now() - created_at) * 1000)::bigint FROM t) AS task_age_ms
