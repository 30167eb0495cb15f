//! The example worker: tasker's operator CLI plus a demo.
//!
//! `cargo run` (no arguments) runs the demo: it opens the embedded SQLite
//! database `tasker-example.sqlite` (or `DATABASE_URL`), creates five sample
//! orders and two payouts (`payouts.rs`: a checkpointed batch and a
//! decision), runs a worker until they are all finished, printing each step as
//! it advances, and prints a summary. Every other command (`run`, `task
//! list`, `check`, ...) comes from [`tasker_cli`]: `cargo run -- --help`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tasker::store::TaskRecord;
use tasker::{StepState, TaskHandler, TaskId, TaskState, Tasker};
use tasker_cli::{App, GlobalArgs};
use tasker_diesel::AnyStore;
use tasker_examples::orders::{sample_order, PaymentGateway, ProcessOrder, Warehouse};
use tasker_examples::payouts::{sample_payout, SettlePayout};

/// tasker's example worker: the order workflow, a demo, and tasker's CLI.
#[derive(Parser)]
#[command(name = "worker", version)]
struct Args {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create sample orders and payouts and run them to the end (the default).
    Demo {
        /// How many orders.
        #[arg(long, default_value_t = 5)]
        orders: i64,
    },
    #[command(flatten)]
    Tasker(tasker_cli::Command),
}

fn app() -> App {
    App::new("worker")
        .default_database_url("sqlite://tasker-example.sqlite")
        .configure(|builder| {
            builder
                // The gateway fails its first two charges with a 503, so the
                // first order shows retries with backoff.
                .resource(PaymentGateway::flaky(2))
                .resource(Warehouse::with_stock([
                    ("widget", 1_000_000),
                    ("gadget", 1_000_000),
                ]))
        })
        // Engine settings, step overrides and the confirmation email's
        // `handler_config`; `--config FILE` or TASKER_CONFIG names another.
        .default_config_file(concat!(env!("CARGO_MANIFEST_DIR"), "/tasker.yaml"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let app = match app().load(&args.global) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {}", e.message);
            return e.exit.into();
        }
    };
    let orders = match args.command {
        Some(Command::Tasker(command)) => return app.execute(&args.global, command).await,
        Some(Command::Demo { orders }) => orders,
        None => 5,
    };
    let _telemetry = match app.telemetry(&args.global) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit.into();
        }
    };
    let tasker = match app.engine(&args.global, true, |_| {}).await {
        Ok(tasker) => tasker,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit.into();
        }
    };
    match demo(tasker, orders).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(tasker: Tasker<AnyStore>, orders: i64) -> Result<(), String> {
    println!(
        "tasker example worker on {} ({:?} mode)",
        tasker.store().describe(),
        tasker.mode()
    );
    for handler in tasker.registry().handlers() {
        println!(
            "  handler {}: {}",
            handler.key(),
            handler.graph().critical_path().join(" -> ")
        );
    }
    let worker = tasker.start_worker();
    let started = Instant::now();
    let mut tasks: Vec<(String, TaskId)> = Vec::new();
    for n in 0..orders {
        let order_id = 1001 + n;
        // Every fourth order's card is declined: a permanent error.
        let card = if n % 4 == 3 {
            "declined_card"
        } else {
            "tok_visa"
        };
        let created = tasker
            .create_task(ProcessOrder::request(sample_order(order_id, card)).initiator("demo"))
            .await
            .map_err(|e| e.to_string())?;
        println!("order {order_id}: created task {}", created.task_id());
        tasks.push((format!("order {order_id}"), created.task_id()));
    }
    // Two payouts: one whose totals agree (settled; the review is
    // skipped), one with a discrepancy (held for review).
    for (merchant, bank_total_cents) in [(501, 9_500), (502, 9_250)] {
        let created = tasker
            .create_task(
                SettlePayout::request(sample_payout(merchant, 95, bank_total_cents))
                    .initiator("demo"),
            )
            .await
            .map_err(|e| e.to_string())?;
        println!("payout {merchant}: created task {}", created.task_id());
        tasks.push((format!("payout {merchant}"), created.task_id()));
    }

    // Follow the tasks, printing every step change, until all are done.
    let mut seen: HashMap<(TaskId, String), (StepState, u32)> = HashMap::new();
    let mut finished: HashMap<TaskId, TaskRecord> = HashMap::new();
    while finished.len() < tasks.len() {
        for (label, id) in &tasks {
            if finished.contains_key(id) {
                continue;
            }
            let task = tasker.task(*id).await.map_err(|e| e.to_string())?;
            for step in &task.steps {
                // A fan-out's items by their place: `verify_account[2]`.
                let name = match step.item_index {
                    Some(i) => format!("{}[{i}]", step.name),
                    None => step.name.clone(),
                };
                let key = (*id, name.clone());
                let now = (step.state, step.attempts);
                if seen.get(&key) != Some(&now) {
                    let note = match (&step.state, &step.last_error) {
                        (StepState::Ready, Some(e)) if step.attempts > 0 => {
                            format!(" after failure: {}", e.message())
                        }
                        (StepState::Error, Some(e)) => format!(": {}", e.message()),
                        _ => String::new(),
                    };
                    println!(
                        "{label}: {:<18} {:<12} attempt {}{note}",
                        name, step.state, step.attempts
                    );
                    seen.insert(key, now);
                }
            }
            if task.state.is_finished() || task.state == TaskState::Error {
                println!("{label}: task {} is {}", task.task_id, task.state);
                finished.insert(*id, task);
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let elapsed = started.elapsed();
    let counts = worker.shutdown().await;
    let complete = finished
        .values()
        .filter(|t| t.state == TaskState::Complete)
        .count();
    let failed = finished
        .values()
        .filter(|t| t.state == TaskState::Error)
        .count();
    println!(
        "summary: {} tasks: {complete} complete, {failed} in error; {} steps completed, {} retried, {} failed; {:.2}s",
        finished.len(),
        counts.completed,
        counts.retried,
        counts.failed,
        elapsed.as_secs_f64()
    );
    Ok(())
}
