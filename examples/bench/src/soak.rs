//! SOAK: sustained load at a fraction of measured capacity.

use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Double, Nullable};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tasker::prelude::*;
use tasker::{TaskRequest, Tasker};

use crate::handlers::{Chain10, Diamond, Doomed, RetryOnce, TimesOut};
use crate::probe::{peak_rss_mib, Stat};
use crate::{engine, Args};

/// One round of the soak's mix: 9 tasks, 39 step completions, 3 failed
/// attempts (a retry, a permanent failure, a timeout).
fn soak_round() -> Vec<TaskRequest> {
    let null = || serde_json::Value::Null;
    let mut round: Vec<TaskRequest> = (0..4).map(|_| Diamond::request(null())).collect();
    round.extend((0..2).map(|_| Chain10::request(null())));
    round.push(RetryOnce::request(null()));
    round.push(Doomed::request(null()));
    round.push(TimesOut::request(null()));
    round
}

const SOAK_COMPLETIONS_PER_ROUND: f64 = 39.0;

#[derive(QueryableByName)]
struct SoakStats {
    #[diesel(sql_type = BigInt)]
    ready: i64,
    #[diesel(sql_type = BigInt)]
    open_tasks: i64,
    #[diesel(sql_type = Nullable<Double>)]
    p50: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    p99: Option<f64>,
    #[diesel(sql_type = BigInt)]
    live: i64,
    #[diesel(sql_type = BigInt)]
    dead: i64,
    #[diesel(sql_type = BigInt)]
    updates: i64,
    #[diesel(sql_type = BigInt)]
    hot: i64,
    #[diesel(sql_type = BigInt)]
    vacuums: i64,
}

/// The queue and the tables, as an operator would look at them; latency of
/// the tasks that finished in the last `window_s` seconds.
async fn soak_stats(conn: &mut AsyncPgConnection, window_s: f64) -> SoakStats {
    let _ = conn.batch_execute("SELECT pg_stat_clear_snapshot()").await;
    diesel::sql_query(
        "SELECT (SELECT count(*) FROM tasker_workflow_steps WHERE state = 'ready' AND run_at <= now()) AS ready,
                (SELECT count(*) FROM tasker_tasks WHERE state IN ('pending', 'in_progress')) AS open_tasks,
                l.p50, l.p99,
                s.n_live_tup AS live, s.n_dead_tup AS dead, s.n_tup_upd AS updates,
                s.n_tup_hot_upd AS hot, (s.vacuum_count + s.autovacuum_count) AS vacuums
         FROM pg_stat_user_tables s,
              (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
               FROM (SELECT extract(epoch from (updated_at - created_at)) * 1000 AS ms
                     FROM tasker_tasks
                     WHERE state IN ('complete', 'error')
                       AND updated_at > now() - make_interval(secs => $1)) w) l
         WHERE s.relname = 'tasker_workflow_steps'",
    )
    .bind::<Double, _>(window_s)
    .get_result::<SoakStats>(conn)
    .await
    .expect("soak statistics")
}

/// SOAK: see the module docs.
pub(crate) async fn soak(args: &Args, url: &str) -> String {
    let creator = engine(args, url, true, "SOAK").await;
    let mut probe = AsyncPgConnection::establish(url).await.expect("connect");
    let autovacuum =
        diesel::sql_query("SELECT (current_setting('autovacuum') = 'on')::int::bigint AS value")
            .get_result::<Stat>(&mut probe)
            .await
            .map(|s| s.value == 1)
            .unwrap_or(false);
    let workers_n = args.workers.max(2);
    let mut engines = Vec::new();
    for _ in 0..workers_n {
        engines.push(engine(args, url, false, "SOAK").await);
    }

    // Capacity: drain a backlog of the same mix.
    let rounds = args.scale(300, 40);
    for _ in 0..rounds / 20 {
        let batch: Vec<TaskRequest> = (0..20).flat_map(|_| soak_round()).collect();
        creator.create_tasks(batch).await.expect("create");
    }
    let expected = ((rounds / 20 * 20) as f64 * SOAK_COMPLETIONS_PER_ROUND) as u64;
    let started = Instant::now();
    let workers: Vec<_> = engines.iter().map(Tasker::start_worker).collect();
    while workers.iter().map(|w| w.counts().completed).sum::<u64>() < expected {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let capacity = expected as f64 / started.elapsed().as_secs_f64();
    let rate = capacity * args.soak_load;
    let mut out = format!(
        "scenario=SOAK workers={workers_n} autovacuum={autovacuum} capacity_steps_per_s={capacity:.0} \
         load={:.2} target_steps_per_s={rate:.0} soak_s={}",
        args.soak_load, args.soak_secs
    );

    // The steady producer.
    let rounds_per_s = rate / SOAK_COMPLETIONS_PER_ROUND;
    let soak_for = Duration::from_secs(args.soak_secs);
    let producer = {
        let creator = creator.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut made = 0.0f64;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while started.elapsed() < soak_for {
                tick.tick().await;
                let due = (started.elapsed().as_secs_f64() * rounds_per_s - made).floor();
                if due >= 1.0 {
                    let batch: Vec<TaskRequest> =
                        (0..due as usize).flat_map(|_| soak_round()).collect();
                    creator.create_tasks(batch).await.expect("create");
                    made += due;
                }
            }
            made
        })
    };
    let completed =
        |workers: &[tasker::Worker]| -> u64 { workers.iter().map(|w| w.counts().completed).sum() };
    let started = Instant::now();
    let mut last = completed(&workers);
    let minute = if args.quick {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(60)
    };
    let mut n = 0;
    while started.elapsed() < soak_for {
        tokio::time::sleep(minute.min(soak_for.saturating_sub(started.elapsed()))).await;
        n += 1;
        let now = completed(&workers);
        let stats = soak_stats(&mut probe, minute.as_secs_f64()).await;
        let fmt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0}"));
        out.push_str(&format!(
            "\nsoak_window={n} at_s={:.0} steps_per_s={:.0} ready={} open_tasks={} task_p50_ms={} \
             task_p99_ms={} steps_live={} steps_dead={} hot_pct={:.1} vacuums={}",
            started.elapsed().as_secs_f64(),
            (now - last) as f64 / minute.as_secs_f64(),
            stats.ready,
            stats.open_tasks,
            fmt(stats.p50),
            fmt(stats.p99),
            stats.live,
            stats.dead,
            100.0 * stats.hot as f64 / stats.updates.max(1) as f64,
            stats.vacuums,
        ));
        last = now;
    }
    let made = producer.await.expect("the producer");
    // Drain what is left.
    let drain_started = Instant::now();
    let mut open = i64::MAX;
    while drain_started.elapsed() < Duration::from_secs(120) {
        open = soak_stats(&mut probe, 1.0).await.open_tasks;
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out.push_str(&format!(
        "\nsoak_end rounds_produced={made:.0} drained_s={:.1} open_after={open} peak_rss_mib={:.1}",
        drain_started.elapsed().as_secs_f64(),
        peak_rss_mib()
    ));
    for worker in workers {
        worker.shutdown().await;
    }
    out
}
