//! Handlers defined with the macros, run end to end with the in-process
//! runner: outputs flow along typed edges, and retries, permanent errors,
//! timeouts, panics and context validation behave as on a worker.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tasker::prelude::*;
use tasker::testing::TaskRunner;
use tasker::{Error, Registry, StepState, TaskState};
use tasker_examples::orders::{
    sample_order, Confirmation, PaymentGateway, ProcessOrder, Receipt, Warehouse,
};

fn order_runner(flaky_failures: u32) -> TaskRunner {
    TaskRunner::new()
        .resource(PaymentGateway::flaky(flaky_failures))
        .resource(Warehouse::with_stock([("widget", 10), ("gadget", 10)]))
}

#[tokio::test]
async fn the_order_example_completes_with_outputs_passed_along() {
    let run = order_runner(0)
        .run::<ProcessOrder>(sample_order(42, "tok_visa"))
        .await
        .unwrap();
    assert_eq!(run.state(), TaskState::Complete, "{:?}", run.failure());
    let order = run.completion_order();
    let position = |step: &str| order.iter().position(|s| *s == step).unwrap();
    // The join runs after both parents, the confirmation after the join.
    assert!(position("ship_order") > position("reserve_inventory"));
    assert!(position("ship_order") > position("charge_payment"));
    assert!(position("send_confirmation") > position("ship_order"));
    assert_eq!(order.len(), 5);

    let receipt: Receipt = run.output("charge_payment").unwrap();
    assert_eq!(receipt.amount_cents, 2 * 1_250 + 4_999);
    let confirmation: Confirmation = run.output("send_confirmation").unwrap();
    assert_eq!(confirmation.sent_to, "customer42@example.com");
    assert!(
        confirmation.subject.contains("TRK-42-res_42")
            && confirmation.subject.contains(&receipt.transaction_id),
        "{}",
        confirmation.subject
    );
    assert!(run.steps().iter().all(|s| s.attempts == 1));
}

#[tokio::test]
async fn transient_failures_are_retried_until_success() {
    let run = order_runner(2)
        .run::<ProcessOrder>(sample_order(1, "tok_visa"))
        .await
        .unwrap();
    assert!(run.is_complete());
    let charge = run.step("charge_payment").unwrap();
    assert_eq!(charge.attempts, 3);
    assert_eq!(charge.errors.len(), 2);
    assert!(charge.errors.iter().all(|e| e.is_retryable()));
    assert_eq!(
        charge.errors[0].message(),
        "payment gateway unavailable (503)"
    );
    assert_eq!(
        charge.errors[0].class(),
        "tasker_examples::orders::PaymentError"
    );
}

