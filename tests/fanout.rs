//! Fan-out steps (`#[step(for_each = source)]`): one run per item of the
//! source's list, each with its own attempts, and the step after them
//! receives their outputs as a `Vec` in item order, in the in-process
//! runner and in the engine on both stores (an instance row per item,
//! released `concurrency` at a time).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasker::prelude::*;
use tasker::store::{StepRecord, Store, Transition};
use tasker::testing::TaskRunner;
use tasker::{Registry, StepState, TaskState};

const WAIT: Duration = Duration::from_secs(120);

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

/// `cents` as lines, numbered from 0.
fn numbered(cents: &[i64]) -> Vec<Line> {
    cents
        .iter()
        .enumerate()
        .map(|(number, cents)| Line {
            number,
            cents: *cents,
        })
        .collect()
}

/// lines -> charge (once per line, two at a time) -> total.
pub struct Invoice;

#[task_handler(namespace = "fanout", version = "1.0.0", context = Order)]
impl Invoice {
    /// The order's lines.
    #[step]
    async fn lines(ctx: &StepContext<Order>) -> StepResult<Vec<Line>> {
        Ok(numbered(&ctx.context().lines))
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

/// Refunds to make, line by line; a failed refund is reported, not fatal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Refund {
    /// Amounts in cents: negative is refused, 13 finds the bank down on
    /// every attempt, a multiple of 7 fails once.
    pub lines: Vec<i64>,
    /// The report fails for good on its first attempt (an operator
    /// retries the task).
    pub fail_report_once: bool,
}

/// lines -> refund (once per line, two at a time, failures collected) ->
/// report.
pub struct Refunds;

#[task_handler(namespace = "fanout", version = "1.0.0", context = Refund)]
impl Refunds {
    /// The refund's lines.
    #[step]
    async fn lines(ctx: &StepContext<Refund>) -> StepResult<Vec<Line>> {
        Ok(numbered(&ctx.context().lines))
    }

    /// Refunds one line.
    #[step(depends_on = lines, for_each = lines, concurrency = 2, retry_limit = 2, on_item_error = "collect")]
    async fn refund(ctx: &StepContext<Refund>, lines: Line) -> StepResult<String> {
        if lines.cents < 0 {
            return Err(StepError::permanent(format!(
                "line {} has a negative amount",
                lines.number
            ))
            .with_class("NegativeAmount"));
        }
        if lines.cents == 13 {
            return Err(StepError::retryable("bank unavailable"));
        }
        if lines.cents % 7 == 0 && ctx.attempt() == 1 {
            return Err(StepError::retryable("card network busy"));
        }
        Ok(format!("line {}: {} cents", lines.number, lines.cents))
    }

    /// One line per item: its receipt, or why it failed.
    #[step(depends_on = refund)]
    async fn report(
        ctx: &StepContext<Refund>,
        refund: Vec<Result<String, StepError>>,
    ) -> StepResult<Vec<String>> {
        if ctx.context().fail_report_once && ctx.attempt() == 1 {
            return Err(StepError::permanent("the report printer is out of paper"));
        }
        Ok(refund
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| format!("failed: {}", e.message())))
            .collect())
    }
}

/// What `Refunds` reports for `lines`.
fn refund_report(lines: &[i64]) -> Vec<String> {
    lines
        .iter()
        .enumerate()
        .map(|(n, cents)| match cents {
            c if *c < 0 => format!("failed: line {n} has a negative amount"),
            13 => "failed: bank unavailable".to_owned(),
            c => format!("line {n}: {c} cents"),
        })
        .collect()
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
async fn collected_item_errors_reach_the_join_in_the_runner() {
    let lines = vec![100, -5, 14, 13, 30];
    let run = TaskRunner::new()
        .run::<Refunds>(Refund {
            lines: lines.clone(),
            ..Refund::default()
        })
        .await
        .unwrap();
    assert!(run.is_complete(), "{:?}", run.steps());
    assert_eq!(
        run.output::<Vec<String>>("report").unwrap(),
        refund_report(&lines)
    );
    // The refund's output is one `Result` per item, in serde's form.
    let refund: Vec<Result<String, StepError>> = run.output("refund").unwrap();
    assert_eq!(refund[1].as_ref().unwrap_err().class(), "NegativeAmount");
    assert_eq!(refund[2].as_deref(), Ok("line 2: 14 cents"));
    // 13 used all three attempts; -5 one.
    let attempts = |failing: &str| {
        run.attempts()
            .iter()
            .filter(|a| a.error.as_ref().is_some_and(|e| e.message() == failing))
            .count()
    };
    assert_eq!(attempts("bank unavailable"), 3);
    assert_eq!(attempts("line 1 has a negative amount"), 1);
}

/// The instances of step `name` in item order.
fn instances<'a>(steps: &'a [StepRecord], name: &str) -> Vec<&'a StepRecord> {
    let mut found: Vec<_> = steps
        .iter()
        .filter(|s| s.name == name && s.item_index.is_some())
        .collect();
    found.sort_by_key(|s| s.item_index);
    found
}

