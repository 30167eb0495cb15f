//! The SQL of the PostgreSQL store's hot paths. Static statements live in
//! `sql/*.sql` beside this file so they diff and highlight as SQL; the ones
//! built per call are the functions below.

/// BY_ID: statements that address steps by id compare `state` with a
/// value from their materialized input, not with the literal
/// `'in_progress'`. With the literal, PostgreSQL may prove the partial
/// index `tasker_workflow_steps_leased` usable and scan *all* of it (a
/// hash join) instead of probing the primary key; that index holds an
/// entry for every step that ran since the last vacuum, so the statement
/// grew with the history instead of with its batch (measured in the soak:
/// 2.47 ms and ~700 buffers per batched completion, 1.13 ms and ~430 by
/// key).
///
/// Completes many steps in one statement. Children of several completed
/// parents are decremented by the number of them; a task finished by the
/// batch is reported once, on its highest completed step. A completion that
/// asks for it (`take`) gets one of the children it releases claimed for the
/// same worker (`$4`, lease `$7` seconds), returned with its context and
/// inputs, so a chain needs one round trip per step.
pub(super) const COMPLETE_BATCH_SQL: &str = include_str!("sql/complete_batch.sql");

/// `COMPLETE_BATCH_SQL` without claim on release, for batches where no
/// completion asks for it (cheaper for PostgreSQL to run). Children of several completed parents are decremented by
/// the number of them; a task finished by the batch is reported once, on
/// its highest completed step.
pub(super) const COMPLETE_BATCH_SIMPLE_SQL: &str = include_str!("sql/complete_batch_simple.sql");

/// The largest batch of successes with a completion statement of its own
/// size (see [`complete_sized_sql`]); larger batches are planned at each
/// run.
pub(super) const SIZED_COMPLETIONS: usize = 32;

/// A completion statement for exactly `n` successes (1 to
/// [`SIZED_COMPLETIONS`]): the batch statement whose input reads the
/// arrays through `generate_series(1, n)` instead of `unnest`. Kept
/// prepared, its generic plan is planned for the `n` rows at hand (the
/// planner knows a constant series' length; an `unnest` of a parameter it
/// plans for 10), so PostgreSQL stops planning it after its first runs:
/// 1.3-1.6 ms of planning per statement saved on this project's machine
/// (2026-12-07), most of a chain's hop when the worker is not busy.
pub(super) fn complete_sized_sql(take: bool, n: usize) -> &'static str {
    use std::sync::OnceLock;
    static SQL: [[OnceLock<String>; SIZED_COMPLETIONS]; 2] =
        [const { [const { OnceLock::new() }; SIZED_COMPLETIONS] }; 2];
    assert!(
        (1..=SIZED_COMPLETIONS).contains(&n),
        "no sized statement for {n} rows"
    );
    SQL[usize::from(take)][n - 1].get_or_init(|| {
        let (batch, arrays, row) = if take {
            (
                COMPLETE_BATCH_SQL,
                "unnest($1::bigint[], $2::int[], $3::text[], $6::bool[]) WITH ORDINALITY",
                "($1::bigint[])[k], ($2::int[])[k], ($3::text[])[k], ($6::bool[])[k], k",
            )
        } else {
            (
                COMPLETE_BATCH_SIMPLE_SQL,
                "unnest($1::bigint[], $2::int[], $3::text[]) WITH ORDINALITY",
                "($1::bigint[])[k], ($2::int[])[k], ($3::text[])[k], k",
            )
        };
        assert!(batch.contains(arrays), "the completion's input changed");
        batch.replacen(
            arrays,
            &format!("(SELECT {row} FROM generate_series(1, {n}) AS k)"),
            1,
        )
    })
}

pub(super) const RETRY_SQL: &str = include_str!("sql/retry.sql");

pub(super) const FAIL_SQL: &str = include_str!("sql/fail.sql");

const CLAIM_SQL: &str = include_str!("sql/claim.sql");

/// Which ready steps a claim takes, as to limits.
#[derive(Debug, Clone, Copy)]
pub(super) enum ClaimScope {
    /// Every step of the handlers (`$1`): a worker without limits.
    All,
    /// Only the steps whose `handler id:step name` is in `$5`: one
    /// limit's steps.
    Inside,
    /// All but those: the steps no limit covers.
    Outside,
}