#[tokio::test]
async fn exhausted_retries_fail_the_task_and_skip_what_follows() {
    // charge_payment allows 5 retries: 6 failures exhaust it.
    let run = order_runner(6)
        .run::<ProcessOrder>(sample_order(2, "tok_visa"))
        .await
        .unwrap();
    assert_eq!(run.state(), TaskState::Error);
    let charge = run.step("charge_payment").unwrap();
    assert_eq!((charge.state, charge.attempts), (StepState::Error, 6));
    assert_eq!(
        run.step("reserve_inventory").unwrap().state,
        StepState::Complete
    );
    assert_eq!(run.step("ship_order").unwrap().state, StepState::Pending);
    assert_eq!(run.step("ship_order").unwrap().attempts, 0);
    let (step, error) = run.failure().unwrap();
    assert_eq!(step, "charge_payment");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_permanent_error_is_not_retried() {
    let run = order_runner(0)
        .run::<ProcessOrder>(sample_order(3, "declined_visa"))
        .await
        .unwrap();
    assert_eq!(run.state(), TaskState::Error);
    let charge = run.step("charge_payment").unwrap();
    assert_eq!(charge.attempts, 1);
    assert_eq!(charge.errors[0].class(), "PaymentDeclined");
    let err = run.output::<Confirmation>("send_confirmation").unwrap_err();
    assert_eq!(
        err.to_string(),
        "step `send_confirmation` has no output: it did not run because a step before it failed"
    );
    let err = run.output::<Receipt>("charge_payment").unwrap_err();
    assert!(
        err.to_string().contains("failed after 1 attempt(s)"),
        "{err}"
    );
    assert!(matches!(run.step("nope"), Err(Error::UnknownStep { .. })));
}

#[tokio::test]
async fn a_context_that_does_not_match_is_refused_with_its_path() {
    let handler = ProcessOrder::handler();
    let mut context = serde_json::to_value(sample_order(4, "tok_visa")).unwrap();
    context["lines"][1]["quantity"] = json!("two");
    let err = TaskRunner::new()
        .run_handler(&handler, context)
        .await
        .unwrap_err();
    let Error::Context(err) = err else {
        panic!("expected a context error, got {err}");
    };
    assert_eq!(err.path, "lines[1].quantity");
    assert!(err.detail.contains("expected u32"), "{}", err.detail);
    assert!(
        err.to_string().contains("tasker_examples::orders::Order"),
        "{err}"
    );

    let err = TaskRunner::new()
        .run_handler(&handler, json!({"order_id": 1}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("missing field `customer_email`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_resource_names_the_type() {
    let run = TaskRunner::new()
        .run::<ProcessOrder>(sample_order(5, "tok_visa"))
        .await
        .unwrap();
    let (step, error) = run.failure().unwrap();
    assert_eq!(step, "reserve_inventory");
    assert!(!error.is_retryable());
    assert!(
        error
            .message()
            .contains("tasker_examples::orders::Warehouse"),
        "{error}"
    );
}

/// Counts attempts per test, shared through a resource.
#[derive(Default)]
struct Attempts(AtomicU32);

#[derive(Serialize, Deserialize)]
struct Plan {
    fail_times: u32,
    panic: bool,
}

struct Flaky;

#[task_handler(namespace = "tests", context = Plan)]
impl Flaky {
    #[step(retry_limit = 2)]
    async fn wobble(ctx: &StepContext<Plan>) -> StepResult<u32> {
        let n = ctx
            .resource::<Arc<Attempts>>()?
            .0
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        assert_eq!(n, ctx.attempt(), "the runner numbers attempts from 1");
        if n <= ctx.context().fail_times {
            if ctx.context().panic {
                panic!("wobble blew up on attempt {n}");
            }
            return Err(StepError::retryable(format!("attempt {n} failed")));
        }
        Ok(n)
    }

    #[step(depends_on = wobble, retryable = false)]
    async fn once(wobble: u32) -> StepResult<u32> {
        Err(StepError::retryable(format!(
            "would retry after {wobble}, but may not"
        )))
    }

    #[step(timeout = "50ms", retry_limit = 1)]
    async fn slow() -> StepResult<()> {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        Ok(())
    }
}

async fn run_flaky(fail_times: u32, panic: bool) -> (tasker::testing::TaskRun, u32) {
    let attempts = Arc::new(Attempts::default());
    let run = TaskRunner::new()
        .resource(Arc::clone(&attempts))
        .run::<Flaky>(Plan { fail_times, panic })
        .await
        .unwrap();
    (run, attempts.0.load(Ordering::SeqCst))
}

#[tokio::test]
async fn retry_limit_counts_retries_after_the_first_attempt() {
    let (run, made) = run_flaky(2, false).await;
    assert_eq!(made, 3);
    assert_eq!(run.step("wobble").unwrap().state, StepState::Complete);
    assert_eq!(run.output::<u32>("wobble").unwrap(), 3);

    let (run, made) = run_flaky(3, false).await;
    assert_eq!(made, 3, "retry_limit = 2 allows three attempts in all");
    assert_eq!(run.step("wobble").unwrap().state, StepState::Error);
}

#[tokio::test]
async fn retryable_false_means_one_attempt() {
    let (run, _) = run_flaky(0, false).await;
    let once = run.step("once").unwrap();
    assert_eq!((once.state, once.attempts), (StepState::Error, 1));
}

#[tokio::test]
async fn a_panic_is_a_failed_retryable_attempt() {
    let (run, made) = run_flaky(1, true).await;
    assert_eq!(made, 2);
    let wobble = run.step("wobble").unwrap();
    assert_eq!(wobble.state, StepState::Complete);
    assert_eq!(wobble.errors[0].class(), "Panic");
    assert_eq!(
        wobble.errors[0].message(),
        "the step panicked: wobble blew up on attempt 1"
    );
}

#[tokio::test]
async fn a_step_over_its_timeout_fails_each_attempt() {
    let (run, _) = run_flaky(0, false).await;
    let slow = run.step("slow").unwrap();
    assert_eq!((slow.state, slow.attempts), (StepState::Error, 2));
    assert!(slow.errors.iter().all(|e| e.class() == "Timeout"));
    assert_eq!(
        slow.errors[0].message(),
        "the step did not finish within its timeout of 50ms"
    );
}

#[test]
fn every_handler_in_the_binary_is_registered() {
    let registry = Registry::from_inventory().unwrap();
    let keys: Vec<String> = registry.handlers().map(|h| h.key()).collect();
    assert!(
        keys.contains(&"ecommerce/process_order@1.0.0".to_owned()),
        "{keys:?}"
    );
    assert!(keys.contains(&"tests/flaky@0.1.0".to_owned()), "{keys:?}");
    let handler = registry
        .find("ecommerce", "process_order", Some("^1"))
        .unwrap();
    assert_eq!(handler.fingerprint(), ProcessOrder::handler().fingerprint());
    assert_eq!(
        handler.graph().levels(),
        vec![
            vec!["validate_order"],
            vec!["reserve_inventory", "charge_payment"],
            vec!["ship_order"],
            vec!["send_confirmation"],
        ]
    );
}

#[test]
fn the_fingerprint_follows_the_graph_shape_only() {
    let order = ProcessOrder::handler();
    let flaky = Flaky::handler();
    assert_eq!(order.fingerprint().len(), 32);
    assert_ne!(order.fingerprint(), flaky.fingerprint());
    // Computed from the static definition: the same every time.
    assert_eq!(order.fingerprint(), ProcessOrder::handler().fingerprint());
}
