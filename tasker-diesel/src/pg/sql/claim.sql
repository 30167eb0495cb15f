WITH picked AS (
  SELECT workflow_step_id FROM tasker_workflow_steps
  WHERE state = 'ready' AND run_at <= now() AND named_task_id = ANY($1)
    AND (deadline_at IS NULL OR deadline_at > now())
    /*scope*/
  ORDER BY claim_at, workflow_step_id
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE tasker_workflow_steps s SET state = 'in_progress', attempts = s.attempts + 1,
    lease_expires_at = now() + make_interval(secs => $3), worker_id = $4, updated_at = now()
  FROM picked WHERE s.workflow_step_id = picked.workflow_step_id
  RETURNING s.workflow_step_id, s.task_id, s.named_task_id, s.name, s.position, s.attempts, s.max_attempts,
    s.item_index, s.item
), step_audit AS (
  INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, attempt, actor)
  SELECT workflow_step_id, task_id, 'ready', 'in_progress', attempts, $4 FROM claimed
), started AS (
  UPDATE tasker_tasks t SET state = 'in_progress', updated_at = now()
  WHERE t.task_id IN (SELECT task_id FROM claimed) AND t.state = 'pending'
  RETURNING t.task_id
), task_audit AS (
  INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
  SELECT task_id, 'pending', 'in_progress', $4 FROM started
)
SELECT c.workflow_step_id, c.task_id, c.named_task_id, c.name, c.position, c.attempts, c.max_attempts,
       c.item_index, c.item::text AS item,
       t.context::text AS context,
       COALESCE((SELECT json_agg(json_build_array(p.name, p.results))
                 FROM tasker_workflow_step_edges e
                 JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
                 WHERE e.to_step_id = c.workflow_step_id), '[]'::json)::text AS inputs,
       c.task_id IN (SELECT task_id FROM started) AS task_started
FROM claimed c JOIN tasker_tasks t ON t.task_id = c.task_id