/// The most instances of `steps` released and not yet finished at any
/// point of the audit trail (a release is a step's first `ready`).
fn most_at_once(transitions: &[Transition], steps: &[&StepRecord]) -> usize {
    let ids: std::collections::HashSet<_> = steps.iter().map(|s| s.step_id).collect();
    let mut mine: Vec<_> = transitions
        .iter()
        .filter(|t| t.step_id.is_some_and(|id| ids.contains(&id)))
        .collect();
    mine.sort_by_key(|t| t.seq);
    let (mut open, mut most) = (0usize, 0usize);
    for t in mine {
        match (t.from_state.as_deref(), t.to_state.as_str()) {
            (None | Some("pending"), "ready") => open += 1,
            (_, "complete") => open -= 1,
            _ => {}
        }
        most = most.max(open);
    }
    most
}

async fn a_fan_out_runs_each_item_once_and_the_join_gets_their_outputs<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Invoice>().unwrap())
    })
    .await;
    assert!(tasker.startup_report().unsupported.is_empty());
    let lines = vec![100, 14, 250, 3, 8, 21, 9];
    let task = tasker
        .run_task(
            Invoice::request(Order {
                lines: lines.clone(),
            }),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let total = task.steps.iter().find(|s| s.name == "total").unwrap();
    let expected: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(n, cents)| format!("line {n}: {cents} cents"))
        .collect();
    assert_eq!(total.output, Some(serde_json::json!(expected)));
    // The group row: complete with the outputs, claimed once.
    let group = task
        .steps
        .iter()
        .find(|s| s.name == "charge" && s.item_index.is_none())
        .unwrap();
    assert_eq!(group.state, StepState::Complete);
    assert_eq!(group.output, Some(serde_json::json!(expected)));
    assert_eq!(group.attempts, 1);
    // One instance per line, in order, each with its item; 14 and 21 (a
    // multiple of 7) needed a second attempt.
    let charges = instances(&task.steps, "charge");
    assert_eq!(charges.len(), lines.len());
    for (n, charge) in charges.iter().enumerate() {
        assert_eq!(charge.item_index, Some(n as u32));
        assert_eq!(charge.state, StepState::Complete);
        assert_eq!(
            charge.item,
            Some(serde_json::json!({ "number": n, "cents": lines[n] }))
        );
        assert_eq!(charge.output, Some(serde_json::json!(expected[n])));
        assert_eq!(charge.attempts, if lines[n] % 7 == 0 { 2 } else { 1 });
        // The source's list is not an input of each instance.
        assert!(charge.depends_on.is_empty(), "{charge:?}");
    }
    let transitions = tasker.store().transitions(task.task_id).await.unwrap();
    tasker_tests::assert_legal(&transitions);
    // `concurrency = 2`: never more than two released at once.
    assert_eq!(most_at_once(&transitions, &charges), 2);
}

