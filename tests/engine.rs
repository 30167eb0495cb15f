//! The engine end to end on both stores: one conformance suite, run against
//! PostgreSQL (a fresh database per test) and SQLite.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tasker::prelude::*;
use tasker::store::{Created, Transition};
use tasker::{Error, HeadStart, Priority, StepState, Store, TaskId, TaskRequest, TaskState};
use tasker_tests::assert_legal;
use tasker_tests::handlers::{Attempts, Diamond, Flaky, Job, Script, Seed, SlowJob, Switch};

const WAIT: Duration = Duration::from_secs(20);

fn step_id_of(task: &tasker::store::TaskRecord, name: &str) -> tasker::StepId {
    task.steps.iter().find(|s| s.name == name).unwrap().step_id
}

async fn diamond_runs_in_order_with_outputs<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let worker = tasker.start_worker();
    let id = tasker
        .create_task(Diamond::request(Seed { value: 4 }))
        .await
        .unwrap()
        .task_id();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(task.namespace, "tests");
    assert_eq!(task.name, "diamond");
    assert_eq!(task.version, "1.0.0");
    let outputs: HashMap<&str, i64> = task
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                serde_json::from_value(s.output.clone().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outputs,
        HashMap::from([("a", 4), ("b", 5), ("c", 40), ("d", 45)])
    );
    assert_eq!(task.steps[3].depends_on, ["b", "c"]);
    assert!(task
        .steps
        .iter()
        .all(|s| s.state == StepState::Complete && s.attempts == 1));

    let transitions = tasker.transitions(id).await.unwrap();
    assert_legal(&transitions);
    let seq = |step: &str, to: &str| {
        let step_id = step_id_of(&task, step);
        transitions
            .iter()
            .find(|t| t.step_id == Some(step_id) && t.to_state == to)
            .unwrap_or_else(|| panic!("no {to} transition for {step}"))
            .seq
    };
    assert!(seq("d", "in_progress") > seq("b", "complete"));
    assert!(seq("d", "in_progress") > seq("c", "complete"));
    let task_states: Vec<&str> = transitions
        .iter()
        .filter(|t| t.step_id.is_none())
        .map(|t| t.to_state.as_str())
        .collect();
    assert_eq!(task_states, ["pending", "in_progress", "complete"]);
    let counts = worker.shutdown().await;
    assert_eq!((counts.completed, counts.failed, counts.stale), (4, 0, 0));
}

/// A batch is created as the same requests one by one would be: in order,
/// a repeated identity key (in the batch or already stored) gives the
/// existing task, and every graph is wired as declared.
async fn a_batch_is_created_as_one_by_one<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, flaky_tasker_parts).await;
    let stored = tasker
        .create_task(Diamond::request(Seed { value: 1 }).identity_key("batch-0"))
        .await
        .unwrap();
    let created = tasker
        .create_tasks(vec![
            Diamond::request(Seed { value: 2 }).identity_key("batch-1"),
            Flaky::request(Script {
                key: "batch".into(),
                ..Script::default()
            }),
            Diamond::request(Seed { value: 3 }).identity_key("batch-1"),
            Diamond::request(Seed { value: 4 }).identity_key("batch-0"),
            Diamond::request(Seed { value: 5 }),
        ])
        .await
        .unwrap();
    assert!(matches!(created[0], Created::New(_)));
    assert!(matches!(created[1], Created::New(_)));
    assert_eq!(created[2], Created::Existing(created[0].task_id()));
    assert_eq!(created[3], Created::Existing(stored.task_id()));
    assert!(matches!(created[4], Created::New(_)));
    let ids: Vec<TaskId> = [stored, created[0], created[1], created[4]]
        .iter()
        .map(|c| c.task_id())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids follow the request order: {ids:?}"
    );

    let worker = tasker.start_worker();
    let last = tasker
        .wait_for_task(created[4].task_id(), WAIT)
        .await
        .unwrap();
    assert_eq!(last.state, TaskState::Complete);
    let output = |name: &str| {
        last.steps
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .output
            .clone()
    };
    assert_eq!(
        output("d"),
        Some(json!(5 + 1 + 50)),
        "a -> {{b, c}} -> d wired as declared"
    );
    assert_eq!(last.steps[3].depends_on, ["b", "c"]);
    for id in &ids {
        let task = tasker.wait_for_task(*id, WAIT).await.unwrap();
        assert_eq!(task.state, TaskState::Complete, "task {id}");
        assert_legal(&tasker.transitions(*id).await.unwrap());
    }
    assert_eq!(
        tasker.store().task_counts().await.unwrap(),
        [(TaskState::Complete, 4)]
    );
    worker.shutdown().await;
}

async fn identity_key_is_idempotent<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let request = || Diamond::request(Seed { value: 1 }).identity_key("order-42");
    let first = tasker.create_task(request()).await.unwrap();
    let second = tasker.create_task(request()).await.unwrap();
    assert!(matches!(first, Created::New(_)));
    assert_eq!(second, Created::Existing(first.task_id()));
    assert_eq!(
        tasker.store().task_counts().await.unwrap(),
        [(TaskState::Pending, 1)]
    );
}

