-- Limits (see the PostgreSQL migration). refilled_at is epoch milliseconds.
CREATE TABLE tasker_limits (
    name TEXT PRIMARY KEY NOT NULL,
    tokens DOUBLE NOT NULL,
    refilled_at INTEGER NOT NULL
);