async fn sizes_zero_one_and_a_thousand_in_the_store<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Invoice>().unwrap())
    })
    .await;
    for size in [0usize, 1, 1_000] {
        let lines: Vec<i64> = (0..size as i64).map(|n| n * 10 + 1).collect();
        let task = tasker
            .run_task(
                Invoice::request(Order {
                    lines: lines.clone(),
                }),
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(task.state, TaskState::Complete, "{size} items: {task:?}");
        let total: Vec<String> = serde_json::from_value(
            task.steps
                .iter()
                .find(|s| s.name == "total")
                .and_then(|s| s.output.clone())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(total.len(), size);
        for (n, receipt) in total.iter().enumerate() {
            assert_eq!(*receipt, format!("line {n}: {} cents", lines[n]));
        }
        let charges = instances(&task.steps, "charge");
        assert_eq!(charges.len(), size);
        for (charge, cents) in charges.iter().zip(&lines) {
            // A multiple of 7 fails once.
            assert_eq!(charge.attempts, if cents % 7 == 0 { 2 } else { 1 });
        }
        let transitions = tasker.store().transitions(task.task_id).await.unwrap();
        tasker_tests::assert_legal(&transitions);
        assert!(most_at_once(&transitions, &charges) <= 2);
    }
}

async fn an_item_that_fails_for_good_fails_the_task_and_the_join_waits<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Invoice>().unwrap())
    })
    .await;
    let worker = tasker.start_worker();
    let task_id = tasker
        .create_task(Invoice::request(Order {
            lines: vec![100, -5, 250, 30],
        }))
        .await
        .unwrap()
        .task_id();
    // The other items go on in the one slot left.
    let deadline = std::time::Instant::now() + WAIT;
    let task = loop {
        let task = tasker.task(task_id).await.unwrap();
        let charges = instances(&task.steps, "charge");
        if charges.len() == 4 && charges[3].state == StepState::Complete {
            break task;
        }
        assert!(std::time::Instant::now() < deadline, "{task:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    worker.shutdown().await;
    assert_eq!(task.state, TaskState::Error, "{task:?}");
    let charges = instances(&task.steps, "charge");
    assert_eq!(charges[1].state, StepState::Error);
    assert_eq!(
        charges[1].last_error.as_ref().unwrap().message(),
        "line 1 has a negative amount"
    );
    assert_eq!(charges[0].state, StepState::Complete);
    // The window goes on past the failure; the group waits for it.
    assert_eq!(charges[2].state, StepState::Complete);
    assert_eq!(charges[3].state, StepState::Complete);
    let group = task
        .steps
        .iter()
        .find(|s| s.name == "charge" && s.item_index.is_none())
        .unwrap();
    assert_eq!(group.state, StepState::InProgress);
    let total = task.steps.iter().find(|s| s.name == "total").unwrap();
    assert_eq!(total.state, StepState::Pending);
    // One item cannot be cancelled (its group would wait for ever)...
    let err = tasker
        .cancel_step(charges[1].step_id, "ops")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cancel the fan-out step"), "{err}");
    // ...nor the group resolved while it runs its items...
    let err = tasker
        .resolve_step(group.step_id, serde_json::json!([]), "ops")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("resolve its unfinished items"),
        "{err}"
    );
    // ...but the failed item can be resolved with its output: the group
    // completes and the join runs with it in its place.
    tasker
        .resolve_step(
            charges[1].step_id,
            serde_json::json!("line 1 waived"),
            "ops",
        )
        .await
        .unwrap();
    let worker = tasker.start_worker();
    let task = tasker.wait_for_task(task.task_id, WAIT).await.unwrap();
    worker.shutdown().await;
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let total = task.steps.iter().find(|s| s.name == "total").unwrap();
    assert_eq!(
        total.output,
        Some(serde_json::json!([
            "line 0: 100 cents",
            "line 1 waived",
            "line 2: 250 cents",
            "line 3: 30 cents"
        ]))
    );
    tasker_tests::assert_legal(&tasker.store().transitions(task.task_id).await.unwrap());
}

async fn cancelling_the_fan_out_step_cancels_its_items<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Invoice>().unwrap())
    })
    .await;
    // Item 1 fails for good; the items after it wait or run.
    let lines: Vec<i64> = std::iter::once(100)
        .chain(std::iter::once(-5))
        .chain((0..20).map(|n| n * 10 + 1))
        .collect();
    let task = tasker
        .run_task(Invoice::request(Order { lines }), WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Error, "{task:?}");
    let group = task
        .steps
        .iter()
        .find(|s| s.name == "charge" && s.item_index.is_none())
        .unwrap();
    tasker.cancel_step(group.step_id, "ops").await.unwrap();
    let task = tasker.task(task.task_id).await.unwrap();
    assert_eq!(task.state, TaskState::Cancelled, "{task:?}");
    for step in &task.steps {
        assert!(step.state.is_finished(), "{step:?}");
    }
    let charges = instances(&task.steps, "charge");
    assert_eq!(charges.len(), 22);
    assert_eq!(charges[1].state, StepState::Cancelled);
    assert!(charges
        .iter()
        .any(|c| c.state == StepState::Cancelled && c.attempts == 0));
    for name in ["charge", "total"] {
        let step = task
            .steps
            .iter()
            .find(|s| s.name == name && s.item_index.is_none())
            .unwrap();
        assert_eq!(step.state, StepState::Cancelled, "{step:?}");
    }
    tasker_tests::assert_legal(&tasker.store().transitions(task.task_id).await.unwrap());
}

