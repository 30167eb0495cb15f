//! Self-vacuum when autovacuum is off: see `Store::housekeeping`.

use diesel::{sql_query, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tasker::store::StoreError;

use super::db;

/// Dead rows in a queue table above which workers vacuum it themselves
/// when autovacuum is off (or 2% of its live rows, if more, as the
/// tables' autovacuum settings).
pub(super) const VACUUM_DEAD_ROWS: i64 = 5_000;

/// At most one such vacuum of a table per this many seconds, across every
/// process (read from the table's statistics): autovacuum's own pace
/// (`autovacuum_naptime`). Vacuuming every few seconds cost more than the
/// dead rows it removed.
pub(super) const VACUUM_INTERVAL_S: i64 = 60;

pub(super) struct VacuumState {
    /// The server runs autovacuum (and it is not disabled on the tables).
    pub(super) autovacuum: bool,
    /// A queue table has more dead rows than the threshold.
    pub(super) needed: bool,
}

#[derive(QueryableByName)]
pub(super) struct VacuumRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub(super) autovacuum: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub(super) needed: bool,
}

/// Whether autovacuum looks after the queue tables, and whether they need
/// a vacuum now. One cheap query on the statistics views.
pub(super) async fn vacuum_state(conn: &mut AsyncPgConnection) -> Result<VacuumState, StoreError> {
    let row = sql_query(format!(
        "SELECT current_setting('autovacuum') = 'on'
                AND NOT EXISTS (SELECT 1 FROM pg_class c
                                WHERE c.oid IN (to_regclass('tasker_workflow_steps'), to_regclass('tasker_tasks'))
                                  AND c.reloptions @> ARRAY['autovacuum_enabled=false']) AS autovacuum,
                EXISTS (SELECT 1 FROM pg_stat_user_tables s
                        WHERE s.relid IN (to_regclass('tasker_workflow_steps'), to_regclass('tasker_tasks'))
                          AND s.n_dead_tup > GREATEST({VACUUM_DEAD_ROWS}, s.n_live_tup / 50)
                          AND COALESCE(GREATEST(s.last_vacuum, s.last_autovacuum), '-infinity')
                              < now() - make_interval(secs => {VACUUM_INTERVAL_S})) AS needed"
    ))
    .get_result::<VacuumRow>(conn)
    .await
    .map_err(db("reading the vacuum state"))?;
    Ok(VacuumState {
        autovacuum: row.autovacuum,
        needed: row.needed,
    })
}
