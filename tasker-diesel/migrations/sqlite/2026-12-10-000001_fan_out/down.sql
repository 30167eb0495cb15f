DROP TABLE tasker_step_fan_outs;
DELETE FROM tasker_workflow_steps WHERE item_index IS NOT NULL;
CREATE TABLE tasker_workflow_steps_new (
    workflow_step_id INTEGER PRIMARY KEY,
    task_id BIGINT NOT NULL REFERENCES tasker_tasks,
    -- Copied from the task so claims need no join.
    named_task_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    -- Attempts granted at creation; an operator retry grants as many again.
    attempt_budget INTEGER NOT NULL,
    timeout_ms BIGINT,
    -- Parents not yet finished; the step becomes ready at zero.
    pending_parents INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    lease_expires_at INTEGER,
    worker_id TEXT,
    results TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    head_start_ms INTEGER NOT NULL DEFAULT 0,
    claim_at INTEGER NOT NULL DEFAULT 0,
    deadline_at INTEGER,
    UNIQUE (task_id, position)
);
INSERT INTO tasker_workflow_steps_new (workflow_step_id, task_id, named_task_id, name, position,
    state, attempts, max_attempts, attempt_budget, timeout_ms, pending_parents, run_at,
    lease_expires_at, worker_id, results, last_error, created_at, updated_at, priority,
    head_start_ms, claim_at, deadline_at)
SELECT workflow_step_id, task_id, named_task_id, name, position,
    state, attempts, max_attempts, attempt_budget, timeout_ms, pending_parents, run_at,
    lease_expires_at, worker_id, results, last_error, created_at, updated_at, priority,
    head_start_ms, claim_at, deadline_at
FROM tasker_workflow_steps;
DROP TABLE tasker_workflow_steps;
ALTER TABLE tasker_workflow_steps_new RENAME TO tasker_workflow_steps;
CREATE INDEX tasker_workflow_steps_leased ON tasker_workflow_steps (lease_expires_at) WHERE state = 'in_progress';
CREATE INDEX tasker_workflow_steps_ready ON tasker_workflow_steps (claim_at, workflow_step_id) WHERE state = 'ready';
CREATE INDEX tasker_workflow_steps_deadline ON tasker_workflow_steps (deadline_at)
    WHERE deadline_at IS NOT NULL AND state = 'ready';