/// The step of `steps` named `name` that is not an item.
fn step<'a>(steps: &'a [StepRecord], name: &str) -> &'a StepRecord {
    steps
        .iter()
        .find(|s| s.name == name && s.item_index.is_none())
        .unwrap()
}

async fn collected_item_errors_reach_the_join_and_the_task_completes<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Refunds>().unwrap())
    })
    .await;
    // Failures in the middle and at the end: the last item to finish may
    // be a failure, which then completes the group.
    for lines in [vec![100, -5, 14, 13, 30, -1], vec![-1, -2, -3]] {
        let task = tasker
            .run_task(
                Refunds::request(Refund {
                    lines: lines.clone(),
                    ..Refund::default()
                }),
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(task.state, TaskState::Complete, "{lines:?}: {task:?}");
        let report = step(&task.steps, "report");
        assert_eq!(
            report.output,
            Some(serde_json::json!(refund_report(&lines)))
        );
        let refunds = instances(&task.steps, "refund");
        assert_eq!(refunds.len(), lines.len());
        for (n, (refund, cents)) in refunds.iter().zip(&lines).enumerate() {
            let failed = *cents < 0 || *cents == 13;
            if failed {
                // Ends `error`, with its error as its result.
                assert_eq!(refund.state, StepState::Error, "{refund:?}");
                let error = refund.last_error.clone().unwrap();
                assert_eq!(
                    refund.output,
                    Some(tasker::fan_out::collected_err(&error)),
                    "{refund:?}"
                );
                assert_eq!(refund.attempts, if *cents == 13 { 3 } else { 1 });
            } else {
                assert_eq!(refund.state, StepState::Complete, "{refund:?}");
                assert_eq!(
                    refund.output,
                    Some(serde_json::json!(format!("line {n}: {cents} cents")))
                );
            }
        }
        // The group's output: an `Ok` or an `Err` per item.
        let group: Vec<Result<String, StepError>> =
            serde_json::from_value(step(&task.steps, "refund").output.clone().unwrap()).unwrap();
        assert_eq!(group.len(), lines.len());
        for (entry, cents) in group.iter().zip(&lines) {
            assert_eq!(entry.is_err(), *cents < 0 || *cents == 13, "{entry:?}");
        }
        let transitions = tasker.store().transitions(task.task_id).await.unwrap();
        tasker_tests::assert_legal(&transitions);
        // The task never went to `error`.
        assert!(
            transitions
                .iter()
                .all(|t| t.step_id.is_some() || t.to_state != "error"),
            "{transitions:?}"
        );
        assert!(most_at_once_with_errors(&transitions, &refunds) <= 2);
        // A collected item is final: not retried, not resolved.
        let failed = refunds
            .iter()
            .find(|r| r.state == StepState::Error)
            .unwrap();
        let err = tasker.retry_step(failed.step_id, "ops").await.unwrap_err();
        assert!(
            err.to_string().contains("whose failure is its result"),
            "{err}"
        );
    }
}

/// [`most_at_once`], where an item in `error` is finished too.
fn most_at_once_with_errors(transitions: &[Transition], steps: &[&StepRecord]) -> usize {
    let finished: Vec<Transition> = transitions
        .iter()
        .cloned()
        .map(|mut t| {
            if t.to_state == "error" {
                t.to_state = "complete".to_owned();
            }
            t
        })
        .collect();
    most_at_once(&finished, steps)
}

