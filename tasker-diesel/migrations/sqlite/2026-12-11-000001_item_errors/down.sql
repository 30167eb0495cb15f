ALTER TABLE tasker_step_fan_outs DROP COLUMN collect_errors;
