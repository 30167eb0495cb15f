DROP INDEX tasker_task_annotations_type;
ALTER TABLE tasker_task_annotations DROP COLUMN workflow_step_id;
