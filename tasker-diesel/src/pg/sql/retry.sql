WITH s AS (
  UPDATE tasker_workflow_steps SET state = 'ready',
    run_at = now() + make_interval(secs => $5),
    claim_at = now() + make_interval(secs => $5 - head_start_ms::float8 / 1000), lease_expires_at = NULL, worker_id = NULL,
    last_error = $2::jsonb, updated_at = now()
  WHERE workflow_step_id = $1 AND attempts = $3 AND state = 'in_progress'
  RETURNING workflow_step_id, task_id
), audit AS (
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, attempt, actor, error)
  SELECT workflow_step_id, task_id, 'in_progress', 'ready', $3, $4, $6 FROM s
)
SELECT count(*) AS applied, 0::bigint AS released, NULL::text AS task_state,
       NULL::bigint AS task_age_ms FROM s
