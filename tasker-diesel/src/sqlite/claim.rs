//! Claiming on SQLite, with limits: the same rule as on PostgreSQL
//! ([`ClaimLimit::admit`] under the limit's row), in the one write
//! transaction SQLite allows at a time.

use diesel::sql_types::{BigInt, Double, Text};
use diesel::sqlite::Sqlite;
use diesel::{sql_query, RunQueryDsl, SqliteConnection};
use tasker::store::{ClaimRequest, ClaimedStep, StoreError};
use tasker::ClaimLimit;

use super::writes::{claim_audit, claim_rows, set_task_state};
use super::{now_ms, SqliteStore, StepStateRow};
use crate::operator::Tx;
use crate::rows::{BucketRow, ClaimRow, CountRow};

/// Which ready steps a claim takes, as to limits.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// Every step of the handlers.
    All,
    /// Only these (handler, step) pairs (JSON `[[id, "name"], ...]`).
    Inside(&'a str),
    /// All but these pairs.
    Outside(&'a str),
}

/// Owned copy of what a claim needs, for the blocking thread.
struct Claim {
    ids: String,
    limit: u32,
    lease_ms: i64,
    worker: String,
    limits: Vec<(ClaimLimit, String)>,
    unlimited: Option<String>,
}

impl SqliteStore {
    pub(super) async fn claim(
        &self,
        request: ClaimRequest<'_>,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        if request.handler_ids.is_empty() || request.limit == 0 {
            return Ok(Vec::new());
        }
        let claim = Claim {
            ids: request
                .handler_ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(","),
            limit: request.limit,
            lease_ms: request.lease.as_millis() as i64,
            worker: request.worker.to_owned(),
            limits: request
                .limits
                .iter()
                .map(|l| (l.clone(), pairs_json(l.steps.iter())))
                .collect(),
            unlimited: (!request.limits.is_empty())
                .then(|| pairs_json(request.limits.iter().flat_map(|l| &l.steps))),
        };
        let rows = self
            .tx("claiming steps", move |conn| {
                let mut claimed = Vec::new();
                let mut room = claim.limit;
                for (limit, pairs) in &claim.limits {
                    if room == 0 {
                        break;
                    }
                    let got = claim_limited(conn, &claim, limit, pairs, room)?;
                    room -= got.len() as u32;
                    claimed.extend(got);
                }
                if room > 0 {
                    let scope = claim
                        .unlimited
                        .as_deref()
                        .map_or(Scope::All, Scope::Outside);
                    claimed.extend(claim_ready(conn, &claim, scope, room)?);
                }
                Ok(claimed)
            })
            .await?;
        Ok(rows.into_iter().map(ClaimRow::into_claimed).collect())
    }
}

fn pairs_json<'a>(pairs: impl Iterator<Item = &'a (i64, String)>) -> String {
    serde_json::Value::from(
        pairs
            .map(|(id, name)| serde_json::json!([id, name]))
            .collect::<Vec<_>>(),
    )
    .to_string()
}

/// One limit's share of a claim. The write transaction already excludes
/// every other writer, so the row needs no lock of its own here.
fn claim_limited(
    conn: &mut SqliteConnection,
    claim: &Claim,
    limit: &ClaimLimit,
    pairs: &str,
    room: u32,
) -> Tx<Vec<ClaimRow>> {
    let now = now_ms();
    let bucket = sql_query(
        "SELECT tokens, (? - refilled_at) / 1000.0 AS elapsed FROM tasker_limits WHERE name = ?",
    )
    .bind::<BigInt, _>(now)
    .bind::<Text, _>(&limit.name)
    .load::<BucketRow>(conn)?
    .into_iter()
    .next()
    .map(|row| row.bucket());
    let running = sql_query(format!(
        "SELECT count(*) AS count FROM tasker_workflow_steps
         WHERE state = 'in_progress' AND lease_expires_at IS NOT NULL AND {}",
        pairs_filter("IN")
    ))
    .bind::<Text, _>(pairs)
    .get_result::<CountRow>(conn)?
    .count;
    let admitted = limit.admit(running.max(0) as u64, bucket, room);
    if admitted.steps == 0 {
        return Ok(Vec::new());
    }
    let rows = claim_ready(conn, claim, Scope::Inside(pairs), admitted.steps)?;
    if limit.limit.per_second.is_some() && !rows.is_empty() {
        sql_query(
            "INSERT INTO tasker_limits (name, tokens, refilled_at) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens,
               refilled_at = excluded.refilled_at",
        )
        .bind::<Text, _>(&limit.name)
        .bind::<Double, _>(admitted.tokens_after(rows.len() as u32))
        .bind::<BigInt, _>(now)
        .execute(conn)?;
    }
    Ok(rows)
}

/// `(named_task_id, name) IN/NOT IN` the pairs of one bound JSON array.
fn pairs_filter(op: &str) -> String {
    format!(
        "(named_task_id, name) {op} (SELECT json_extract(value, '$[0]'), json_extract(value, \
         '$[1]') FROM json_each(?))"
    )
}

/// Claims up to `limit` ready steps in `scope`, with their audit rows and
/// their tasks started.
fn claim_ready(
    conn: &mut SqliteConnection,
    claim: &Claim,
    scope: Scope<'_>,
    limit: u32,
) -> Tx<Vec<ClaimRow>> {
    let now = now_ms();
    let (filter, pairs) = match scope {
        Scope::All => (String::new(), None),
        Scope::Inside(pairs) => (format!("AND {}", pairs_filter("IN")), Some(pairs)),
        Scope::Outside(pairs) => (format!("AND {}", pairs_filter("NOT IN")), Some(pairs)),
    };
    let mut query = sql_query(format!(
        "UPDATE tasker_workflow_steps SET state = 'in_progress', attempts = attempts + 1,
           lease_expires_at = ?, worker_id = ?, updated_at = ?
         WHERE workflow_step_id IN (
           SELECT workflow_step_id FROM tasker_workflow_steps
           WHERE state = 'ready' AND run_at <= ? AND named_task_id IN ({ids})
             AND (deadline_at IS NULL OR deadline_at > ?) {filter}
           ORDER BY claim_at, workflow_step_id LIMIT ?)
         RETURNING workflow_step_id, task_id, state, attempts",
        ids = claim.ids
    ))
    .into_boxed::<Sqlite>()
    .bind::<BigInt, _>(now + claim.lease_ms)
    .bind::<Text, _>(claim.worker.clone())
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(now);
    if let Some(pairs) = pairs {
        query = query.bind::<Text, _>(pairs.to_owned());
    }
    let claimed = query
        .bind::<BigInt, _>(i64::from(limit))
        .load::<StepStateRow>(conn)?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let worker = &claim.worker;
    let mut started = Vec::new();
    for step in &claimed {
        claim_audit(conn, step, worker)?;
        if set_task_state(conn, step.task_id, "pending", "in_progress", worker)? {
            started.push(step.task_id);
        }
    }
    let started = started
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let step_ids = claimed
        .iter()
        .map(|s| s.workflow_step_id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    claim_rows(conn, &step_ids, &started)
}
