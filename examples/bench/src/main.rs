//! The benchmark: tasker against PostgreSQL, with no-op steps, next to the
//! raw limit of a minimal SQL-only queue on the same server.
//!
//! ```sh
//! cargo run --release -p tasker-bench --bin bench             # full run
//! cargo run --release -p tasker-bench --bin bench -- --quick  # under a minute
//! ```
//!
//! Each scenario runs in a fresh child process (so its peak memory is its
//! own) on a fresh database, and prints one line of `key=value` figures:
//!
//! * RAW: `FOR UPDATE SKIP LOCKED` claim of one row, then mark it done, by
//!   `--concurrency` loops: the floor every other figure is compared with.
//! * RAW1: RAW with one loop: the time per step of a queue that claims and
//!   completes one row at a time (two commits), S5's baseline.
//! * RAW_BATCHED: the same claiming 50 rows and completing them in one
//!   statement: the floor for engines that batch.
//!
//! Each scenario's line ends with its ratios to the baselines of the same
//! run (this machine's commit cost swings from day to day): `vs_raw`,
//! `vs_raw_batched` (steps/s over theirs) and, for S5, `vs_raw1` (time per
//! step over RAW1's).
//! * S1: single-step tasks created up front, then drained.
//! * S1P: S1 with the four priorities in turn; S1D: S1 with a one-hour
//!   deadline on every task; S1L: S1 with its step under a limit held
//!   across workers that never binds (concurrency 100,000): what each
//!   costs next to S1.
//! * S2: 10-step chains: steps/s and hand-off latency p50/p99: wall clock
//!   from a step's body to the next one's, noted by the bodies themselves
//!   (`handoff_wall_*`, the headline), and from the audit trail
//!   (`handoff_audit_*`: parent complete -> child start in the database).
//! * S3: diamonds `a -> {b, c} -> d`: steps/s and join latency p50/p99,
//!   wall clock from the later branch's body to the join's
//!   (`join_wall_*`, the headline) and from the audit trail (`join_*`);
//!   then the purge of the finished diamonds (`Tasker::purge`, batches of
//!   500): tasks/s deleted with their steps, edges and audit rows.
//! * S4: fan-outs 1 -> 100 -> 1: steps/s and the time from the last of the
//!   100 finishing to the join starting.
//! * S5: one 40-step chain alone: total time and time per step with the
//!   worker's start (`ms_per_step`), and without it: the bodies' own clock
//!   from the first step to the last (`chain_ms_per_step`, the headline)
//!   and per hop (`hop_wall_*`).
//! * DEC: S3's shape with a decision in the middle (`score -> route ->
//!   {left, right} -> join`, `right` skipped): steps/s next to S3.
//! * MAP: one task fanning out (`for_each`) over 10,000 items (1,000 with
//!   `--quick`), then a join: `items_per_s` over the drain, and from the
//!   last item's completion to the join's start: `join_wall_ms` (wall
//!   clock, the bodies' own `Instant`s; the headline) and `join_audit_ms`
//!   (the audit trail).
//! * CK: single-step tasks whose step saves 10 checkpoints:
//!   `checkpoints_per_s` and the drain next to S1.
//! * TX: 5,000 single-step tasks whose `#[step(transactional)]` step
//!   inserts one row that commits with its completion; TX_PLAIN: the same
//!   insert from a plain step on the application's own pool (at least
//!   once).
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

mod clock;
#[allow(unreachable_pub)]
mod handlers;
mod map;
mod probe;
mod raw;
mod soak;

use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use tasker::prelude::*;
use tasker::{Registry, Store, TaskRequest, Tasker};
use tasker_diesel::testing::TestDatabase;
use tasker_diesel::{PgOptions, PgStore};

use handlers::{
    Chain10, Chain40, Checkpointed, Decision, Diamond, Doomed, FanOut, MapSize, Mapped, PlainWrite,
    RetryOnce, Single, TimesOut, TxWrite, MAP_ITEMS,
};
use probe::{db_counters, latency, map_join_audit_ms, peak_rss_mib};
use raw::raw;
use soak::soak;

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
    #[arg(
        long,
        default_value = "RAW,RAW1,RAW_BATCHED,S1,S1P,S1D,S1L,S2,S3,S4,S5,DEC,MAP,MAP_SQLITE,CK,TX,TX_PLAIN"
    )]
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
    let (mut raw_steps_per_s, mut raw1_ms_per_step, mut raw_batched_steps_per_s) =
        (None, None, None);
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
        match scenario {
            "RAW" => raw_steps_per_s = steps_per_s,
            "RAW1" => raw1_ms_per_step = field(&line, "ms_per_step"),
            "RAW_BATCHED" => raw_batched_steps_per_s = steps_per_s,
            _ => {}
        }
        if scenario.starts_with("RAW") {
            println!("{line}");
            continue;
        }
        // Every target is a ratio to a baseline of the same run.
        let mut ratios = String::new();
        let over = |ours: Option<f64>, base: Option<f64>| match (ours, base) {
            (Some(ours), Some(base)) if base > 0.0 => Some(ours / base),
            _ => None,
        };
        if let Some(r) = over(steps_per_s, raw_steps_per_s) {
            ratios.push_str(&format!(" vs_raw={r:.2}"));
        }
        if let Some(r) = over(steps_per_s, raw_batched_steps_per_s) {
            ratios.push_str(&format!(" vs_raw_batched={r:.3}"));
        }
        if let Some(r) = over(field(&line, "chain_ms_per_step"), raw1_ms_per_step) {
            ratios.push_str(&format!(" vs_raw1={r:.2}"));
        }
        println!("{line}{ratios}");
    }
}

fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

fn registry() -> Registry {
    Registry::new()
        .with::<Single>()
        .and_then(|r| r.with::<Chain10>())
        .and_then(|r| r.with::<Chain40>())
        .and_then(|r| r.with::<Diamond>())
        .and_then(|r| r.with::<FanOut>())
        .and_then(|r| r.with::<Decision>())
        .and_then(|r| r.with::<Mapped>())
        .and_then(|r| r.with::<Checkpointed>())
        .and_then(|r| r.with::<RetryOnce>())
        .and_then(|r| r.with::<Doomed>())
        .and_then(|r| r.with::<TimesOut>())
        .and_then(|r| r.with::<TxWrite>())
        .and_then(|r| r.with::<PlainWrite>())
        .expect("the bench registry")
}

/// The application's own pool, for TX_PLAIN's step.
pub(crate) struct AppPool(diesel_async::pooled_connection::bb8::Pool<AsyncPgConnection>);

/// An engine on its own pool, serving the bench handlers.
async fn engine(args: &Args, url: &str, migrate: bool, scenario: &str) -> Tasker<PgStore> {
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
    let app = diesel_async::pooled_connection::bb8::Pool::builder()
        .max_size(args.pool)
        .build(diesel_async::pooled_connection::AsyncDieselConnectionManager::new(url))
        .await
        .expect("the application's pool");
    let settings = if scenario == "S1L" {
        tasker::config::Config::from_yaml_str(
            "handlers:\n  bench/single:\n    steps:\n      only:\n        limit: {concurrency: 100000}\n",
            "S1L",
            |_| None,
        )
        .expect("the S1L limit")
    } else {
        tasker::config::Config::default()
    };
    Tasker::builder(store)
        .registry(registry())
        .settings(settings)
        .resource(AppPool(app))
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
    if scenario == "MAP_SQLITE" {
        return map::map_sqlite(args).await;
    }
    let db = TestDatabase::create()
        .await
        .expect("a scratch database (is PostgreSQL up?)");
    if let Ok(mut conn) = AsyncPgConnection::establish(db.url()).await {
        let _ = conn
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await;
    }
    if scenario == "RAW" || scenario == "RAW1" {
        return raw(args, db.url(), scenario, 1).await;
    }
    if scenario == "RAW_BATCHED" {
        return raw(args, db.url(), scenario, 50).await;
    }
    if scenario == "SOAK" {
        return soak(args, db.url()).await;
    }
    let (make, tasks, steps_per_task): (fn(usize) -> TaskRequest, usize, usize) = match scenario {
        "S1" => (
            |_| Single::request(serde_json::Value::Null),
            args.scale(10_000, 1_000),
            1,
        ),
        "S1P" => (
            |i| Single::request(serde_json::Value::Null).priority(tasker::Priority::ALL[i % 4]),
            args.scale(10_000, 1_000),
            1,
        ),
        "S1L" => (
            |_| Single::request(serde_json::Value::Null),
            args.scale(10_000, 1_000),
            1,
        ),
        "S1D" => (
            |_| {
                Single::request(serde_json::Value::Null)
                    .max_execution_time(Duration::from_secs(3600))
            },
            args.scale(10_000, 1_000),
            1,
        ),
        "S2" => (
            |_| Chain10::request(serde_json::Value::Null),
            args.scale(1_000, 100),
            10,
        ),
        "S3" => (
            |_| Diamond::request(serde_json::Value::Null),
            args.scale(1_000, 200),
            4,
        ),
        "S4" => (
            |_| FanOut::request(serde_json::Value::Null),
            args.scale(100, 10),
            102,
        ),
        "S5" => (|_| Chain40::request(serde_json::Value::Null), 1, 40),
        "DEC" => (
            |_| Decision::request(serde_json::Value::Null),
            args.scale(1_000, 200),
            4,
        ),
        // The items, the source and the join (the group row's claim is
        // no completed step).
        "MAP" if args.quick => (
            |_| Mapped::request(MapSize { items: MAP_ITEMS / 10 }),
            1,
            MAP_ITEMS as usize / 10 + 2,
        ),
        "MAP" => (
            |_| Mapped::request(MapSize { items: MAP_ITEMS }),
            1,
            MAP_ITEMS as usize + 2,
        ),
        "CK" => (
            |_| Checkpointed::request(serde_json::Value::Null),
            args.scale(2_000, 200),
            1,
        ),
        "TX" => (
            |_| TxWrite::request(serde_json::Value::Null),
            args.scale(5_000, 500),
            1,
        ),
        "TX_PLAIN" => (
            |_| PlainWrite::request(serde_json::Value::Null),
            args.scale(5_000, 500),
            1,
        ),
        other => panic!(
            "unknown scenario {other}; use RAW, RAW1, RAW_BATCHED, S1, S1P, S1D, S1L, S2, S3, S4, S5, DEC, MAP, MAP_SQLITE, CK, TX, TX_PLAIN, SOAK"
        ),
    };
    if scenario.starts_with("TX") {
        let mut conn = AsyncPgConnection::establish(db.url())
            .await
            .expect("connect");
        conn.batch_execute("CREATE TABLE bench_effects (task_id BIGINT NOT NULL)")
            .await
            .expect("the effects table");
    }
    // Tasks are created through an engine of their own, closed before the
    // drain: PostgreSQL flushes a backend's transaction counts when it
    // exits, so the drain's counts are the workers' alone.
    let creator = engine(args, db.url(), true, scenario).await;
    let started = Instant::now();
    let requests: Vec<TaskRequest> = (0..tasks).map(make).collect();
    for chunk in requests.chunks(500) {
        creator.create_tasks(chunk.to_vec()).await.expect("create");
    }
    let created_in = started.elapsed();
    drop(creator);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut engines = Vec::new();
    for _ in 0..args.workers {
        engines.push(engine(args, db.url(), false, scenario).await);
    }
    if matches!(scenario, "S2" | "S3" | "S5") {
        clock::enable();
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
            // Headline: wall clock from one step's body to the next one's.
            // Secondary: the audit trail's timestamps (claim on release
            // writes both in one statement, so they show the database's
            // part only).
            let wall = clock::handoffs();
            let l = latency(db.url(), 1).await;
            line.push_str(&format!(
                " handoff_wall_p50_ms={} handoff_wall_p99_ms={} handoff_audit_p50_ms={} handoff_audit_p99_ms={}",
                fmt(clock::quantile_ms(&wall, 0.5)),
                fmt(clock::quantile_ms(&wall, 0.99)),
                fmt(l.p50),
                fmt(l.p99)
            ));
        }
        "S3" | "S4" => {
            // S3's headline is the wall clock from the later branch's body
            // to the join's; S4 and the secondary S3 figures come from the
            // audit trail (last parent complete -> join start).
            let l = latency(db.url(), 2).await;
            if scenario == "S3" {
                let wall = clock::joins(&[2, 3], 4);
                line.push_str(&format!(
                    " join_wall_p50_ms={} join_wall_p99_ms={}",
                    fmt(clock::quantile_ms(&wall, 0.5)),
                    fmt(clock::quantile_ms(&wall, 0.99)),
                ));
            }
            line.push_str(&format!(
                " join_p50_ms={} join_p99_ms={}",
                fmt(l.p50),
                fmt(l.p99)
            ));
            if scenario == "S3" {
                let purger = engine(args, db.url(), false, scenario).await;
                let started = Instant::now();
                let purged = purger
                    .purge(&tasker::store::PurgeFilter {
                        states: vec![tasker::TaskState::Complete],
                        finished_before: chrono_now_plus_seconds(5),
                        namespace: None,
                        name: None,
                        batch: 500,
                    })
                    .await
                    .expect("purge");
                let took = started.elapsed().as_secs_f64();
                assert_eq!(purged, tasks as u64, "every finished diamond is purged");
                line.push_str(&format!(
                    " purge_tasks_per_s={:.0} purge_s={took:.3}",
                    purged as f64 / took
                ));
            }
        }
        "MAP" => {
            let items = (expected - 2) as f64;
            let wall = map::map_join_wall_ms();
            line.push_str(&format!(
                " items_per_s={:.0} join_wall_ms={} join_audit_ms={}",
                items / drained_in.as_secs_f64(),
                fmt(wall),
                fmt(map_join_audit_ms(db.url()).await)
            ));
        }
        "CK" => {
            line.push_str(&format!(
                " checkpoints_per_s={:.0}",
                tasks as f64 * handlers::CHECKPOINTS_PER_TASK as f64 / drained_in.as_secs_f64()
            ));
        }
        "S5" => {
            // `ms_per_step` includes the worker's start (its pool's
            // connections, the first claim); `chain_ms_per_step` is the
            // first step's body to the last one's over the hops, and
            // `hop_wall_*` one step's body to the next one's.
            let hops = clock::handoffs();
            let chain = (!hops.is_empty())
                .then(|| hops.iter().sum::<Duration>().as_secs_f64() * 1000.0 / hops.len() as f64);
            line.push_str(&format!(
                " total_ms={:.1} ms_per_step={:.3} chain_ms_per_step={} hop_wall_p50_ms={} hop_wall_p99_ms={}",
                drained_in.as_secs_f64() * 1000.0,
                drained_in.as_secs_f64() * 1000.0 / steps,
                fmt(chain),
                fmt(clock::quantile_ms(&hops, 0.5)),
                fmt(clock::quantile_ms(&hops, 0.99)),
            ));
        }
        _ => {}
    }
    line
}

/// Now plus `seconds`, for a purge cut-off that includes everything finished.
fn chrono_now_plus_seconds(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::seconds(seconds)
}
