-- Skipped steps count as resolved by hand once skipping is gone.
UPDATE tasker_workflow_steps SET state = 'resolved_manually' WHERE state = 'skipped';
ALTER TABLE tasker_workflow_steps DROP CONSTRAINT tasker_workflow_steps_state_check;
ALTER TABLE tasker_workflow_steps ADD CONSTRAINT tasker_workflow_steps_state_check
    CHECK (state IN ('pending', 'ready', 'in_progress', 'complete', 'error', 'cancelled',
                     'resolved_manually'));