async fn bad_input_writes_nothing<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let err = tasker
        .create_task(TaskRequest::new("nope", "diamond", json!({"value": 1})))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("unknown namespace \"nope\""),
        "{err}"
    );
    let err = tasker
        .create_task(TaskRequest::new("tests", "diamnd", json!({"value": 1})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("its handlers are"), "{err}");
    assert!(err.to_string().contains("\"diamond\""), "{err}");
    let err = tasker
        .create_task(TaskRequest::new("tests", "diamond", json!({"value": 1})).with_version("^2"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no version of tests/diamond matches requirement ^2"),
        "{err}"
    );
    let err = tasker
        .create_task(TaskRequest::new(
            "tests",
            "diamond",
            json!({"value": "four"}),
        ))
        .await
        .unwrap_err();
    let Error::Context(context) = &err else {
        panic!("expected a context error, got {err}")
    };
    assert_eq!(context.path, "value");
    assert!(
        err.to_string()
            .contains("invalid type: string \"four\", expected i64"),
        "{err}"
    );
    let err = TaskRequest::from_json(
        r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("malformed task request: EOF while parsing"),
        "{err}"
    );
    let err = TaskRequest::from_json(r#"{"namespace": "tests", "name": "diamond", "contxt": {}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `contxt`"), "{err}");
    assert!(tasker.store().task_counts().await.unwrap().is_empty());
}

fn flaky_tasker_parts<S: Store>(b: tasker::TaskerBuilder<S>) -> tasker::TaskerBuilder<S> {
    b.resource(Arc::new(Attempts::default()))
        .resource(Arc::new(Switch::default()))
}

async fn retries_with_backoff_then_success<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, flaky_tasker_parts).await;
    let worker = tasker.start_worker();
    let script = Script {
        fail_times: 2,
        key: "retry".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(script))
        .await
        .unwrap()
        .task_id();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    let work = &task.steps[0];
    assert_eq!(work.attempts, 3);
    assert_eq!(task.steps[1].output, Some(json!("work took 3 attempt(s)")));
    assert_eq!(
        work.last_error.as_ref().unwrap().message(),
        "planned failure 2"
    );

    let transitions = tasker.transitions(id).await.unwrap();
    assert_legal(&transitions);
    let work_id = work.step_id;
    let of_work: Vec<&Transition> = transitions
        .iter()
        .filter(|t| t.step_id == Some(work_id))
        .collect();
    // ready, (in_progress, ready) x2, in_progress, complete
    let states: Vec<&str> = of_work.iter().map(|t| t.to_state.as_str()).collect();
    assert_eq!(
        states,
        [
            "ready",
            "in_progress",
            "ready",
            "in_progress",
            "ready",
            "in_progress",
            "complete"
        ]
    );
    // Backoff: base 50 ms, doubled, jitter in [d/2, d]; the gap between a
    // failure and the next claim is at least d/2 and not much more than d.
    for (retry, full_ms) in [(2usize, 50i64), (4, 100)] {
        let failed_at = of_work[retry].at;
        let claimed_at = of_work[retry + 1].at;
        let gap = (claimed_at - failed_at).num_milliseconds();
        assert!(
            gap >= full_ms / 2 - 1,
            "retry {retry}: waited {gap} ms, less than {} ms",
            full_ms / 2
        );
        assert!(
            gap <= full_ms + 500,
            "retry {retry}: waited {gap} ms, far beyond {full_ms} ms"
        );
        assert!(of_work[retry]
            .error
            .as_deref()
            .unwrap()
            .contains("planned failure"));
    }
    worker.shutdown().await;
}

/// A retry runs when its backoff is over, not at the worker's next poll:
/// with a 10 s poll (and maintenance every 10 s), two 50 ms retries finish
/// the task well inside the 3 s this test waits.
async fn a_retry_runs_when_due_not_at_the_next_poll<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        flaky_tasker_parts(b).configure(|c| {
            c.poll_interval = Duration::from_secs(10);
            c.lease = Duration::from_secs(30);
            c.backoff = tasker::Backoff {
                base: Duration::from_millis(50),
                cap: Duration::from_millis(50),
                jitter: false,
            };
        })
    })
    .await;
    let worker = tasker.start_worker();
    let script = Script {
        fail_times: 2,
        key: "due".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(script))
        .await
        .unwrap()
        .task_id();
    let task = tasker
        .wait_for_task(id, Duration::from_secs(3))
        .await
        .expect("the retries ran when due, before the next poll");
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(task.steps[0].attempts, 3);
    worker.shutdown().await;
}

async fn retry_after_from_the_error_wins_over_backoff<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, flaky_tasker_parts).await;
    let worker = tasker.start_worker();
    let script = Script {
        fail_times: 1,
        retry_after_ms: Some(600),
        key: "retry_after".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(script))
        .await
        .unwrap()
        .task_id();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    let work_id = task.steps[0].step_id;
    let transitions = tasker.transitions(id).await.unwrap();
    let of_work: Vec<&Transition> = transitions
        .iter()
        .filter(|t| t.step_id == Some(work_id))
        .collect();
    let gap = (of_work[3].at - of_work[2].at).num_milliseconds();
    // The backoff would have been at most 50 ms; the step asked for 600.
    assert!(gap >= 599, "waited only {gap} ms");
    worker.shutdown().await;
}

