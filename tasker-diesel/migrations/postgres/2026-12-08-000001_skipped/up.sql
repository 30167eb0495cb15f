-- Decision steps: a branch the decision did not choose ends `skipped`.
-- NOT VALID then VALIDATE: the new constraint admits every old row, and
-- validating takes a lock that lets reads and writes go on.
ALTER TABLE tasker_workflow_steps DROP CONSTRAINT tasker_workflow_steps_state_check;
ALTER TABLE tasker_workflow_steps ADD CONSTRAINT tasker_workflow_steps_state_check
    CHECK (state IN ('pending', 'ready', 'in_progress', 'complete', 'error', 'cancelled',
                     'resolved_manually', 'skipped')) NOT VALID;
ALTER TABLE tasker_workflow_steps VALIDATE CONSTRAINT tasker_workflow_steps_state_check;
