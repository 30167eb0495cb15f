-- Fan-out (`#[step(for_each = source)]`): the mapped step's own row is the
-- group; once its parents are done it is claimed once, and the claim's
-- completion inserts one instance row per item of the source's output, at
-- the group's position with its `item_index` and `item`. The group stays
-- `in_progress` without a lease until its last instance finishes, which
-- completes it with the instances' outputs in item order.
ALTER TABLE tasker_workflow_steps
    ADD COLUMN item_index INTEGER,
    ADD COLUMN item JSONB;
-- A position now holds the group and its instances: unique per item.
ALTER TABLE tasker_workflow_steps DROP CONSTRAINT tasker_workflow_steps_task_id_position_key;
CREATE UNIQUE INDEX tasker_workflow_steps_place
    ON tasker_workflow_steps (task_id, position, (COALESCE(item_index, -1)));
-- A fan-out's window and count, one row per group, locked by each
-- instance's completion (so siblings finish one after the other).
CREATE TABLE tasker_step_fan_outs (
    workflow_step_id BIGINT PRIMARY KEY
        REFERENCES tasker_workflow_steps (workflow_step_id) ON DELETE CASCADE,
    task_id BIGINT NOT NULL,
    position INTEGER NOT NULL,
    -- Instances in all, at most this many released at once.
    items INTEGER NOT NULL,
    concurrency INTEGER NOT NULL,
    -- Instances not finished yet; the group completes at zero. The
    -- instances released so far follow: the first `concurrency`, then one
    -- per finished instance.
    unfinished INTEGER NOT NULL,
    UNIQUE (task_id, position)
);