async fn retrying_a_task_leaves_its_collected_items_alone<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Refunds>().unwrap())
    })
    .await;
    let lines = vec![100, -5, 30];
    let task = tasker
        .run_task(
            Refunds::request(Refund {
                lines: lines.clone(),
                fail_report_once: true,
            }),
            WAIT,
        )
        .await
        .unwrap();
    // The report failed for good: the task is in `error` for it alone.
    assert_eq!(task.state, TaskState::Error, "{task:?}");
    assert_eq!(step(&task.steps, "report").state, StepState::Error);
    let dead = tasker
        .store()
        .dead_letters(&tasker::store::DeadLetterFilter::default())
        .await
        .unwrap();
    let dead: Vec<_> = dead.iter().filter(|d| d.task_id == task.task_id).collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].step, "report");
    let collected = instances(&task.steps, "refund")[1].clone();
    assert_eq!(collected.state, StepState::Error);

    tasker.retry_task(task.task_id, "ops").await.unwrap();
    let worker = tasker.start_worker();
    let task = tasker.wait_for_task(task.task_id, WAIT).await.unwrap();
    worker.shutdown().await;
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(
        step(&task.steps, "report").output,
        Some(serde_json::json!(refund_report(&lines)))
    );
    // The collected item did not run again.
    let after = instances(&task.steps, "refund")[1].clone();
    assert_eq!(after.state, StepState::Error);
    assert_eq!(after.attempts, collected.attempts);
    assert_eq!(after.output, collected.output);
    tasker_tests::assert_legal(&tasker.store().transitions(task.task_id).await.unwrap());
}

/// The store alone, without the engine: an item whose worker died on each
/// of its attempts (its lease expired with none left) is collected with
/// the `LeaseExpired` error when its group collects, and fails the task
/// when it does not.
async fn an_item_out_of_leases_is_collected_or_fails_the_task<S: Store>(store: S) {
    use tasker::fan_out::OnItemError;
    use tasker::store::{ClaimRequest, Completion, HandlerRecord, NewStep, NewTask, Outcome};
    use tasker::{HeadStart, Priority};

    let handler = Refunds::handler();
    let handler_id = store
        .register_handler(&HandlerRecord::of(&handler))
        .await
        .unwrap();
    let new_step = |name: &str, index: u32, parents: Vec<u32>| NewStep {
        name: name.to_owned(),
        index,
        parents,
        max_attempts: 1,
        timeout: None,
        priority: Priority::Normal,
        head_start: HeadStart::NONE,
    };
    let ids = [handler_id];
    let claim = |limit| ClaimRequest {
        handler_ids: &ids,
        limit,
        lease: Duration::from_secs(30),
        worker: "w1",
        limits: &[],
    };
    let done = |step: &tasker::store::ClaimedStep, outcome| Completion {
        step_id: step.step_id,
        attempt: step.attempt,
        outcome,
        worker: "w1".to_owned(),
        duration: Duration::ZERO,
        take_next: None,
        annotations: Vec::new(),
        skip: Vec::new(),
        item_index: step.item_index,
    };
    for policy in [OnItemError::Collect, OnItemError::Fail] {
        let task_id = store
            .create_task(NewTask {
                handler_id,
                context: serde_json::json!({}),
                identity_key: Some(policy.as_str().to_owned()),
                initiator: None,
                source_system: None,
                reason: None,
                tags: Vec::new(),
                priority: Priority::Normal,
                max_execution_time: None,
                steps: vec![
                    new_step("lines", 0, vec![]),
                    new_step("refund", 1, vec![0]),
                    new_step("report", 2, vec![1]),
                ],
            })
            .await
            .unwrap()
            .task_id();
        let items = vec![serde_json::json!(1), serde_json::json!(2)];
        let lines = store.claim_steps(claim(1)).await.unwrap().remove(0);
        store
            .complete_steps(&[done(&lines, Outcome::Complete(serde_json::json!(items)))])
            .await
            .unwrap();
        let group = store.claim_steps(claim(1)).await.unwrap().remove(0);
        assert_eq!((group.name.as_str(), group.item_index), ("refund", None));
        let fanned = Outcome::FanOut {
            source: "lines",
            items,
            concurrency: 2,
            on_item_error: policy,
        };
        assert!(store.complete_steps(&[done(&group, fanned)]).await.unwrap()[0].applied);
        let mut claimed = store.claim_steps(claim(2)).await.unwrap();
        claimed.sort_by_key(|s| s.item_index);
        assert_eq!(claimed.len(), 2);
        let ok = done(
            &claimed[0],
            Outcome::Complete(serde_json::json!("refunded")),
        );
        assert!(store.complete_steps(&[ok]).await.unwrap()[0].applied);
        // The worker holding item 1 dies: its only attempt's lease expires.
        assert_eq!(store.recover_expired(true).await.unwrap(), 1);
        let late = done(
            &claimed[1],
            Outcome::Complete(serde_json::json!("too late")),
        );
        assert!(!store.complete_steps(&[late]).await.unwrap()[0].applied);

        let task = store.task(task_id).await.unwrap();
        let item = instances(&task.steps, "refund")[1].clone();
        assert_eq!(item.state, StepState::Error);
        assert_eq!(item.last_error.as_ref().unwrap().class(), "LeaseExpired");
        let refund = step(&task.steps, "refund");
        let report = step(&task.steps, "report");
        match policy {
            OnItemError::Collect => {
                assert_eq!(task.state, TaskState::InProgress, "{task:?}");
                let error = item.last_error.clone().unwrap();
                assert_eq!(item.output, Some(tasker::fan_out::collected_err(&error)));
                assert_eq!(refund.state, StepState::Complete);
                assert_eq!(
                    refund.output,
                    Some(serde_json::json!([
                        tasker::fan_out::collected_ok(serde_json::json!("refunded")),
                        tasker::fan_out::collected_err(&error),
                    ]))
                );
                assert_eq!(report.state, StepState::Ready);
            }
            OnItemError::Fail => {
                assert_eq!(task.state, TaskState::Error, "{task:?}");
                assert_eq!(item.output, None);
                assert_eq!(refund.state, StepState::InProgress);
                assert_eq!(report.state, StepState::Pending);
            }
        }
        tasker_tests::assert_legal(&store.transitions(task_id).await.unwrap());
        // Nothing left to claim but the report, when it was released.
        let next = store.claim_steps(claim(10)).await.unwrap();
        let names: Vec<_> = next.iter().map(|s| s.name.as_str()).collect();
        match policy {
            OnItemError::Collect => assert_eq!(names, ["report"]),
            OnItemError::Fail => assert!(names.is_empty(), "{names:?}"),
        }
        if let Some(report) = next.first() {
            let finished = done(report, Outcome::Complete(serde_json::json!([])));
            store.complete_steps(&[finished]).await.unwrap();
        }
    }
}

