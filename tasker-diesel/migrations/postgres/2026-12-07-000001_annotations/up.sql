-- Annotations are written by steps (`ctx.annotate`) with their results:
-- which step recorded each, and an index to find tasks by annotation type.
ALTER TABLE tasker_task_annotations ADD COLUMN workflow_step_id BIGINT;
CREATE INDEX tasker_task_annotations_type ON tasker_task_annotations (annotation_type, task_id);
