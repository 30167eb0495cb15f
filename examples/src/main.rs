//! The example worker: runs the example workflows and reports progress.
//!
//! Today it runs each task in-process with `tasker::testing::TaskRunner`
//! (no database); the durable worker on the embedded SQLite store replaces
//! it when the engine lands.

use std::process::ExitCode;

use tasker::testing::TaskRunner;
use tasker::{Registry, TaskState};
use tasker_examples::orders::{
    sample_order, Confirmation, PaymentGateway, ProcessOrder, Warehouse,
};

#[tokio::main]
async fn main() -> ExitCode {
    let registry = match Registry::from_inventory() {
        Ok(registry) => registry,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("registered task handlers:");
    for handler in registry.handlers() {
        let graph = handler.graph();
        println!(
            "  {} ({} steps, fingerprint {})",
            handler.key(),
            graph.len(),
            handler.fingerprint()
        );
        for (level, steps) in graph.levels().iter().enumerate() {
            println!("    level {level}: {}", steps.join(", "));
        }
        println!("    critical path: {}", graph.critical_path().join(" -> "));
    }

    // The gateway fails its first two charges with a 503, so the first order
    // shows retries; order 1004's card is declined.
    let runner = TaskRunner::new()
        .resource(PaymentGateway::flaky(2))
        .resource(Warehouse::with_stock([("widget", 100), ("gadget", 100)]));
    let orders = [
        sample_order(1001, "tok_visa"),
        sample_order(1002, "tok_mastercard"),
        sample_order(1003, "tok_amex"),
        sample_order(1004, "declined_card"),
        sample_order(1005, "tok_visa"),
    ];

    let (mut complete, mut failed, mut attempts) = (0, 0, 0);
    for order in orders {
        let order_id = order.order_id;
        let run = match runner.run::<ProcessOrder>(order).await {
            Ok(run) => run,
            Err(e) => {
                eprintln!("order {order_id}: could not start: {e}");
                failed += 1;
                continue;
            }
        };
        attempts += run.attempts().len();
        for attempt in run.attempts() {
            match &attempt.error {
                None => println!(
                    "order {order_id}: {} done (attempt {})",
                    attempt.step, attempt.attempt
                ),
                Some(e) => println!(
                    "order {order_id}: {} failed (attempt {}): {e}",
                    attempt.step, attempt.attempt
                ),
            }
        }
        match run.state() {
            TaskState::Complete => {
                complete += 1;
                let confirmation: Confirmation = run
                    .output("send_confirmation")
                    .expect("a complete run has every output");
                println!(
                    "order {order_id}: complete; emailed {}: {}",
                    confirmation.sent_to, confirmation.subject
                );
            }
            state => {
                failed += 1;
                let (step, error) = run.failure().expect("a failed run has a failed step");
                println!(
                    "order {order_id}: {state} at step {step}: {}",
                    error.message()
                );
            }
        }
    }
    println!("summary: {complete} complete, {failed} failed, {attempts} step attempts");
    ExitCode::SUCCESS
}
