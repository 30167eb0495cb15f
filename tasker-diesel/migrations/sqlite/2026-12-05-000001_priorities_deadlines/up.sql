-- Priorities and deadlines (see the PostgreSQL migration). Times are
-- epoch milliseconds.
ALTER TABLE tasker_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasker_tasks ADD COLUMN deadline_at INTEGER;
ALTER TABLE tasker_workflow_steps ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasker_workflow_steps ADD COLUMN head_start_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasker_workflow_steps ADD COLUMN claim_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasker_workflow_steps ADD COLUMN deadline_at INTEGER;
UPDATE tasker_workflow_steps SET claim_at = run_at;

DROP INDEX tasker_workflow_steps_ready;
CREATE INDEX tasker_workflow_steps_ready ON tasker_workflow_steps (claim_at, workflow_step_id) WHERE state = 'ready';
CREATE INDEX tasker_tasks_deadline ON tasker_tasks (deadline_at)
    WHERE deadline_at IS NOT NULL AND state IN ('pending', 'in_progress');
CREATE INDEX tasker_workflow_steps_deadline ON tasker_workflow_steps (deadline_at)
    WHERE deadline_at IS NOT NULL AND state = 'ready';
