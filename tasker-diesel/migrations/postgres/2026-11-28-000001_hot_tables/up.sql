-- Queue churn: every step is updated several times (ready -> in_progress ->
-- complete, lease renewals, parent counters) and tasks once per finished
-- step. Leave room in each page so updates that change no indexed column
-- (counters, results, timestamps) can stay on the page (HOT), and vacuum
-- these tables after a small share of their rows changed instead of the
-- default 20%, so dead rows never outnumber live ones in the claim's path.
ALTER TABLE tasker_workflow_steps SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 500,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE tasker_tasks SET (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 500,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
-- Audit tables are append-only: analyze often enough for good plans.
ALTER TABLE tasker_workflow_step_transitions SET (autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE tasker_task_transitions SET (autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);

-- What the API, the CLI and retention read: a step's history, and
-- transitions by time.
CREATE INDEX tasker_workflow_step_transitions_step ON tasker_workflow_step_transitions (workflow_step_id);
CREATE INDEX tasker_workflow_step_transitions_created ON tasker_workflow_step_transitions (created_at);
CREATE INDEX tasker_task_transitions_created ON tasker_task_transitions (created_at);
-- Task lists filtered by state, newest first.
CREATE INDEX tasker_tasks_state_created ON tasker_tasks (state, created_at DESC, task_id DESC);