async fn permanent_error_then_operator_retry<S: Store>(store: S) {
    let switch = Arc::new(Switch::default());
    let tasker = tasker_tests::tasker(store, |b| {
        b.resource(Arc::new(Attempts::default()))
            .resource(Arc::clone(&switch))
    })
    .await;
    let worker = tasker.start_worker();
    let script = Script {
        permanent_until_switched: true,
        key: "permanent".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(script))
        .await
        .unwrap()
        .task_id();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Error);
    let work = &task.steps[0];
    assert_eq!(
        (work.state, work.attempts),
        (StepState::Error, 1),
        "permanent: no retry"
    );
    let error = work.last_error.as_ref().unwrap();
    assert_eq!(
        (error.class(), error.message()),
        ("SwitchOff", "the switch is off")
    );
    assert_eq!(task.steps[1].state, StepState::Pending);

    // Retrying a step that is not in error is refused, naming the state.
    let err = tasker
        .retry_step(task.steps[1].step_id, "ops")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is pending; only a step in `error` can be retried"),
        "{err}"
    );

    switch.0.store(1, Ordering::SeqCst);
    tasker
        .retry_step(work.step_id, "ops@example.com")
        .await
        .unwrap();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(task.steps[0].attempts, 2);
    let transitions = tasker.transitions(id).await.unwrap();
    assert_legal(&transitions);
    assert!(transitions.iter().any(|t| t.to_state == "ready"
        && t.from_state.as_deref() == Some("error")
        && t.actor.as_deref() == Some("ops@example.com")));
    worker.shutdown().await;
}

async fn exhausted_retries_then_operator_retry_task<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, flaky_tasker_parts).await;
    let worker = tasker.start_worker();
    let script = Script {
        fail_times: 5,
        key: "exhausted".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(script))
        .await
        .unwrap()
        .task_id();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Error);
    // retry_limit = 3: four attempts.
    assert_eq!(
        (task.steps[0].state, task.steps[0].attempts),
        (StepState::Error, 4)
    );
    assert_eq!(
        task.steps[0].last_error.as_ref().unwrap().message(),
        "planned failure 4"
    );

    let err = tasker
        .retry_task(TaskId(id.0 + 1000), "ops")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("task {} does not exist", id.0 + 1000)
    );
    tasker.retry_task(id, "ops").await.unwrap();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(
        task.steps[0].attempts, 6,
        "two more attempts: the fifth fails, the sixth succeeds"
    );
    assert_legal(&tasker.transitions(id).await.unwrap());
    let err = tasker.retry_task(id, "ops").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("is complete; only a task in `error` can be retried"),
        "{err}"
    );
    worker.shutdown().await;
}

async fn cancel_discards_the_running_attempt<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, flaky_tasker_parts).await;
    let worker = tasker.start_worker();
    let script = Script {
        sleep_ms: 600,
        key: "cancel".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(script))
        .await
        .unwrap()
        .task_id();
    // Wait until the slow step runs, then cancel.
    let deadline = tokio::time::Instant::now() + WAIT;
    while tasker.task(id).await.unwrap().steps[0].state != StepState::InProgress {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tasker.cancel_task(id, "ops").await.unwrap();
    let counts = worker.shutdown().await;
    assert_eq!(
        counts.stale, 1,
        "the finished attempt's result is discarded"
    );
    let task = tasker.task(id).await.unwrap();
    assert_eq!(task.state, TaskState::Cancelled);
    assert!(task.steps.iter().all(|s| s.state == StepState::Cancelled));
    assert_eq!(task.steps[0].output, None);
    assert_legal(&tasker.transitions(id).await.unwrap());
    let err = tasker.cancel_task(id, "ops").await.unwrap_err();
    assert!(
        matches!(&err, tasker::Error::Store(tasker::StoreError::Conflict { what: "task", id: i, state, .. })
            if *i == id.0 && state == "cancelled"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("is cancelled; only an unfinished task can be cancelled"),
        "{err}"
    );
}

async fn cancelling_a_step_cancels_what_follows_and_ends_the_task_cancelled<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, flaky_tasker_parts).await;
    let worker = tasker.start_worker();
    // While `work` runs, cancel `after`: `work` still completes, then the
    // task ends cancelled instead of complete.
    let script = Script {
        sleep_ms: 400,
        key: "cancel-step".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(script))
        .await
        .unwrap()
        .task_id();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tasker.task(id).await.unwrap().steps[0].state != StepState::InProgress {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let task = tasker.task(id).await.unwrap();
    tasker
        .cancel_step(task.steps[1].step_id, "ops")
        .await
        .unwrap();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Cancelled, "{task:?}");
    assert_eq!(task.steps[0].state, StepState::Complete);
    assert_eq!(task.steps[1].state, StepState::Cancelled);
    assert_legal(&tasker.transitions(id).await.unwrap());

    // Cancelling the first step cancels both; nothing is left to run.
    let permanent = Script {
        permanent_until_switched: true,
        key: "cancel-step-2".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(permanent))
        .await
        .unwrap()
        .task_id();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Error);
    tasker
        .cancel_step(task.steps[0].step_id, "ops")
        .await
        .unwrap();
    let task = tasker.task(id).await.unwrap();
    assert_eq!(task.state, TaskState::Cancelled);
    assert!(task.steps.iter().all(|s| s.state == StepState::Cancelled));
    let err = tasker
        .cancel_step(task.steps[0].step_id, "ops")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("can no longer be cancelled"),
        "{err}"
    );
    assert_legal(&tasker.transitions(id).await.unwrap());
    worker.shutdown().await;
}

async fn resolving_a_task_by_hand_finishes_it<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, flaky_tasker_parts).await;
    let worker = tasker.start_worker();
    let script = Script {
        permanent_until_switched: true,
        key: "resolve-task".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(script))
        .await
        .unwrap()
        .task_id();
    assert_eq!(
        tasker.wait_for_task(id, WAIT).await.unwrap().state,
        TaskState::Error
    );
    tasker.resolve_task(id, "ops").await.unwrap();
    let task = tasker.task(id).await.unwrap();
    assert_eq!(task.state, TaskState::ResolvedManually);
    assert!(
        task.steps
            .iter()
            .all(|s| s.state == StepState::ResolvedManually),
        "{task:?}"
    );
    assert_legal(&tasker.transitions(id).await.unwrap());
    let err = tasker.resolve_task(id, "ops").await.unwrap_err();
    assert!(
        matches!(&err, tasker::Error::Store(tasker::StoreError::Conflict { what: "task", state, .. })
            if state == "resolved_manually"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("is resolved_manually; only an unfinished task can be resolved"),
        "{err}"
    );
    worker.shutdown().await;
}

