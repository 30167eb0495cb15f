//! A task's audit trail ([`Store::transitions_window`](tasker::Store::transitions_window)),
//! written once for both backends: each supplies its
//! [`Dialect`](crate::dialect::Dialect) and binds one parameter, `$1` the
//! task id; the rows are [`TransitionRow`](crate::rows::TransitionRow)s.

use tasker::store::TransitionWindow;

use crate::dialect::Dialect;

/// The transitions of task `$1` in `window`, oldest first: by time (the
/// column itself, so PostgreSQL's microseconds order what one millisecond
/// holds), task before step transitions, then as written.
///
/// Without the items, a step's transitions are reached through the task's
/// steps that are not items (the per-step index), so the read does not
/// grow with the items' transitions. With `newest`, the newest rows are
/// taken in reverse order and put back in order.
pub(crate) fn transitions_sql(d: &Dialect, window: TransitionWindow) -> String {
    let ms = |column: &str| (d.ms)(column);
    let steps = if window.items {
        format!(
            "SELECT task_id, workflow_step_id, from_state, to_state, attempt, actor, error,
                    {at_ms} AS at_ms, created_at AS sort_at, 1 AS kind,
                    workflow_step_transition_id AS seq
             FROM tasker_workflow_step_transitions WHERE task_id = $1",
            at_ms = ms("created_at")
        )
    } else {
        format!(
            "SELECT t.task_id, t.workflow_step_id, t.from_state, t.to_state, t.attempt, t.actor,
                    t.error, {at_ms} AS at_ms, t.created_at AS sort_at, 1 AS kind,
                    t.workflow_step_transition_id AS seq
             FROM tasker_workflow_steps s
             JOIN tasker_workflow_step_transitions t ON t.workflow_step_id = s.workflow_step_id
             WHERE s.task_id = $1 AND s.item_index IS NULL",
            at_ms = ms("t.created_at")
        )
    };
    let trail = format!(
        "SELECT task_id, CAST(NULL AS BIGINT) AS workflow_step_id, from_state, to_state,
                CAST(NULL AS INTEGER) AS attempt, actor, CAST(NULL AS TEXT) AS error,
                {at_ms} AS at_ms, created_at AS sort_at, 0 AS kind, task_transition_id AS seq
         FROM tasker_task_transitions WHERE task_id = $1
         UNION ALL
         {steps}",
        at_ms = ms("created_at")
    );
    (d.params)(match window.newest {
        None => format!("SELECT * FROM ({trail}) trail ORDER BY sort_at, kind, seq"),
        Some(limit) => format!(
            "SELECT * FROM (
               SELECT * FROM ({trail}) trail ORDER BY sort_at DESC, kind DESC, seq DESC LIMIT {limit}
             ) newest ORDER BY sort_at, kind, seq"
        ),
    })
}
