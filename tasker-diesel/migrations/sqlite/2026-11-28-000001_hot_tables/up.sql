-- What the API, the CLI and retention read: a step's history, and
-- transitions by time; task lists filtered by state. (Storage parameters
-- are PostgreSQL's; SQLite needs none.)
CREATE INDEX tasker_workflow_step_transitions_step ON tasker_workflow_step_transitions (workflow_step_id);
CREATE INDEX tasker_workflow_step_transitions_created ON tasker_workflow_step_transitions (created_at);
CREATE INDEX tasker_task_transitions_created ON tasker_task_transitions (created_at);
CREATE INDEX tasker_tasks_state_created ON tasker_tasks (state, created_at DESC, task_id DESC);
