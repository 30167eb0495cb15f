//! The dashboard's activity read ([`Store::activity`](tasker::Store::activity)),
//! written once for both backends: each supplies its
//! [`Dialect`](crate::dialect::Dialect) and runs the two statements with one
//! bound parameter, the start of the period in epoch milliseconds.

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use tasker::store::{Activity, ActivityMinute, WorkerSeen, MAX_WORKERS_SEEN};

use crate::dialect::Dialect;
use crate::rows::time;

/// Attempts completed and failed per minute since `$1`: a completion is a
/// step's move to `complete`, a failure any move out of `in_progress` that
/// carries an error. Both read the transitions' time index.
pub(crate) fn minutes_sql(d: &Dialect) -> String {
    let ms = (d.ms)("created_at");
    (d.params)(format!(
        "SELECT ({ms} / 60000) * 60000 AS minute_ms,
                SUM(CASE WHEN to_state = 'complete' THEN 1 ELSE 0 END) AS completed,
                SUM(CASE WHEN to_state <> 'complete' THEN 1 ELSE 0 END) AS failed
         FROM tasker_workflow_step_transitions
         WHERE created_at >= {since}
           AND (to_state = 'complete' OR (from_state = 'in_progress' AND error IS NOT NULL))
         GROUP BY 1 ORDER BY 1",
        since = (d.time_param)(1)
    ))
}

/// The workers that claimed steps since `$1`, most recent first.
pub(crate) fn workers_sql(d: &Dialect) -> String {
    let ms = (d.ms)("created_at");
    (d.params)(format!(
        "SELECT actor AS worker_id, MAX({ms}) AS last_ms, COUNT(*) AS claims
         FROM tasker_workflow_step_transitions
         WHERE created_at >= {since} AND to_state = 'in_progress' AND actor IS NOT NULL
         GROUP BY actor ORDER BY 2 DESC LIMIT {MAX_WORKERS_SEEN}",
        since = (d.time_param)(1)
    ))
}

#[derive(QueryableByName)]
pub(crate) struct MinuteRow {
    #[diesel(sql_type = BigInt)]
    minute_ms: i64,
    #[diesel(sql_type = BigInt)]
    completed: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

#[derive(QueryableByName)]
pub(crate) struct WorkerRow {
    #[diesel(sql_type = Text)]
    worker_id: String,
    #[diesel(sql_type = BigInt)]
    last_ms: i64,
    #[diesel(sql_type = BigInt)]
    claims: i64,
}

/// The rows of the two statements as an [`Activity`].
pub(crate) fn activity(minutes: Vec<MinuteRow>, workers: Vec<WorkerRow>) -> Activity {
    Activity {
        minutes: minutes
            .into_iter()
            .map(|r| ActivityMinute {
                minute: time(r.minute_ms),
                completed: r.completed,
                failed: r.failed,
            })
            .collect(),
        workers: workers
            .into_iter()
            .map(|r| WorkerSeen {
                worker_id: r.worker_id,
                last_claim: time(r.last_ms),
                claims: r.claims,
            })
            .collect(),
    }
}
