DROP INDEX tasker_workflow_steps_deadline;
DROP INDEX tasker_tasks_deadline;
DROP INDEX tasker_workflow_steps_ready;
CREATE INDEX tasker_workflow_steps_ready ON tasker_workflow_steps (run_at, workflow_step_id) WHERE state = 'ready';
ALTER TABLE tasker_workflow_steps DROP COLUMN priority, DROP COLUMN head_start_ms, DROP COLUMN claim_at, DROP COLUMN deadline_at;
ALTER TABLE tasker_tasks DROP COLUMN priority, DROP COLUMN deadline_at;
