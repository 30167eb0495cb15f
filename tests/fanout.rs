//! Fan-out steps (`#[step(for_each = source)]`) in the in-process
//! runner: one run per item of the source's list, each with its own
//! attempts, and the step after them receives their outputs as a `Vec` in
//! item order. The engine's stores do not run them yet: an engine does not
//! serve such a handler and says why.

use serde::{Deserialize, Serialize};
use tasker::prelude::*;
use tasker::testing::TaskRunner;
use tasker::{Registry, StepState};

/// An order to invoice, line by line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// Amounts in cents; a negative amount is refused, a multiple of 7
    /// fails once (the card network hiccups) and then succeeds.
    pub lines: Vec<i64>,
}

/// One line, as `lines` hands it to `charge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Its place in the order.
    pub number: usize,
    /// Cents.
    pub cents: i64,
}

/// lines -> charge (once per line, two at a time) -> total.
pub struct Invoice;

#[task_handler(namespace = "fanout", version = "1.0.0", context = Order)]
impl Invoice {
    /// The order's lines.
    #[step]
    async fn lines(ctx: &StepContext<Order>) -> StepResult<Vec<Line>> {
        Ok(ctx
            .context()
            .lines
            .iter()
            .enumerate()
            .map(|(number, cents)| Line {
                number,
                cents: *cents,
            })
            .collect())
    }

    /// Charges one line.
    #[step(depends_on = lines, for_each = lines, concurrency = 2, retry_limit = 2)]
    async fn charge(ctx: &StepContext<Order>, lines: Line) -> StepResult<String> {
        if lines.cents < 0 {
            return Err(StepError::permanent(format!(
                "line {} has a negative amount",
                lines.number
            )));
        }
        if lines.cents % 7 == 0 && ctx.attempt() == 1 {
            return Err(StepError::retryable("card network busy"));
        }
        Ok(format!("line {}: {} cents", lines.number, lines.cents))
    }

    /// Receives every line's receipt, in line order.
    #[step(depends_on = charge)]
    async fn total(charge: Vec<String>) -> StepResult<Vec<String>> {
        Ok(charge)
    }
}

async fn run(lines: Vec<i64>) -> tasker::testing::TaskRun {
    TaskRunner::new()
        .run::<Invoice>(Order { lines })
        .await
        .unwrap()
}

#[tokio::test]
async fn each_item_runs_and_the_join_gets_their_outputs_in_item_order() {
    let run = run(vec![100, 14, 250]).await;
    assert!(run.is_complete(), "{:?}", run.steps());
    assert_eq!(
        run.output::<Vec<String>>("total").unwrap(),
        ["line 0: 100 cents", "line 1: 14 cents", "line 2: 250 cents"]
    );
    // Three items, one of which (14) needed a second attempt.
    let charges: Vec<_> = run
        .attempts()
        .iter()
        .filter(|a| a.step == "charge")
        .map(|a| a.error.is_some())
        .collect();
    assert_eq!(charges, [false, true, false, false]);
}

#[tokio::test]
async fn sizes_zero_one_and_ten_thousand() {
    let empty = run(vec![]).await;
    assert!(empty.is_complete());
    assert!(empty.output::<Vec<String>>("total").unwrap().is_empty());
    assert_eq!(empty.step("charge").unwrap().attempts, 0);

    let one = run(vec![5]).await;
    assert_eq!(
        one.output::<Vec<String>>("total").unwrap(),
        ["line 0: 5 cents"]
    );

    let lines: Vec<i64> = (1..=10_000).map(|n| n * 10 + 1).collect();
    let many = run(lines.clone()).await;
    assert!(many.is_complete());
    let total = many.output::<Vec<String>>("total").unwrap();
    assert_eq!(total.len(), 10_000);
    for (n, receipt) in total.iter().enumerate() {
        assert_eq!(*receipt, format!("line {n}: {} cents", lines[n]));
    }
}

#[tokio::test]
async fn an_item_that_fails_for_good_fails_the_step_and_the_join_does_not_run() {
    let run = run(vec![100, -5, 250]).await;
    assert!(!run.is_complete());
    let charge = run.step("charge").unwrap();
    assert_eq!(charge.state, StepState::Error);
    assert!(
        charge
            .errors
            .iter()
            .any(|e| e.message() == "line 1 has a negative amount"),
        "{charge:?}"
    );
    assert_eq!(run.step("total").unwrap().state, StepState::Pending);
}

#[tokio::test]
async fn an_engine_does_not_serve_a_fan_out_yet_and_says_why() {
    let store = tasker_tests::sqlite().await;
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Invoice>().unwrap())
    })
    .await;
    let unsupported = &tasker.startup_report().unsupported;
    assert!(
        unsupported.iter().any(|r| r.contains("fanout/invoice")
            && r.contains("`charge`")
            && r.contains("for_each")),
        "{unsupported:?}"
    );
    let err = tasker
        .create_task(Invoice::request(Order { lines: vec![1] }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not served"), "{err}");
}
