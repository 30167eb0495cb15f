-- The dashboard's dead letters: failed steps, newest failure first. Only
-- steps in `error` are in it, so the queue's updates never touch it.
CREATE INDEX tasker_workflow_steps_failed ON tasker_workflow_steps (updated_at DESC, workflow_step_id DESC) WHERE state = 'error' AND results IS NULL;
