//! RAW, RAW1 and RAW_BATCHED: the floors every other figure is compared
//! with.

use std::sync::Arc;
use std::time::Instant;

use crate::probe::{db_counters, peak_rss_mib, Stat};
use crate::Args;
use diesel::sql_types::{Array, BigInt};
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// The raw limit: a one-table queue, claim `batch` rows with SKIP LOCKED,
/// then mark them done in one statement; `concurrency` loops over a pool of
/// `pool` connections (or one loop, for RAW1). `batch = 1` is RAW (one row
/// per round trip), 50 is RAW_BATCHED, the baseline for engines that batch.
pub(crate) async fn raw(args: &Args, url: &str, scenario: &str, batch: i64) -> String {
    let concurrency = if scenario == "RAW1" {
        1
    } else {
        args.concurrency
    };
    let jobs = args.scale(10_000, 1_000) as i64;
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    conn.batch_execute(&format!(
        "CREATE TABLE raw_jobs (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL);
         CREATE INDEX raw_jobs_ready ON raw_jobs (id) WHERE state = 'ready';
         INSERT INTO raw_jobs (state) SELECT 'ready' FROM generate_series(1, {jobs});
         ANALYZE raw_jobs;"
    ))
    .await
    .expect("set up the raw queue");
    // No test query per checkout (tasker's pool does not make one either).
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    let pool = Pool::builder()
        .max_size(args.pool)
        .build(manager)
        .await
        .expect("pool");
    let pool = Arc::new(pool);
    let (statements_before, _) = db_counters(url).await;
    let started = Instant::now();
    let mut loops = Vec::new();
    for _ in 0..concurrency {
        let pool = Arc::clone(&pool);
        loops.push(tokio::spawn(async move {
            let mut done = 0u64;
            loop {
                let mut conn = pool.get().await.expect("connection");
                let claimed = diesel::sql_query(
                    "UPDATE raw_jobs SET state = 'running' WHERE id IN (
                       SELECT id FROM raw_jobs WHERE state = 'ready' ORDER BY id LIMIT $1
                       FOR UPDATE SKIP LOCKED) RETURNING id AS value",
                )
                .bind::<BigInt, _>(batch)
                .get_results::<Stat>(&mut *conn)
                .await
                .expect("claim");
                if claimed.is_empty() {
                    return done;
                }
                let ids: Vec<i64> = claimed.iter().map(|job| job.value).collect();
                diesel::sql_query("UPDATE raw_jobs SET state = 'done' WHERE id = ANY($1)")
                    .bind::<Array<BigInt>, _>(&ids)
                    .execute(&mut *conn)
                    .await
                    .expect("complete");
                done += ids.len() as u64;
            }
        }));
    }
    let mut done = 0;
    for l in loops {
        done += l.await.expect("loop");
    }
    let elapsed = started.elapsed();
    let (statements_after, _) = db_counters(url).await;
    let statements = match (statements_before, statements_after) {
        (Some(b), Some(a)) => format!("{:.2}", (a - b - 2) as f64 / done as f64),
        _ => "n/a".to_owned(),
    };
    format!(
        "scenario={scenario} jobs={done} batch={batch} concurrency={concurrency} pool={} steps_per_s={:.0} ms_per_step={:.3} round_trips_per_step={statements} peak_rss_mib={:.1}",
        args.pool,
        done as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / done as f64,
        peak_rss_mib()
    )
}