async fn resolve_by_hand_releases_children<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, flaky_tasker_parts).await;
    let worker = tasker.start_worker();
    let script = Script {
        permanent_until_switched: true,
        key: "resolve".into(),
        ..Script::default()
    };
    let id = tasker
        .create_task(Flaky::request(script))
        .await
        .unwrap()
        .task_id();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Error);
    tasker
        .resolve_step(task.steps[0].step_id, json!(7), "ops")
        .await
        .unwrap();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(task.steps[0].state, StepState::ResolvedManually);
    assert_eq!(task.steps[1].output, Some(json!("work took 7 attempt(s)")));
    assert_legal(&tasker.transitions(id).await.unwrap());
    worker.shutdown().await;
}

async fn graceful_shutdown_drains_in_flight_steps<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let worker = tasker.start_worker();
    let id = tasker
        .create_task(SlowJob::request(Job { sleep_ms: 300 }))
        .await
        .unwrap()
        .task_id();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tasker.task(id).await.unwrap().steps[0].state != StepState::InProgress {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let counts = worker.shutdown().await;
    assert_eq!(
        counts.completed, 1,
        "the running step finished and was recorded"
    );
    let task = tasker.task(id).await.unwrap();
    assert_eq!(task.steps[0].state, StepState::Complete);
    assert_eq!(
        task.steps[1].state,
        StepState::Ready,
        "nothing new was claimed after shutdown"
    );
}

async fn startup_refuses_unknown_and_changed_handlers<S: Store>(store: S) {
    use tasker::store::{HandlerRecord, NewStep, NewTask};
    // Tasks of a handler this binary does not have, and of a changed shape.
    for (name, fingerprint) in [("retired", "0000"), ("diamond", "ffff")] {
        let handler_id = store
            .register_handler(&HandlerRecord {
                namespace: "tests".into(),
                name: name.into(),
                version: "1.0.0".into(),
                fingerprint: fingerprint.into(),
                description: String::new(),
                steps: vec!["only".into()],
            })
            .await
            .unwrap();
        store
            .create_task(NewTask {
                handler_id,
                context: json!({"value": 1}),
                identity_key: None,
                initiator: None,
                source_system: None,
                reason: None,
                tags: vec![],
                priority: Priority::Normal,
                max_execution_time: None,
                steps: vec![NewStep {
                    name: "only".into(),
                    index: 0,
                    parents: vec![],
                    max_attempts: 1,
                    timeout: None,
                    priority: Priority::Normal,
                    head_start: HeadStart::NONE,
                }],
            })
            .await
            .unwrap();
    }
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let refused = &tasker.startup_report().refused;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[0]
            .reason
            .contains("tests/diamond@1.0.0 has changed shape"),
        "{}",
        refused[0].reason
    );
    assert!(refused[0].reason.contains("ffff"), "{}", refused[0].reason);
    assert_eq!(
        refused[1].reason,
        "handler tests/retired@1.0.0 is not linked into this binary"
    );
    // The worker leaves them alone.
    let worker = tasker.start_worker();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(worker.shutdown().await.claimed, 0);
    assert_eq!(
        tasker.store().task_counts().await.unwrap(),
        [(TaskState::Pending, 2)]
    );
}

/// A diamond task `a -> {b, c} -> d` as the store takes it, under
/// `identity_key`.
fn diamond_task(handler_id: i64, key: &str, context: serde_json::Value) -> tasker::store::NewTask {
    tasker::store::NewTask {
        handler_id,
        context,
        identity_key: Some(key.to_owned()),
        initiator: None,
        source_system: None,
        reason: None,
        tags: Vec::new(),
        priority: Priority::Normal,
        max_execution_time: None,
        steps: [
            ("a", vec![]),
            ("b", vec![0]),
            ("c", vec![0]),
            ("d", vec![1, 2]),
        ]
        .into_iter()
        .enumerate()
        .map(|(index, (name, parents))| tasker::store::NewStep {
            name: name.to_owned(),
            index: index as u32,
            parents,
            max_attempts: 3,
            timeout: None,
            priority: Priority::Normal,
            head_start: HeadStart::NONE,
        })
        .collect(),
    }
}

/// A claim by worker `w1` of up to `limit` steps of `handler_ids`.
fn claim_by_w1(handler_ids: &[i64], limit: u32) -> tasker::store::ClaimRequest<'_> {
    tasker::store::ClaimRequest {
        handler_ids,
        limit,
        lease: Duration::from_secs(30),
        worker: "w1",
        limits: &[],
    }
}

/// `step`'s success with `output`, recorded by worker `w1`.
fn success(
    step: &tasker::store::ClaimedStep,
    output: serde_json::Value,
) -> tasker::store::Completion {
    tasker::store::Completion {
        skip: vec![],
        item_index: None,
        step_id: step.step_id,
        attempt: step.attempt,
        outcome: tasker::store::Outcome::Complete(output),
        worker: "w1".to_owned(),
        duration: Duration::from_millis(1),
        take_next: None,
        annotations: vec![],
    }
}

