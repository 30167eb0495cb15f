//! What the database and the process report about a run: statement and
//! transaction counts, latencies from the audit trail, peak memory.

use diesel::sql_types::{BigInt, Double, Nullable};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// Peak resident memory of this process, in MiB.
pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[derive(QueryableByName)]
pub(crate) struct Stat {
    #[diesel(sql_type = BigInt)]
    pub(crate) value: i64,
}

/// Statements (pg_stat_statements, if loaded) and transactions
/// (pg_stat_database) of the current database so far.
pub(crate) async fn db_counters(url: &str) -> (Option<i64>, i64) {
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    let _ = conn.batch_execute("SELECT pg_stat_clear_snapshot()").await;
    let statements = diesel::sql_query(
        "SELECT COALESCE(sum(calls), 0)::bigint AS value FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .get_result::<Stat>(&mut conn)
    .await
    .ok()
    .map(|s| s.value);
    let xacts = diesel::sql_query(
        "SELECT (xact_commit + xact_rollback)::bigint AS value FROM pg_stat_database
         WHERE datname = current_database()",
    )
    .get_result::<Stat>(&mut conn)
    .await
    .map(|s| s.value)
    .unwrap_or(0);
    (statements, xacts)
}

#[derive(QueryableByName)]
pub(crate) struct Latency {
    #[diesel(sql_type = Nullable<Double>)]
    pub(crate) p50: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub(crate) p99: Option<f64>,
}

/// Latency from the last parent's completion to the child's first start,
/// over children with at least `min_parents` parents, from the audit trail.
pub(crate) async fn latency(url: &str, min_parents: i64) -> Latency {
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    diesel::sql_query(
        "WITH done AS (
           SELECT workflow_step_id, min(created_at) AS at FROM tasker_workflow_step_transitions
           WHERE to_state = 'complete' GROUP BY 1
         ), started AS (
           SELECT workflow_step_id, min(created_at) AS at FROM tasker_workflow_step_transitions
           WHERE to_state = 'in_progress' GROUP BY 1
         ), lat AS (
           SELECT e.to_step_id, extract(epoch from (s.at - max(d.at))) * 1000 AS ms
           FROM tasker_workflow_step_edges e
           JOIN done d ON d.workflow_step_id = e.from_step_id
           JOIN started s ON s.workflow_step_id = e.to_step_id
           GROUP BY e.to_step_id, s.at
           HAVING count(*) >= $1
         )
         SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
         FROM lat",
    )
    .bind::<BigInt, _>(min_parents)
    .get_result::<Latency>(&mut conn)
    .await
    .expect("latency")
}

/// MAP's join latency by the audit trail: the last item's completion to
/// the join's start.
pub(crate) async fn map_join_audit_ms(url: &str) -> Option<f64> {
    #[derive(QueryableByName)]
    struct Ms {
        #[diesel(sql_type = Nullable<Double>)]
        ms: Option<f64>,
    }
    let mut conn = AsyncPgConnection::establish(url).await.ok()?;
    diesel::sql_query(
        "SELECT extract(epoch from (j.at - i.at))::float8 * 1000 AS ms FROM
           (SELECT max(t.created_at) AS at FROM tasker_workflow_step_transitions t
            JOIN tasker_workflow_steps s ON s.workflow_step_id = t.workflow_step_id
            WHERE s.item_index IS NOT NULL AND t.to_state = 'complete') i,
           (SELECT min(t.created_at) AS at FROM tasker_workflow_step_transitions t
            JOIN tasker_workflow_steps s ON s.workflow_step_id = t.workflow_step_id
            WHERE s.name = 'join' AND t.to_state = 'in_progress') j",
    )
    .get_result::<Ms>(&mut conn)
    .await
    .ok()?
    .ms
}
