//! Claiming on PostgreSQL, with limits held across workers.
//!
//! A worker without limits claims in one statement. With limits, each
//! limit's steps are claimed in a transaction of their own that first
//! locks the limit's row (`FOR UPDATE SKIP LOCKED`: a worker that finds it
//! locked leaves that limit to the holder this round), then counts the
//! limit's running steps in a statement of its own, so under READ
//! COMMITTED it sees every claim committed by earlier holders, asks
//! [`ClaimLimit::admit`] how many may start and claims at most that many.
//! The rest of the batch comes from the steps no limit covers.

use diesel::sql_query;
use diesel::sql_types::{Array, BigInt, Double, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tasker::store::{ClaimRequest, ClaimedStep, StoreError};
use tasker::ClaimLimit;

use super::sql::{claim_sql, limit_running_sql, ClaimScope};
use super::{db, PgStore, Prepared};
use crate::rows::{BucketRow, ClaimRow, CountRow};

impl PgStore {
    pub(super) async fn claim(
        &self,
        request: ClaimRequest<'_>,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        if request.handler_ids.is_empty() || request.limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        if request.limits.is_empty() {
            let rows = claim_rows(&mut conn, &request, ClaimScope::All, request.limit, &[])
                .await
                .map_err(db("claiming steps"))?;
            return Ok(rows.into_iter().map(ClaimRow::into_claimed).collect());
        }
        let mut claimed = Vec::new();
        let mut room = request.limit;
        for limit in request.limits {
            if room == 0 {
                break;
            }
            let rows = conn
                .transaction(async |conn| claim_limited(conn, &request, limit, room).await)
                .await
                .map_err(db("claiming steps under a limit"))?;
            room -= rows.len() as u32;
            claimed.extend(rows);
        }
        if room > 0 {
            let keys = step_keys(request.limits.iter().flat_map(|l| &l.steps));
            let rows = claim_rows(&mut conn, &request, ClaimScope::Outside, room, &keys)
                .await
                .map_err(db("claiming steps"))?;
            claimed.extend(rows);
        }
        Ok(claimed.into_iter().map(ClaimRow::into_claimed).collect())
    }
}

/// One limit's share of a claim, inside the transaction that holds its row.
async fn claim_limited(
    conn: &mut AsyncPgConnection,
    request: &ClaimRequest<'_>,
    limit: &ClaimLimit,
    room: u32,
) -> diesel::QueryResult<Vec<ClaimRow>> {
    let locked = sql_query(
        "SELECT tokens, extract(epoch from now() - refilled_at)::float8 AS elapsed
         FROM tasker_limits WHERE name = $1 FOR UPDATE SKIP LOCKED",
    )
    .bind::<Text, _>(&limit.name)
    .load::<BucketRow>(conn)
    .await?;
    let bucket = match locked.into_iter().next() {
        Some(row) => Some(row.bucket()),
        None => {
            // No row yet, or another worker holds it. A row this insert
            // creates stays locked by this transaction.
            let created = sql_query(
                "INSERT INTO tasker_limits (name, tokens) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING RETURNING tokens, 0::float8 AS elapsed",
            )
            .bind::<Text, _>(&limit.name)
            .bind::<Double, _>(limit.full_bucket())
            .load::<BucketRow>(conn)
            .await?;
            if created.is_empty() {
                return Ok(Vec::new());
            }
            None
        }
    };
    let keys = step_keys(limit.steps.iter());
    let running = Prepared(sql_query(limit_running_sql()).bind::<Array<Text>, _>(&keys))
        .get_result::<CountRow>(conn)
        .await?
        .count;
    let admitted = limit.admit(running.max(0) as u64, bucket, room);
    if admitted.steps == 0 {
        return Ok(Vec::new());
    }
    let rows = claim_rows(conn, request, ClaimScope::Inside, admitted.steps, &keys).await?;
    if limit.limit.per_second.is_some() && !rows.is_empty() {
        sql_query("UPDATE tasker_limits SET tokens = $2, refilled_at = now() WHERE name = $1")
            .bind::<Text, _>(&limit.name)
            .bind::<Double, _>(admitted.tokens_after(rows.len() as u32))
            .execute(conn)
            .await?;
    }
    Ok(rows)
}

async fn claim_rows(
    conn: &mut AsyncPgConnection,
    request: &ClaimRequest<'_>,
    scope: ClaimScope,
    limit: u32,
    keys: &[String],
) -> diesel::QueryResult<Vec<ClaimRow>> {
    let query = sql_query(claim_sql(scope))
        .bind::<Array<BigInt>, _>(request.handler_ids)
        .bind::<Integer, _>(limit as i32)
        .bind::<Double, _>(request.lease.as_secs_f64())
        .bind::<Text, _>(request.worker);
    match scope {
        ClaimScope::All => Prepared(query).load::<ClaimRow>(conn).await,
        ClaimScope::Inside | ClaimScope::Outside => {
            Prepared(query.bind::<Array<Text>, _>(keys))
                .load::<ClaimRow>(conn)
                .await
        }
    }
}

/// `handler id:step name` of each step, as the statements compare them.
fn step_keys<'a>(steps: impl Iterator<Item = &'a (i64, String)>) -> Vec<String> {
    steps.map(|(id, name)| format!("{id}:{name}")).collect()
}