/// A step's key for limits, `named_task_id:name`: a plain filter on the
/// claim's index scan (a join against the pairs would let the planner scan
/// every ready step to find a few).
const STEP_KEY: &str = "(named_task_id::text || ':' || name)";

/// The claim statement for `scope` (built once per scope, so each stays
/// one prepared statement).
pub(super) fn claim_sql(scope: ClaimScope) -> &'static str {
    use std::sync::OnceLock;
    static SQL: [OnceLock<String>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let (slot, filter) = match scope {
        ClaimScope::All => (0, String::new()),
        ClaimScope::Inside => (1, format!("AND {STEP_KEY} = ANY($5::text[])")),
        ClaimScope::Outside => (2, format!("AND {STEP_KEY} <> ALL($5::text[])")),
    };
    SQL[slot].get_or_init(|| CLAIM_SQL.replace("/*scope*/", &filter))
}

/// Running steps of one limit: the keys `$1`, in progress (a fan-out's
/// group, without a lease, is not running; its instances are).
pub(super) fn limit_running_sql() -> &'static str {
    use std::sync::OnceLock;
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT count(*) AS count FROM tasker_workflow_steps
             WHERE state = 'in_progress' AND lease_expires_at IS NOT NULL
               AND {STEP_KEY} = ANY($1::text[])"
        )
    })
}

pub(super) const CREATE_SQL: &str = include_str!("sql/create.sql");

/// Many tasks in one statement (see the file's header).
pub(super) const CREATE_BATCH_SQL: &str = include_str!("sql/create_batch.sql");

pub(super) const MS: &str = "(extract(epoch from {}) * 1000)::bigint";

pub(super) fn ms(column: &str) -> String {
    MS.replace("{}", column)
}

pub(super) fn recover_sql(all: bool) -> String {
    // A fan-out group runs without a lease while its instances do: it is
    // never recovered.
    let condition = if all {
        "state = 'in_progress' AND lease_expires_at IS NOT NULL"
    } else {
        "state = 'in_progress' AND lease_expires_at < now()"
    };
    format!(
        "WITH expired AS (
           SELECT workflow_step_id FROM tasker_workflow_steps WHERE {condition}
           ORDER BY lease_expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED
         ), back AS (
           UPDATE tasker_workflow_steps s
           SET state = CASE WHEN s.attempts >= s.max_attempts THEN 'error' ELSE 'ready' END,
             run_at = now(), claim_at = now() - make_interval(secs => s.head_start_ms::float8 / 1000),
             lease_expires_at = NULL, worker_id = NULL, last_error = $1::jsonb,
             updated_at = now()
           FROM expired WHERE s.workflow_step_id = expired.workflow_step_id
           RETURNING s.workflow_step_id, s.task_id, s.state, s.attempts
         ), audit AS (
           INSERT INTO tasker_workflow_step_transitions (workflow_step_id, task_id, from_state, to_state, attempt, actor, error)
           SELECT workflow_step_id, task_id, 'in_progress', state, attempts, 'lease-recovery', $2 FROM back
         ), t AS (
           UPDATE tasker_tasks SET state = 'error', updated_at = now()
           WHERE task_id IN (SELECT task_id FROM back WHERE state = 'error') AND state = 'in_progress'
           RETURNING task_id
         ), t_audit AS (
           INSERT INTO tasker_task_transitions (task_id, from_state, to_state, actor)
           SELECT task_id, 'in_progress', 'error', 'lease-recovery' FROM t
         ), wake AS (
           SELECT pg_notify($3, '') FROM (SELECT 1 FROM back WHERE state = 'ready' LIMIT 1) r
         )
         SELECT (SELECT count(*) FROM back) + 0 * (SELECT count(*) FROM wake) AS count"
    )
}

pub(super) fn task_select(tail: &str) -> String {
    format!(
        "SELECT t.task_id, ns.name AS namespace, nt.name, nt.version, t.state,
                t.context::text AS context, t.identity_key, t.initiator, t.source_system, t.reason,
                t.tags::text AS tags, t.priority::int AS priority, {} AS deadline_ms,
                {} AS created_ms, {} AS updated_ms
         FROM tasker_tasks t
         JOIN tasker_named_tasks nt ON nt.named_task_id = t.named_task_id
         JOIN tasker_task_namespaces ns ON ns.task_namespace_id = nt.task_namespace_id
         {tail}",
        ms("t.deadline_at"),
        ms("t.created_at"),
        ms("t.updated_at")
    )
}
