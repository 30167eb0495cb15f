-- A step's checkpoint (`ctx.save_checkpoint`): one row per step, replaced at
-- every save, written only by the attempt that holds the step. A table of
-- its own, so the hot step rows and their statements do not change.
CREATE TABLE tasker_step_checkpoints (
    workflow_step_id BIGINT PRIMARY KEY
        REFERENCES tasker_workflow_steps (workflow_step_id) ON DELETE CASCADE,
    task_id BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    checkpoint JSONB NOT NULL,
    saved_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tasker_step_checkpoints_task ON tasker_step_checkpoints (task_id);
