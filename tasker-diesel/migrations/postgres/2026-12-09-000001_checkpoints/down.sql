DROP TABLE tasker_step_checkpoints;
