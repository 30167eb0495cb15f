DROP TABLE tasker_limits;
