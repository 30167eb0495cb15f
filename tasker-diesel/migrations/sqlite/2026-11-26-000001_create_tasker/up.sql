-- tasker's tables (SQLite): JSON as TEXT, times as INTEGER milliseconds since the Unix epoch.

CREATE TABLE tasker_task_namespaces (
    task_namespace_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

-- One row per handler shape: a version whose graph changes gets a new row,
-- so tasks always point at the shape they were created from.
CREATE TABLE tasker_named_tasks (
    named_task_id INTEGER PRIMARY KEY,
    task_namespace_id BIGINT NOT NULL REFERENCES tasker_task_namespaces,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    UNIQUE (task_namespace_id, name, version, fingerprint)
);

CREATE TABLE tasker_named_steps (
    named_step_id INTEGER PRIMARY KEY,
    named_task_id BIGINT NOT NULL REFERENCES tasker_named_tasks,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    UNIQUE (named_task_id, position)
);

CREATE TABLE tasker_tasks (
    task_id INTEGER PRIMARY KEY,
    named_task_id BIGINT NOT NULL REFERENCES tasker_named_tasks,
    state TEXT NOT NULL CHECK (state IN ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')),
    context TEXT NOT NULL,
    identity_key TEXT UNIQUE,
    initiator TEXT,
    source_system TEXT,
    reason TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    -- Steps neither complete nor resolved; the task completes at zero.
    unfinished_steps INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX tasker_tasks_unfinished ON tasker_tasks (named_task_id) WHERE state IN ('pending', 'in_progress', 'error');
CREATE INDEX tasker_tasks_created ON tasker_tasks (created_at DESC, task_id DESC);

CREATE TABLE tasker_workflow_steps (
    workflow_step_id INTEGER PRIMARY KEY,
    task_id BIGINT NOT NULL REFERENCES tasker_tasks,
    -- Copied from the task so claims need no join.
    named_task_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    -- Attempts granted at creation; an operator retry grants as many again.
    attempt_budget INTEGER NOT NULL,
    timeout_ms BIGINT,
    -- Parents not yet complete; the step becomes ready at zero.
    pending_parents INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    lease_expires_at INTEGER,
    worker_id TEXT,
    results TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (task_id, position)
);
-- The claim query: ready steps whose time has come, oldest first.
CREATE INDEX tasker_workflow_steps_ready ON tasker_workflow_steps (run_at, workflow_step_id) WHERE state = 'ready';
-- Lease recovery.
CREATE INDEX tasker_workflow_steps_leased ON tasker_workflow_steps (lease_expires_at) WHERE state = 'in_progress';

CREATE TABLE tasker_workflow_step_edges (
    from_step_id BIGINT NOT NULL REFERENCES tasker_workflow_steps,
    to_step_id BIGINT NOT NULL REFERENCES tasker_workflow_steps,
    task_id BIGINT NOT NULL,
    PRIMARY KEY (from_step_id, to_step_id)
);
CREATE INDEX tasker_workflow_step_edges_to ON tasker_workflow_step_edges (to_step_id);

CREATE TABLE tasker_task_transitions (
    task_transition_id INTEGER PRIMARY KEY,
    task_id BIGINT NOT NULL REFERENCES tasker_tasks,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX tasker_task_transitions_task ON tasker_task_transitions (task_id);

CREATE TABLE tasker_workflow_step_transitions (
    workflow_step_transition_id INTEGER PRIMARY KEY,
    workflow_step_id BIGINT NOT NULL REFERENCES tasker_workflow_steps,
    task_id BIGINT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    attempt INTEGER,
    actor TEXT,
    error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX tasker_workflow_step_transitions_task ON tasker_workflow_step_transitions (task_id);

CREATE TABLE tasker_task_annotations (
    task_annotation_id INTEGER PRIMARY KEY,
    task_id BIGINT NOT NULL REFERENCES tasker_tasks,
    annotation_type TEXT NOT NULL,
    annotation TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX tasker_task_annotations_task ON tasker_task_annotations (task_id);
