//! Throughput benchmark (release build):
//!
//! ```sh
//! cargo run --release -p tasker-examples --bin bench -- --tasks 10000
//! ```
//!
//! S1: creates `--tasks` single-step tasks up front on a fresh PostgreSQL
//! database, then drains them with one worker, and prints one line of
//! `key=value` figures: tasks/s created, steps/s drained, and database
//! round trips per step: counted by the worker (claims plus one completion
//! per step) and, when the server loads `pg_stat_statements`, counted by
//! PostgreSQL.

use std::time::{Duration, Instant};

use clap::Parser;
use diesel::sql_types::BigInt;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tasker::prelude::*;
use tasker::{Registry, Store, Tasker};
use tasker_diesel::testing::TestDatabase;
use tasker_diesel::PgStore;

/// Options.
#[derive(Parser)]
struct Args {
    /// Single-step tasks to create and drain.
    #[arg(long, default_value_t = 10_000)]
    tasks: u32,
    /// Steps run at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Steps claimed per round trip.
    #[arg(long, default_value_t = 32)]
    batch: u32,
    /// A small run for CI smoke tests.
    #[arg(long)]
    quick: bool,
}

/// A handler whose one step does nothing.
pub struct Noop;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl Noop {
    /// Does nothing.
    #[step]
    async fn noop() -> StepResult<()> {
        Ok(())
    }
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// Statements executed in this database, from `pg_stat_statements` when
/// the server has it loaded (`None` otherwise).
async fn statements(url: &str) -> Option<i64> {
    let mut conn = AsyncPgConnection::establish(url).await.ok()?;
    diesel::sql_query(
        "SELECT COALESCE(sum(calls), 0)::bigint AS total FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .get_result::<Total>(&mut conn)
    .await
    .ok()
    .map(|t| t.total)
}

fn counted_steps(counts: &tasker::WorkerCounts) -> f64 {
    counts.completed.max(1) as f64
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let tasks = if args.quick {
        args.tasks.min(1_000)
    } else {
        args.tasks
    };
    let db = TestDatabase::create().await.expect("a scratch database");
    let store = PgStore::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    let tasker = Tasker::builder(store)
        .registry(Registry::new().with::<Noop>().expect("registry"))
        .configure(|c| {
            c.concurrency = args.concurrency;
            c.claim_batch = args.batch;
            c.poll_interval = Duration::from_millis(100);
        })
        .build()
        .await
        .expect("engine");

    let started = Instant::now();
    for _ in 0..tasks {
        tasker
            .create_task(Noop::request(serde_json::Value::Null))
            .await
            .expect("create");
    }
    let created_in = started.elapsed();

    // The view needs the extension in this database (ignored if the server
    // does not load the library).
    if let Ok(mut conn) = AsyncPgConnection::establish(db.url()).await {
        let _ = diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&mut conn)
            .await;
    }
    let statements_before = statements(db.url()).await;
    let started = Instant::now();
    let worker = tasker.start_worker();
    while worker.counts().completed < u64::from(tasks) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drained_in = started.elapsed();
    let counts = worker.shutdown().await;
    // The two probe statements themselves are subtracted.
    let counted = match (statements_before, statements(db.url()).await) {
        (Some(before), Some(after)) => format!(
            "{:.2}",
            (after - before - 2) as f64 / counted_steps(&counts)
        ),
        _ => "n/a".to_owned(),
    };
    let steps = counts.completed as f64;
    // Round trips the worker made: claims and one completion per step.
    let round_trips = counts.claim_queries as f64 + steps;
    println!(
        "scenario=S1 tasks={tasks} concurrency={} batch={} created_per_s={:.0} drained_steps_per_s={:.0} \
         round_trips_per_step={:.2} statements_per_step_pg={counted} claims={}",
        args.concurrency,
        args.batch,
        f64::from(tasks) / created_in.as_secs_f64(),
        steps / drained_in.as_secs_f64(),
        round_trips / steps,
        counts.claim_queries,
    );
}