/// What the store itself reports (not only what it stores), step by step
/// through a diamond: claims, releases, claim on release, stale
/// completions, retries, and the task's final state when it completes,
/// fails, or ends with a cancelled step.
async fn the_store_reports_what_it_did<S: Store>(store: S) {
    use tasker::store::{Completion, HandlerRecord, OperatorAction, Outcome};
    let handler = Diamond::handler();
    let handler_id = store
        .register_handler(&HandlerRecord::of(&handler))
        .await
        .unwrap();
    let new_task = |key: &str| diamond_task(handler_id, key, json!({ "value": 1 }));
    let ids = [handler_id];
    let claim = |limit| claim_by_w1(&ids, limit);
    let done = success;
    let note = |kind: &str, value: serde_json::Value| tasker::Annotation {
        annotation_type: kind.to_owned(),
        annotation: value,
    };

    // Creation, idempotent.
    let created = store.create_task(new_task("t1")).await.unwrap();
    assert!(matches!(created, Created::New(_)));
    assert_eq!(
        store.create_task(new_task("t1")).await.unwrap(),
        Created::Existing(created.task_id())
    );
    // The root, starting the task.
    let claimed = store.claim_steps(claim(10)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let a = &claimed[0];
    assert_eq!((a.name.as_str(), a.attempt, a.task_started), ("a", 1, true));
    assert_eq!(a.context, json!({ "value": 1 }));
    assert!(a.unreadable.is_none());
    let reported = store
        .complete_steps(&[Completion {
            skip: vec![],
            item_index: None,
            annotations: vec![
                note("source", json!("web")),
                note("risk", json!({"score": 7})),
            ],
            ..done(a, json!(2))
        }])
        .await
        .unwrap();
    assert_eq!(
        (
            reported[0].applied,
            reported[0].released,
            reported[0].task_state
        ),
        (true, 2, None)
    );
    assert!(reported[0].next.is_none());
    // A stale completion of the same attempt is refused, and writes none
    // of its annotations.
    let stale = store
        .complete_steps(&[Completion {
            skip: vec![],
            item_index: None,
            annotations: vec![note("stale", json!(true))],
            ..done(a, json!(3))
        }])
        .await
        .unwrap();
    assert!(!stale[0].applied);
    // Both branches; one retries, one completes without releasing `d`.
    let mut branches = store.claim_steps(claim(10)).await.unwrap();
    branches.sort_by_key(|s| s.index);
    assert_eq!(branches.len(), 2);
    assert!(branches.iter().all(|s| !s.task_started));
    assert_eq!(branches[0].inputs, vec![("a".to_owned(), json!(2))]);
    let (b, c) = (&branches[0], &branches[1]);
    let retry = Completion {
        skip: vec![],
        item_index: None,
        outcome: Outcome::Retry {
            error: StepError::retryable("again"),
            delay: Duration::ZERO,
        },
        ..done(b, json!(null))
    };
    // A retry's annotations are not written (the engine sends none; the
    // store writes only those of applied successes).
    let retry = Completion {
        skip: vec![],
        item_index: None,
        annotations: vec![note("retried", json!(1))],
        ..retry
    };
    let reported = store
        .complete_steps(&[
            retry,
            Completion {
                skip: vec![],
                item_index: None,
                annotations: vec![note("source", json!("batch"))],
                ..done(c, json!(30))
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        reported
            .iter()
            .map(|r| (r.applied, r.released, r.task_state))
            .collect::<Vec<_>>(),
        [(true, 0, None), (true, 0, None)]
    );
    // The retried branch, taking the join along (claim on release).
    let again = store.claim_steps(claim(10)).await.unwrap();
    assert_eq!((again[0].name.as_str(), again[0].attempt), ("b", 2));
    let reported = store
        .complete_steps(&[Completion {
            skip: vec![],
            item_index: None,
            take_next: Some(Duration::from_secs(30)),
            ..done(&again[0], json!(3))
        }])
        .await
        .unwrap();
    let d = reported[0]
        .next
        .clone()
        .expect("the join, claimed on release");
    assert_eq!(
        (reported[0].released, d.name.as_str(), d.attempt),
        (0, "d", 1)
    );
    let mut inputs = d.inputs.clone();
    inputs.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        inputs,
        vec![("b".to_owned(), json!(3)), ("c".to_owned(), json!(30))]
    );
    let reported = store.complete_steps(&[done(&d, json!(33))]).await.unwrap();
    assert_eq!(reported[0].task_state, Some(TaskState::Complete));
    let t1 = created.task_id();
    let notes: Vec<_> = store
        .task(t1)
        .await
        .unwrap()
        .annotations
        .into_iter()
        .map(|a| (a.annotation_type, a.step, a.annotation))
        .collect();
    assert_eq!(
        notes,
        [
            ("source".to_owned(), Some("a".to_owned()), json!("web")),
            ("risk".to_owned(), Some("a".to_owned()), json!({"score": 7})),
            ("source".to_owned(), Some("c".to_owned()), json!("batch")),
        ]
    );

    // A task whose last step completes after another was cancelled is
    // reported cancelled.
    let t2 = store.create_task(new_task("t2")).await.unwrap().task_id();
    let a = store.claim_steps(claim(1)).await.unwrap().remove(0);
    let c_id = store.task(t2).await.unwrap().steps[2].step_id;
    store
        .operator_action(OperatorAction::CancelStep(c_id), "ops")
        .await
        .unwrap();
    let reported = store.complete_steps(&[done(&a, json!(2))]).await.unwrap();
    assert_eq!((reported[0].released, reported[0].task_state), (1, None));
    let b = store.claim_steps(claim(1)).await.unwrap().remove(0);
    let reported = store.complete_steps(&[done(&b, json!(3))]).await.unwrap();
    assert_eq!(reported[0].task_state, Some(TaskState::Cancelled));
    assert_eq!(store.task(t2).await.unwrap().state, TaskState::Cancelled);

    // A permanent failure is reported as the task's error.
    let t3 = store.create_task(new_task("t3")).await.unwrap().task_id();
    let a = store.claim_steps(claim(1)).await.unwrap().remove(0);
    let reported = store
        .complete_steps(&[Completion {
            skip: vec![],
            item_index: None,
            outcome: Outcome::Fail(StepError::permanent("no")),
            ..done(&a, json!(null))
        }])
        .await
        .unwrap();
    assert_eq!(reported[0].task_state, Some(TaskState::Error));
    // Cancelling its only failed step leaves nothing failed: the task is
    // finished (cancelled), on both stores.
    store
        .operator_action(OperatorAction::CancelStep(a.step_id), "ops")
        .await
        .unwrap();
    assert_eq!(store.task(t3).await.unwrap().state, TaskState::Cancelled);
    assert_legal(&store.transitions(t3).await.unwrap());

    // A branch fails while the other runs; cancelling the failed branch
    // takes the task out of `error`, and the running branch then finishes
    // it (cancelled, since a step was cancelled).
    let t4 = store.create_task(new_task("t4")).await.unwrap().task_id();
    let a = store.claim_steps(claim(1)).await.unwrap().remove(0);
    store.complete_steps(&[done(&a, json!(2))]).await.unwrap();
    let mut branches = store.claim_steps(claim(2)).await.unwrap();
    branches.sort_by_key(|s| s.index);
    let reported = store
        .complete_steps(&[Completion {
            skip: vec![],
            item_index: None,
            outcome: Outcome::Fail(StepError::permanent("no")),
            ..done(&branches[0], json!(null))
        }])
        .await
        .unwrap();
    assert_eq!(reported[0].task_state, Some(TaskState::Error));
    store
        .operator_action(OperatorAction::CancelStep(branches[0].step_id), "ops")
        .await
        .unwrap();
    assert_eq!(store.task(t4).await.unwrap().state, TaskState::InProgress);
    let reported = store
        .complete_steps(&[done(&branches[1], json!(30))])
        .await
        .unwrap();
    assert_eq!(reported[0].task_state, Some(TaskState::Cancelled));
    assert_legal(&store.transitions(t4).await.unwrap());

    // Tasks found by annotation type.
    let with = |kind: Option<&str>| tasker::store::TaskFilter {
        annotation_type: kind.map(str::to_owned),
        limit: 10,
        ..Default::default()
    };
    let ids = |tasks: Vec<tasker::store::TaskRecord>| -> Vec<_> {
        tasks.iter().map(|t| t.task_id).collect()
    };
    assert_eq!(
        ids(store.tasks(&with(Some("risk"))).await.unwrap()),
        [created.task_id()]
    );
    assert!(store.tasks(&with(Some("stale"))).await.unwrap().is_empty());
    assert!(store
        .tasks(&with(Some("retried")))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.tasks(&with(None)).await.unwrap().len(), 4);
    assert!(store.task(t2).await.unwrap().annotations.is_empty());
}

/// Purge deletes exactly what its filter names (state, age, handler), with
/// steps and audit rows, in batches, never a task still running; the dead
/// letters are the failed steps of failed tasks, filtered by class, handler
/// and time.
async fn purge_and_dead_letters_name_exactly_their_tasks<S: Store>(store: S) {
    use tasker::store::{DeadLetterFilter, PurgeFilter};
    let tasker = tasker_tests::tasker(store, flaky_tasker_parts).await;
    let worker = tasker.start_worker();
    let run = |request| async { tasker.run_task(request, WAIT).await.unwrap() };
    let diamond = run(Diamond::request(Seed { value: 1 })).await;
    let ok = run(Flaky::request(Script {
        key: "purge-ok".into(),
        ..Script::default()
    }))
    .await;
    let failed = run(Flaky::request(Script {
        permanent_until_switched: true,
        key: "purge-failed".into(),
        ..Script::default()
    }))
    .await;
    assert_eq!(
        (diamond.state, ok.state, failed.state),
        (TaskState::Complete, TaskState::Complete, TaskState::Error)
    );
    let running = tasker
        .create_task(SlowJob::request(Job { sleep_ms: 1500 }))
        .await
        .unwrap()
        .task_id();

    // Dead letters: the one failed step, by every filter.
    let letters = tasker
        .store()
        .dead_letters(&DeadLetterFilter::default())
        .await
        .unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        (letters[0].task_id, letters[0].step.as_str()),
        (failed.task_id, "work")
    );
    assert_eq!(letters[0].error.as_ref().unwrap().class(), "SwitchOff");
    let count = |filter: DeadLetterFilter| {
        let store = tasker.store();
        async move { store.dead_letters(&filter).await.unwrap().len() }
    };
    let by_class = |class: &str| DeadLetterFilter {
        error_class: Some(class.into()),
        ..DeadLetterFilter::default()
    };
    assert_eq!(count(by_class("SwitchOff")).await, 1);
    assert_eq!(count(by_class("Other")).await, 0);
    assert_eq!(
        count(DeadLetterFilter {
            name: Some("diamond".into()),
            ..DeadLetterFilter::default()
        })
        .await,
        0
    );
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    assert_eq!(
        count(DeadLetterFilter {
            since: Some(later),
            ..DeadLetterFilter::default()
        })
        .await,
        0
    );

    let purge = |states: Vec<TaskState>, before, name: Option<&str>, batch| PurgeFilter {
        states,
        finished_before: before,
        namespace: None,
        name: name.map(str::to_owned),
        batch,
    };
    let soon = chrono::Utc::now() + chrono::Duration::seconds(5);
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    // Unfinished states are refused before anything is read.
    let err = tasker
        .purge(&purge(vec![TaskState::InProgress], soon, None, 10))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
    // A dry run counts what a purge would take, and deletes nothing.
    let everything = purge(vec![TaskState::Complete, TaskState::Error], soon, None, 1);
    assert_eq!(
        tasker
            .store()
            .count_purgeable(&everything, 100)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        tasker
            .store()
            .count_purgeable(&everything, 2)
            .await
            .unwrap(),
        2,
        "capped"
    );
    assert_eq!(
        tasker.task(diamond.task_id).await.unwrap().state,
        TaskState::Complete
    );
    // Too recent: nothing.
    assert_eq!(
        tasker
            .purge(&purge(vec![TaskState::Complete], hour_ago, None, 10))
            .await
            .unwrap(),
        0
    );
    // One handler's complete tasks.
    assert_eq!(
        tasker
            .purge(&purge(vec![TaskState::Complete], soon, Some("diamond"), 10))
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        tasker.task(diamond.task_id).await.unwrap_err(),
        Error::Store(tasker::StoreError::NotFound { .. })
    ));
    assert!(tasker
        .transitions(diamond.task_id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        tasker.task(ok.task_id).await.unwrap().state,
        TaskState::Complete
    );
    // The rest, one task per batch: the complete one and the failed one,
    // never the running one.
    assert_eq!(
        tasker
            .purge(&purge(
                vec![TaskState::Complete, TaskState::Error],
                soon,
                None,
                1
            ))
            .await
            .unwrap(),
        2
    );
    assert!(tasker.task(ok.task_id).await.is_err());
    assert!(tasker.task(failed.task_id).await.is_err());
    assert!(tasker
        .store()
        .dead_letters(&DeadLetterFilter::default())
        .await
        .unwrap()
        .is_empty());
    let finished = tasker.wait_for_task(running, WAIT).await.unwrap();
    assert_eq!(
        finished.state,
        TaskState::Complete,
        "the running task was left alone"
    );
    // The store runs on as before.
    assert_eq!(
        run(Diamond::request(Seed { value: 2 })).await.state,
        TaskState::Complete
    );
    worker.shutdown().await;
}

/// A retention policy purges in the background what its rules name, while
/// the worker runs, and nothing else.
async fn a_retention_policy_purges_in_the_background<S: Store>(store: S) {
    let policy = tasker::RetentionPolicy {
        every: Duration::from_millis(50),
        batch: 2,
        ..tasker::RetentionPolicy::default()
    }
    .keep(&[TaskState::Complete], Duration::ZERO);
    let tasker = tasker_tests::tasker(store, |b| {
        flaky_tasker_parts(b).configure(|c| c.retention = Some(policy))
    })
    .await;
    let worker = tasker.start_worker();
    let failed = tasker
        .run_task(
            Flaky::request(Script {
                permanent_until_switched: true,
                key: "retention-failed".into(),
                ..Script::default()
            }),
            WAIT,
        )
        .await
        .unwrap();
    let mut complete = Vec::new();
    for value in 0..5 {
        let created = tasker
            .create_task(Diamond::request(Seed { value }))
            .await
            .unwrap();
        complete.push(created.task_id());
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut left = 0;
        for id in &complete {
            if tasker.task(*id).await.is_ok() {
                left += 1;
            }
        }
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} complete tasks were never purged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        tasker.task(failed.task_id).await.unwrap().state,
        TaskState::Error,
        "the policy names complete tasks only"
    );
    worker.shutdown().await;
}

