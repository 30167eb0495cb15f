-- Limits held across every worker of the database. A row per limit is its
-- lock (a worker claims a limit's steps only while holding the row) and its
-- token bucket for rate limits. Running steps are counted, not stored: a
-- count cannot drift when a worker dies.
CREATE TABLE tasker_limits (
    name TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    refilled_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
