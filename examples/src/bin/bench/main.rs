//! The benchmark: tasker against PostgreSQL, with no-op steps, next to the
//! raw limit of a minimal SQL-only queue on the same server.
//!
//! ```sh
//! cargo run --release -p tasker-examples --bin bench             # full run
//! cargo run --release -p tasker-examples --bin bench -- --quick  # under a minute
//! ```
//!
//! Each scenario runs in a fresh child process (so its peak memory is its
//! own) on a fresh database, and prints one line of `key=value` figures:
//!
//! * RAW: `FOR UPDATE SKIP LOCKED` claim of one row, then mark it done, by
//!   `--concurrency` loops: the floor every other figure is compared with.
//! * S1: single-step tasks created up front, then drained.
//! * S2: 10-step chains: steps/s and hand-off latency (parent complete ->
//!   child start) p50/p99.
//! * S3: diamonds `a -> {b, c} -> d`: steps/s and join latency p50/p99.
//! * S4: fan-outs 1 -> 100 -> 1: steps/s and the time from the last of the
//!   100 finishing to the join starting.
//! * S5: one 40-step chain alone: total time and time per step.
//! * SOAK (not in the default list): two engines drain a mix (diamonds,
//!   ten-step chains, retry-once, permanent failures, timeouts) to measure
//!   capacity, then a producer creates that mix at `--soak-load` of it for
//!   `--soak-secs`; one line per minute with steps/s, ready-queue depth,
//!   task latency p50/p99, dead and HOT-updated step rows, vacuums; then
//!   how long the backlog takes to drain.
//!
//! Round trips and transactions per step come from PostgreSQL's own
//! statistics (`pg_stat_statements` when the server loads it, and
//! `pg_stat_database`).

#[allow(unreachable_pub)]
mod handlers;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use diesel::sql_types::{BigInt, Double, Nullable};
use diesel::QueryableByName;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tasker::prelude::*;
use tasker::{Registry, Store, TaskRequest, Tasker};
use tasker_diesel::testing::TestDatabase;
use tasker_diesel::{PgOptions, PgStore};

use handlers::{Chain10, Chain40, Diamond, Doomed, FanOut, RetryOnce, Single, TimesOut};

/// Options.
#[derive(Parser, Clone)]
struct Args {
    /// Small counts, for CI smoke runs (under a minute).
    #[arg(long)]
    quick: bool,
    /// Worker engines (each with its own connection pool).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Steps each worker runs at once (and RAW's loops).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Steps claimed per round trip.
    #[arg(long, default_value_t = 32)]
    batch: u32,
    /// Connections per worker pool.
    #[arg(long, default_value_t = 10)]
    pool: u32,
    /// Scenarios to run, comma separated.
    #[arg(long, default_value = "RAW,S1,S2,S3,S4,S5")]
    scenarios: String,
    /// Step results commit without waiting for the WAL flush
    /// (`PgOptions::synchronous_commit = false`).
    #[arg(long)]
    relaxed_commits: bool,
    /// SOAK: how long the steady producer runs, in seconds.
    #[arg(long, default_value_t = 600)]
    soak_secs: u64,
    /// SOAK: the producer's rate as a share of the measured capacity.
    #[arg(long, default_value_t = 0.5)]
    soak_load: f64,
    /// Run one scenario in this process (used by the parent).
    #[arg(long, hide = true)]
    child: Option<String>,
}

impl Args {
    fn scale(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(scenario) = args.child.clone() {
        let line = run_scenario(&args, &scenario).await;
        println!("{line}");
        return;
    }
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut raw_steps_per_s = None;
    for scenario in args
        .scenarios
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let mut command = std::process::Command::new(&exe);
        command
            .arg("--child")
            .arg(scenario)
            .arg("--workers")
            .arg(args.workers.to_string())
            .arg("--concurrency")
            .arg(args.concurrency.to_string())
            .arg("--batch")
            .arg(args.batch.to_string())
            .arg("--pool")
            .arg(args.pool.to_string())
            .stderr(Stdio::inherit());
        if args.quick {
            command.arg("--quick");
        }
        if args.relaxed_commits {
            command.arg("--relaxed-commits");
        }
        command
            .arg("--soak-secs")
            .arg(args.soak_secs.to_string())
            .arg("--soak-load")
            .arg(args.soak_load.to_string());
        let output = command.output().expect("the scenario process runs");
        let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !output.status.success() || line.is_empty() {
            println!(
                "scenario={scenario} error=\"the scenario process failed ({})\"",
                output.status
            );
            std::process::exit(1);
        }
        let steps_per_s = field(&line, "steps_per_s");
        if scenario == "RAW" {
            raw_steps_per_s = steps_per_s;
            println!("{line}");
        } else {
            match (steps_per_s, raw_steps_per_s) {
                (Some(ours), Some(raw)) if raw > 0.0 => println!("{line} vs_raw={:.2}", ours / raw),
                _ => println!("{line}"),
            }
        }
    }
}

fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// Peak resident memory of this process, in MiB.
fn peak_rss_mib() -> f64 {
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
struct Stat {
    #[diesel(sql_type = BigInt)]
    value: i64,
}

/// Statements (pg_stat_statements, if loaded) and transactions
/// (pg_stat_database) of the current database so far.
async fn db_counters(url: &str) -> (Option<i64>, i64) {
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
struct Latency {
    #[diesel(sql_type = Nullable<Double>)]
    p50: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    p99: Option<f64>,
}

/// Latency from the last parent's completion to the child's first start,
/// over children with at least `min_parents` parents, from the audit trail.
async fn latency(url: &str, min_parents: i64) -> Latency {
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

fn registry() -> Registry {
    Registry::new()
        .with::<Single>()
        .and_then(|r| r.with::<Chain10>())
        .and_then(|r| r.with::<Chain40>())
        .and_then(|r| r.with::<Diamond>())
        .and_then(|r| r.with::<FanOut>())
        .and_then(|r| r.with::<RetryOnce>())
        .and_then(|r| r.with::<Doomed>())
        .and_then(|r| r.with::<TimesOut>())
        .expect("the bench registry")
}

/// An engine on its own pool, serving the bench handlers.
async fn engine(args: &Args, url: &str, migrate: bool) -> Tasker<PgStore> {
    let store = PgStore::connect_with(
        url,
        PgOptions {
            pool_size: args.pool,
            synchronous_commit: !args.relaxed_commits,
            ..PgOptions::default()
        },
    )
    .await
    .expect("connect");
    if migrate {
        store.migrate().await.expect("migrate");
    }
    Tasker::builder(store)
        .registry(registry())
        .without_registered_subscribers()
        .configure(|c| {
            c.concurrency = args.concurrency;
            c.claim_batch = args.batch;
            c.poll_interval = Duration::from_millis(200);
        })
        .build()
        .await
        .expect("engine")
}

async fn run_scenario(args: &Args, scenario: &str) -> String {
    let db = TestDatabase::create()
        .await
        .expect("a scratch database (is PostgreSQL up?)");
    if let Ok(mut conn) = AsyncPgConnection::establish(db.url()).await {
        let _ = conn
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await;
    }
    if scenario == "RAW" {
        return raw(args, db.url()).await;
    }
    if scenario == "SOAK" {
        return soak(args, db.url()).await;
    }
    let (make, tasks, steps_per_task): (fn() -> TaskRequest, usize, usize) = match scenario {
        "S1" => (
            || Single::request(serde_json::Value::Null),
            args.scale(10_000, 1_000),
            1,
        ),
        "S2" => (
            || Chain10::request(serde_json::Value::Null),
            args.scale(1_000, 100),
            10,
        ),
        "S3" => (
            || Diamond::request(serde_json::Value::Null),
            args.scale(1_000, 200),
            4,
        ),
        "S4" => (
            || FanOut::request(serde_json::Value::Null),
            args.scale(100, 10),
            102,
        ),
        "S5" => (|| Chain40::request(serde_json::Value::Null), 1, 40),
        other => panic!("unknown scenario {other}; use RAW, S1, S2, S3, S4, S5"),
    };
    // Tasks are created through an engine of their own, closed before the
    // drain: PostgreSQL flushes a backend's transaction counts when it
    // exits, so the drain's counts are the workers' alone.
    let creator = engine(args, db.url(), true).await;
    let started = Instant::now();
    let requests: Vec<TaskRequest> = (0..tasks).map(|_| make()).collect();
    for chunk in requests.chunks(500) {
        creator.create_tasks(chunk.to_vec()).await.expect("create");
    }
    let created_in = started.elapsed();
    drop(creator);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut engines = Vec::new();
    for _ in 0..args.workers {
        engines.push(engine(args, db.url(), false).await);
    }
    let (statements_before, xacts_before) = db_counters(db.url()).await;
    let started = Instant::now();
    let workers: Vec<_> = engines.iter().map(Tasker::start_worker).collect();
    let expected = (tasks * steps_per_task) as u64;
    loop {
        let done: u64 = workers.iter().map(|w| w.counts().completed).sum();
        if done >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drained_in = started.elapsed();
    let mut claims = 0;
    for worker in workers {
        claims += worker.shutdown().await.claim_queries;
    }
    // Close the workers' connections so their statistics are flushed.
    drop(engines);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (statements_after, xacts_after) = db_counters(db.url()).await;
    let steps = expected as f64;
    // The probe's own statements (3) and transactions (2) are not the engine's.
    let statements = match (statements_before, statements_after) {
        (Some(b), Some(a)) => format!("{:.2}", (a - b - 3) as f64 / steps),
        _ => "n/a".to_owned(),
    };
    let xacts = (xacts_after - xacts_before - 2) as f64 / steps;
    let mut line = format!(
        "scenario={scenario} tasks={tasks} steps={expected} workers={} concurrency={} batch={} relaxed_commits={} \
         created_tasks_per_s={:.0} steps_per_s={:.0} drain_s={:.3} round_trips_per_step={statements} \
         transactions_per_step={xacts:.2} claims={claims} peak_rss_mib={:.1}",
        args.workers,
        args.concurrency,
        args.batch,
        args.relaxed_commits,
        tasks as f64 / created_in.as_secs_f64(),
        steps / drained_in.as_secs_f64(),
        drained_in.as_secs_f64(),
        peak_rss_mib(),
    );
    let fmt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
    match scenario {
        "S2" => {
            let l = latency(db.url(), 1).await;
            line.push_str(&format!(
                " handoff_p50_ms={} handoff_p99_ms={}",
                fmt(l.p50),
                fmt(l.p99)
            ));
        }
        "S3" | "S4" => {
            let l = latency(db.url(), 2).await;
            line.push_str(&format!(
                " join_p50_ms={} join_p99_ms={}",
                fmt(l.p50),
                fmt(l.p99)
            ));
        }
        "S5" => {
            line.push_str(&format!(
                " total_ms={:.1} ms_per_step={:.3}",
                drained_in.as_secs_f64() * 1000.0,
                drained_in.as_secs_f64() * 1000.0 / steps
            ));
        }
        _ => {}
    }
    line
}

/// The raw limit: a one-table queue, claim one row with SKIP LOCKED, then
/// mark it done; `concurrency` loops over a pool of `pool` connections.
async fn raw(args: &Args, url: &str) -> String {
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
    for _ in 0..args.concurrency {
        let pool = Arc::clone(&pool);
        loops.push(tokio::spawn(async move {
            let mut done = 0u64;
            loop {
                let mut conn = pool.get().await.expect("connection");
                let claimed = diesel::sql_query(
                    "UPDATE raw_jobs SET state = 'running' WHERE id = (
                       SELECT id FROM raw_jobs WHERE state = 'ready' ORDER BY id LIMIT 1
                       FOR UPDATE SKIP LOCKED) RETURNING id AS value",
                )
                .get_results::<Stat>(&mut *conn)
                .await
                .expect("claim");
                let Some(job) = claimed.into_iter().next() else {
                    return done;
                };
                diesel::sql_query("UPDATE raw_jobs SET state = 'done' WHERE id = $1")
                    .bind::<BigInt, _>(job.value)
                    .execute(&mut *conn)
                    .await
                    .expect("complete");
                done += 1;
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
        "scenario=RAW jobs={done} concurrency={} pool={} steps_per_s={:.0} round_trips_per_step={statements} peak_rss_mib={:.1}",
        args.concurrency,
        args.pool,
        done as f64 / elapsed.as_secs_f64(),
        peak_rss_mib()
    )
}

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
async fn soak(args: &Args, url: &str) -> String {
    let creator = engine(args, url, true).await;
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
        engines.push(engine(args, url, false).await);
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
