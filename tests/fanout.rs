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

tasker_tests::on_both_stores!(
    a_fan_out_runs_each_item_once_and_the_join_gets_their_outputs,
    sizes_zero_one_and_a_thousand_in_the_store,
    an_item_that_fails_for_good_fails_the_task_and_the_join_waits,
    cancelling_the_fan_out_step_cancels_its_items,
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