/// A task read through a window of items: the groups and the other steps
/// always, each group counting all its items (and without its output, the
/// list of theirs), the items in the window only; one step read alone.
async fn a_task_is_read_through_a_window_of_its_items<S: Store>(store: S) {
    use tasker::store::{ItemCounts, ItemWindow};
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Refunds>().unwrap())
    })
    .await;
    let lines = vec![100, -5, 14, 13, 30, 1, 2];
    let task = tasker
        .run_task(
            Refunds::request(Refund {
                lines: lines.clone(),
                ..Refund::default()
            }),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let counts = ItemCounts {
        total: 7,
        done: 5,
        failed: 2,
        ..ItemCounts::default()
    };
    // The whole task: every item, the group's output and its counts.
    assert_eq!(instances(&task.steps, "refund").len(), 7);
    assert_eq!(step(&task.steps, "refund").items, Some(counts));
    assert!(step(&task.steps, "refund").output.is_some());
    let windows: [(ItemWindow, &[u32]); 5] = [
        (ItemWindow::first(3), &[0, 1, 2]),
        (
            ItemWindow {
                offset: 5,
                limit: 10,
            },
            &[5, 6],
        ),
        (
            ItemWindow {
                offset: 9,
                limit: 10,
            },
            &[],
        ),
        (ItemWindow::NONE, &[]),
        (
            ItemWindow {
                offset: u32::MAX,
                limit: u32::MAX,
            },
            &[],
        ),
    ];
    for (window, expected) in windows {
        let view = tasker.task_view(task.task_id, window).await.unwrap();
        let group = step(&view.steps, "refund");
        assert_eq!(group.items, Some(counts), "{window:?}");
        assert_eq!(
            group.output, None,
            "{window:?}: the group's list is left out"
        );
        // The other steps, whole.
        for name in ["lines", "report"] {
            assert_eq!(
                step(&view.steps, name).output,
                step(&task.steps, name).output
            );
            assert_eq!(step(&view.steps, name).items, None);
        }
        let shown: Vec<u32> = instances(&view.steps, "refund")
            .iter()
            .map(|s| s.item_index.unwrap())
            .collect();
        assert_eq!(shown, expected, "{window:?}");
    }
    // One step alone: an item, and the group with its counts and output.
    let item = instances(&task.steps, "refund")[3].clone();
    let (task_id, alone) = tasker.step(item.step_id).await.unwrap();
    assert_eq!(task_id, task.task_id);
    assert_eq!((alone.item_index, alone.state), (Some(3), StepState::Error));
    assert_eq!(alone.output, item.output);
    let group = step(&task.steps, "refund");
    let (_, alone) = tasker.step(group.step_id).await.unwrap();
    assert_eq!(alone.items, Some(counts));
    assert_eq!(alone.output, group.output);
    // The task's handler alone (what an authorization check reads).
    assert_eq!(
        tasker.store().handler_of_task(task.task_id).await.unwrap(),
        ("fanout".to_owned(), "refunds".to_owned())
    );
    let no_task = tasker
        .store()
        .handler_of_task(tasker::TaskId(i64::MAX))
        .await
        .unwrap_err();
    assert!(no_task.to_string().contains("does not exist"), "{no_task}");
    let missing = tasker.step(tasker::StepId(i64::MAX)).await.unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

/// The audit trail read through a window: without the items it is the
/// task's and its steps' transitions (the group's own among them), the
/// newest `n` are the tail of the whole trail, in order.
async fn a_task_audit_trail_is_read_through_a_window<S: Store>(store: S) {
    use tasker::store::TransitionWindow;
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Refunds>().unwrap())
    })
    .await;
    let task = tasker
        .run_task(
            Refunds::request(Refund {
                lines: vec![100, -5, 14, 13, 30, 1, 2],
                ..Refund::default()
            }),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let all = tasker.transitions(task.task_id).await.unwrap();
    assert_eq!(
        tasker
            .transitions_window(task.task_id, TransitionWindow::ALL)
            .await
            .unwrap(),
        all
    );
    let items: Vec<_> = instances(&task.steps, "refund")
        .iter()
        .map(|s| s.step_id)
        .collect();
    assert_eq!(items.len(), 7);
    let steps = tasker
        .transitions_window(task.task_id, TransitionWindow::STEPS)
        .await
        .unwrap();
    let expected: Vec<_> = all
        .iter()
        .filter(|t| t.step_id.is_none_or(|s| !items.contains(&s)))
        .cloned()
        .collect();
    assert_eq!(steps, expected);
    assert!(
        steps.len() < all.len(),
        "the items' transitions are left out"
    );
    let group = step(&task.steps, "refund").step_id;
    assert!(steps.iter().any(|t| t.step_id == Some(group)));
    assert!(steps.iter().any(|t| t.step_id.is_none()), "the task's own");
    for n in [0u32, 1, 5, 1_000] {
        let newest = tasker
            .transitions_window(task.task_id, TransitionWindow::ALL.newest(n))
            .await
            .unwrap();
        assert_eq!(
            newest,
            all[all.len().saturating_sub(n as usize)..],
            "newest {n}"
        );
        let newest = tasker
            .transitions_window(task.task_id, TransitionWindow::STEPS.newest(n))
            .await
            .unwrap();
        assert_eq!(
            newest,
            expected[expected.len().saturating_sub(n as usize)..],
            "newest {n} of the steps"
        );
    }
}

