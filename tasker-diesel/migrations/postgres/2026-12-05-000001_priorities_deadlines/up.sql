-- Priorities and deadlines. A step waits in the claim queue by its claim
-- time: when it became ready (run_at) moved earlier by the head start its
-- priority gave it at creation (head_start_ms; negative moves it later).
-- The deadline is copied from the task to its steps so claims need no join.
ALTER TABLE tasker_tasks
    ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0,
    ADD COLUMN deadline_at TIMESTAMPTZ;
ALTER TABLE tasker_workflow_steps
    ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0,
    ADD COLUMN head_start_ms BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN claim_at TIMESTAMPTZ,
    ADD COLUMN deadline_at TIMESTAMPTZ;
UPDATE tasker_workflow_steps SET claim_at = run_at;
ALTER TABLE tasker_workflow_steps
    ALTER COLUMN claim_at SET NOT NULL,
    ALTER COLUMN claim_at SET DEFAULT now();

DROP INDEX tasker_workflow_steps_ready;
CREATE INDEX tasker_workflow_steps_ready ON tasker_workflow_steps (claim_at, workflow_step_id) WHERE state = 'ready';
-- The deadline sweep: unfinished tasks past their deadline, and ready
-- steps that may no longer start (a pending step is swept once released).
CREATE INDEX tasker_tasks_deadline ON tasker_tasks (deadline_at)
    WHERE deadline_at IS NOT NULL AND state IN ('pending', 'in_progress');
CREATE INDEX tasker_workflow_steps_deadline ON tasker_workflow_steps (deadline_at)
    WHERE deadline_at IS NOT NULL AND state = 'ready';
