DROP TABLE tasker_step_fan_outs;
DELETE FROM tasker_workflow_steps WHERE item_index IS NOT NULL;
DROP INDEX tasker_workflow_steps_place;
ALTER TABLE tasker_workflow_steps ADD CONSTRAINT tasker_workflow_steps_task_id_position_key
    UNIQUE (task_id, position);
ALTER TABLE tasker_workflow_steps DROP COLUMN item_index, DROP COLUMN item;