/// A source returning more than `MAX_ITEMS` items fails the fan-out for
/// good, with a message saying what to do, and writes no item.
async fn a_fan_out_over_too_many_items_fails_with_what_to_do<S: Store>(store: S) {
    use tasker_tests::handlers::{FanOut, Spread};
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<FanOut>().unwrap())
    })
    .await;
    let task = tasker
        .run_task(
            FanOut::request(Spread {
                items: tasker::fan_out::MAX_ITEMS as u32 + 1,
                item_ms: 0,
                log: std::env::temp_dir()
                    .join("tasker-fanout-too-many.log")
                    .display()
                    .to_string(),
            }),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Error, "{:?}", task.state);
    let group = step(&task.steps, "work");
    assert_eq!(group.state, StepState::Error);
    let error = group.last_error.clone().unwrap();
    assert_eq!(error.class(), tasker::fan_out::INVALID_FAN_OUT);
    assert!(
        error.message().contains("tasker::batch::partitions"),
        "{error}"
    );
    assert!(instances(&task.steps, "work").is_empty());
    assert_eq!(group.items, None);
}

tasker_tests::on_both_stores!(
    a_fan_out_runs_each_item_once_and_the_join_gets_their_outputs,
    sizes_zero_one_and_a_thousand_in_the_store,
    an_item_that_fails_for_good_fails_the_task_and_the_join_waits,
    cancelling_the_fan_out_step_cancels_its_items,
    collected_item_errors_reach_the_join_and_the_task_completes,
    retrying_a_task_leaves_its_collected_items_alone,
    an_item_out_of_leases_is_collected_or_fails_the_task,
    a_task_is_read_through_a_window_of_its_items,
    a_task_audit_trail_is_read_through_a_window,
    a_fan_out_over_too_many_items_fails_with_what_to_do,
);