/// A context that fits its type but not the handler's `validate` is
/// refused with every violation, and nothing is written.
async fn a_context_out_of_bounds_is_refused_with_its_paths<S: Store>(store: S) {
    use tasker_tests::handlers::{Bounded, Quantity};
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(tasker::Registry::new().with::<Bounded>().unwrap())
    })
    .await;
    let error = tasker
        .create_task(Bounded::request(Quantity {
            count: 0,
            label: "  ".into(),
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(error, tasker::Error::InvalidContext { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the task context is invalid: `count` is 0; give 1 to 1000; `label` must not be blank"
    );
    assert!(tasker.tasks(&Default::default()).await.unwrap().is_empty());
    let task = tasker
        .run_task(
            Bounded::request(Quantity {
                count: 21,
                label: "ok".into(),
            }),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(task.steps[0].output, Some(json!(42)));
}

/// Completions recorded in batches of every size the engine sends, on
/// either side of PostgreSQL's statements sized for their batch (up to
/// 32): each reports what it did, a completion that asks for a released
/// child gets it with its inputs, and every task ends complete.
async fn every_batch_size_records_alike<S: Store>(store: S) {
    use tasker::store::{ClaimedStep, Completion, HandlerRecord};
    let handler = Diamond::handler();
    let handler_id = store
        .register_handler(&HandlerRecord::of(&handler))
        .await
        .unwrap();
    const TASKS: usize = 80;
    for key in 0..TASKS {
        store
            .create_task(diamond_task(
                handler_id,
                &format!("k{key}"),
                json!({ "value": key }),
            ))
            .await
            .unwrap();
    }
    let ids = [handler_id];
    let claim = |limit| claim_by_w1(&ids, limit);
    let done = |step: &ClaimedStep, take: bool| Completion {
        take_next: take.then_some(Duration::from_secs(30)),
        ..success(step, json!({ "task": step.task_id.0, "step": step.name }))
    };
    let roots = store.claim_steps(claim(TASKS as u32)).await.unwrap();
    assert_eq!(roots.len(), TASKS);
    let mut taken = Vec::new();
    let mut rest = roots.as_slice();
    for size in [1, 2, 5, 32, 33, 7] {
        let (batch, after) = rest.split_at(size);
        rest = after;
        let completions: Vec<Completion> = batch
            .iter()
            .enumerate()
            .map(|(i, step)| done(step, i % 2 == 0))
            .collect();
        let reported = store.complete_steps(&completions).await.unwrap();
        assert_eq!(reported.len(), size, "one report per completion");
        for ((i, step), report) in batch.iter().enumerate().zip(reported) {
            assert!(report.applied, "batch of {size}, #{i}");
            assert_eq!(report.task_state, None);
            if i % 2 == 0 {
                let next = report.next.expect("the child asked for");
                assert_eq!(next.task_id, step.task_id);
                assert!(["b", "c"].contains(&next.name.as_str()), "{}", next.name);
                assert_eq!(
                    next.inputs,
                    vec![(
                        "a".to_owned(),
                        json!({ "task": step.task_id.0, "step": "a" })
                    )]
                );
                assert_eq!(report.released, 1, "the other branch is ready");
                taken.push(next);
            } else {
                assert!(report.next.is_none());
                assert_eq!(report.released, 2, "batch of {size}, #{i}");
            }
        }
    }
    assert!(rest.is_empty());
    // The branches nobody took, then every branch in two batches (both
    // branches of a task in one batch: a join released once, counted on
    // one of them), the second past the sized statements, then the joins,
    // each finishing its task.
    let mut branches = store.claim_steps(claim(1000)).await.unwrap();
    assert_eq!(branches.len(), 2 * TASKS - taken.len());
    branches.extend(taken);
    branches.sort_by_key(|s| s.step_id.0);
    let mut released = 0;
    for batch in [&branches[..32], &branches[32..]] {
        let completions: Vec<Completion> = batch.iter().map(|s| done(s, false)).collect();
        let reported = store.complete_steps(&completions).await.unwrap();
        assert!(reported.iter().all(|r| r.applied && r.next.is_none()));
        released += reported.iter().map(|r| r.released).sum::<u32>();
    }
    assert_eq!(released, TASKS as u32, "each join released once");
    let joins = store.claim_steps(claim(1000)).await.unwrap();
    assert_eq!(joins.len(), TASKS);
    for chunk in joins.chunks(32) {
        let completions: Vec<Completion> = chunk.iter().map(|s| done(s, true)).collect();
        let reported = store.complete_steps(&completions).await.unwrap();
        assert!(reported
            .iter()
            .all(|r| r.applied && r.next.is_none() && r.task_state == Some(TaskState::Complete)));
    }
}

tasker_tests::on_both_stores!(
    a_context_out_of_bounds_is_refused_with_its_paths,
    the_store_reports_what_it_did,
    every_batch_size_records_alike,
    diamond_runs_in_order_with_outputs,
    identity_key_is_idempotent,
    a_batch_is_created_as_one_by_one,
    bad_input_writes_nothing,
    retries_with_backoff_then_success,
    a_retry_runs_when_due_not_at_the_next_poll,
    retry_after_from_the_error_wins_over_backoff,
    permanent_error_then_operator_retry,
    exhausted_retries_then_operator_retry_task,
    cancel_discards_the_running_attempt,
    resolve_by_hand_releases_children,
    resolving_a_task_by_hand_finishes_it,
    cancelling_a_step_cancels_what_follows_and_ends_the_task_cancelled,
    graceful_shutdown_drains_in_flight_steps,
    startup_refuses_unknown_and_changed_handlers,
    purge_and_dead_letters_name_exactly_their_tasks,
    a_retention_policy_purges_in_the_background,
);

#[tokio::test]
async fn a_second_process_on_one_sqlite_file_gets_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("tasker-lock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tasker.sqlite");
    let first = tasker_diesel::SqliteStore::open(&path).await.unwrap();
    first.migrate().await.unwrap();
    let err = tasker_diesel::SqliteStore::open(&path).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("is in use by another tasker process"),
        "{err}"
    );
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    drop(first);
    // Once the first is gone, the file opens again.
    let again = tasker_diesel::SqliteStore::open(&path).await.unwrap();
    assert!(again.migrations_current().await.unwrap());
    drop(again);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_example_runs_end_to_end_on_the_embedded_store() {
    use tasker_examples::orders::{
        sample_order, Confirmation, PaymentGateway, ProcessOrder, Warehouse,
    };
    let tasker = tasker_diesel::testing::embedded(|b| {
        b.resource(PaymentGateway::flaky(1))
            .resource(Warehouse::with_stock([("widget", 5), ("gadget", 5)]))
            .configure(|c| c.backoff.base = Duration::from_millis(10))
    })
    .await
    .unwrap();
    let task = tasker
        .run_task(ProcessOrder::request(sample_order(9, "tok_visa")), WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete);
    let charge = task
        .steps
        .iter()
        .find(|s| s.name == "charge_payment")
        .unwrap();
    assert_eq!(
        charge.attempts, 2,
        "one transient gateway failure, then success"
    );
    let confirmation: Confirmation =
        serde_json::from_value(task.steps.last().unwrap().output.clone().unwrap()).unwrap();
    assert_eq!(confirmation.sent_to, "customer9@example.com");
    assert_legal(&tasker.transitions(task.task_id).await.unwrap());
}