/// A worker process is SIGKILLed in the middle of a 1,000-item fan-out;
/// another worker takes the items it held over after their lease: every
/// item is recorded exactly once, and the join gets all of them in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_killed_mid_way_records_every_item_once() {
    use tasker_tests::handlers::{FanOut, Spread};
    const ITEMS: u32 = 1_000;
    let (store, db) = tasker_tests::postgres().await;
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let log = std::env::temp_dir().join(format!("tasker-fanout-crash-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let task_id = tasker
        .create_task(FanOut::request(Spread {
            items: ITEMS,
            item_ms: 20,
            log: log.display().to_string(),
        }))
        .await
        .unwrap()
        .task_id();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasker-test-worker"))
        .arg(db.url())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the test worker starts");
    // Kill it once a fifth of the items are done.
    let deadline = std::time::Instant::now() + WAIT;
    let done_at_kill = loop {
        let task = tasker.task(task_id).await.unwrap();
        let done = instances(&task.steps, "work")
            .iter()
            .filter(|s| s.state == StepState::Complete)
            .count();
        if done >= ITEMS as usize / 5 {
            break done;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker process never got a fifth of the way"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    child.kill().await.expect("SIGKILL");
    println!("killed the worker after {done_at_kill} items");
    assert!(
        done_at_kill < ITEMS as usize,
        "the fan-out was not killed mid-way"
    );

    let worker = tasker.start_worker();
    let task = tasker.wait_for_task(task_id, WAIT).await.unwrap();
    worker.shutdown().await;
    assert_eq!(task.state, TaskState::Complete, "{:?}", task.state);
    let sum = task.steps.iter().find(|s| s.name == "sum").unwrap();
    let expected: Vec<u64> = (0..u64::from(ITEMS)).map(|n| n * 2).collect();
    assert_eq!(sum.output, Some(serde_json::json!(expected)));
    // Each item completed once: one `complete` in its audit trail.
    let work = instances(&task.steps, "work");
    assert_eq!(work.len(), ITEMS as usize);
    let transitions = tasker.store().transitions(task_id).await.unwrap();
    tasker_tests::assert_legal(&transitions);
    for item in &work {
        let completions = transitions
            .iter()
            .filter(|t| t.step_id == Some(item.step_id) && t.to_state == "complete")
            .count();
        assert_eq!(completions, 1, "{item:?}");
    }
    // Only the items the killed worker held ran twice (at most the window
    // of 8), and every item ran.
    let runs = std::fs::read_to_string(&log).unwrap();
    let mut counts = vec![0u32; ITEMS as usize];
    for line in runs.lines() {
        counts[line.parse::<usize>().unwrap()] += 1;
    }
    assert!(counts.iter().all(|c| *c >= 1));
    let twice = counts.iter().filter(|c| **c > 1).count();
    println!("{twice} items ran twice");
    assert!(twice <= 8, "{twice} items ran twice");
    assert!(work.iter().filter(|w| w.attempts > 1).count() <= 8);
    let _ = std::fs::remove_file(&log);
}
