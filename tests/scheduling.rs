//! Priorities, aging, a pluggable claim order and task deadlines, on both
//! stores: what runs first, and what never runs once a deadline passed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tasker::events::{Event, EventFilter, Subscriber, SubscriberError};
use tasker::TaskHandler;
use tasker::{
    ClaimOrder, HeadStart, Priority, QueuedStep, StepState, Store, TaskId, TaskRequest, TaskState,
    Tasker, TaskerBuilder,
};
use tasker_tests::assert_legal;
use tasker_tests::handlers::{Job, Label, Ordered, RunOrder, SlowJob};

const WAIT: Duration = Duration::from_secs(20);

/// One step at a time, claimed one by one, so the run order is the claim
/// order.
fn one_at_a_time<S: Store>(b: TaskerBuilder<S>, order: &Arc<RunOrder>) -> TaskerBuilder<S> {
    b.resource(order.clone()).configure(|c| {
        c.concurrency = 1;
        c.claim_batch = 1;
    })
}

fn labelled(label: &str) -> TaskRequest {
    Ordered::request(Label {
        label: label.into(),
    })
}

/// Creates the requests, then runs a worker until every task finished;
/// returns the labels in the order their steps ran.
async fn run_in_order<S: Store>(
    tasker: &Tasker<S>,
    order: &RunOrder,
    requests: Vec<TaskRequest>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for request in requests {
        ids.push(tasker.create_task(request).await.unwrap().task_id());
    }
    let worker = tasker.start_worker();
    for id in &ids {
        let task = tasker.wait_for_task(*id, WAIT).await.unwrap();
        assert_eq!(task.state, TaskState::Complete, "{task:?}");
    }
    worker.shutdown().await;
    order.labels()
}

async fn higher_priorities_are_claimed_first<S: Store>(store: S) {
    let order = Arc::new(RunOrder::default());
    let tasker = tasker_tests::tasker(store, |b| one_at_a_time(b, &order)).await;
    let mut requests = Vec::new();
    for round in 0..2 {
        for priority in Priority::ALL {
            requests.push(labelled(&format!("{priority}-{round}")).priority(priority));
        }
    }
    // No priority given: the handler's default, `normal`.
    requests.push(labelled("unset-0"));
    let ran = run_in_order(&tasker, &order, requests).await;
    assert_eq!(
        ran,
        [
            "critical-0",
            "critical-1",
            "high-0",
            "high-1",
            "normal-0",
            "normal-1",
            "unset-0",
            "low-0",
            "low-1"
        ],
        "by priority, then by arrival"
    );

    // The store reports what it was given, on the task and its steps.
    let listed = tasker
        .store()
        .tasks(&tasker::store::TaskFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 9);
    for summary in listed {
        let task = tasker.task(summary.task_id).await.unwrap();
        let label: Label = serde_json::from_value(task.context.clone()).unwrap();
        let expected = match label.label.split('-').next().unwrap() {
            "unset" => Priority::Normal,
            other => other.parse().unwrap(),
        };
        assert_eq!(task.priority, expected, "{}", label.label);
        assert_eq!(task.steps[0].priority, expected, "{}", label.label);
        assert_eq!(task.deadline, None);
    }
}

/// With a short aging interval, a `low` step that has waited long enough
/// goes before a `critical` one that has just arrived: priority reorders
/// the queue, it never starves it.
async fn low_priority_ages_instead_of_starving<S: Store>(store: S) {
    let order = Arc::new(RunOrder::default());
    let tasker = tasker_tests::tasker(store, |b| {
        one_at_a_time(b, &order).configure(|c| c.priority_aging = Duration::from_millis(100))
    })
    .await;
    // `old-low` is claimable from created + 100 ms; the later ones from
    // created + 600 ms - 200 ms (critical), - 100 ms (high), + 100 ms (low).
    let old = tasker
        .create_task(labelled("old-low").priority(Priority::Low))
        .await
        .unwrap()
        .task_id();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ran = run_in_order(
        &tasker,
        &order,
        vec![
            labelled("new-low").priority(Priority::Low),
            labelled("new-high").priority(Priority::High),
            labelled("new-critical").priority(Priority::Critical),
        ],
    )
    .await;
    assert_eq!(ran, ["old-low", "new-critical", "new-high", "new-low"]);
    assert_eq!(
        tasker.wait_for_task(old, WAIT).await.unwrap().state,
        TaskState::Complete
    );
}

/// A user's own policy: tasks whose label starts with `vip` go an hour
/// ahead of everything else, whatever their priority.
struct VipFirst;

impl ClaimOrder for VipFirst {
    fn head_start(&self, step: &QueuedStep<'_>) -> HeadStart {
        let vip = step.context["label"]
            .as_str()
            .is_some_and(|l| l.starts_with("vip"));
        if vip {
            HeadStart::ahead(Duration::from_secs(3600))
        } else {
            HeadStart::NONE
        }
    }
}

async fn a_custom_claim_order_replaces_priority_aging<S: Store>(store: S) {
    let order = Arc::new(RunOrder::default());
    let tasker =
        tasker_tests::tasker(store, |b| one_at_a_time(b, &order).claim_order(VipFirst)).await;
    let ran = run_in_order(
        &tasker,
        &order,
        vec![
            labelled("plain-critical").priority(Priority::Critical),
            labelled("vip-low").priority(Priority::Low),
            labelled("plain-low").priority(Priority::Low),
            labelled("vip-normal"),
        ],
    )
    .await;
    assert_eq!(
        ran,
        ["vip-low", "vip-normal", "plain-critical", "plain-low"],
        "the policy alone decides; ties go by arrival"
    );
}

/// Records every event it is sent.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Subscriber for Recorder {
    fn events(&self) -> EventFilter {
        EventFilter::all()
    }

    async fn handle(&self, event: &Event) -> Result<(), SubscriberError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Recorder {
    fn named(&self, task: TaskId, name: &str) -> Vec<Event> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.task_id() == Some(task) && e.name() == name)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, task: TaskId, name: &str) -> Event {
        let until = Instant::now() + WAIT;
        loop {
            if let Some(event) = self.named(task, name).pop() {
                return event;
            }
            assert!(Instant::now() < until, "no {name} for task {task}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn slow(sleep_ms: u64) -> TaskRequest {
    SlowJob::request(Job { sleep_ms })
}

/// A deadline stops what has not started: a running step finishes, a
/// waiting one is failed with `DeadlineExceeded` and never runs, the task
/// ends in `error` with an event that names the steps. An operator retry
/// lifts the deadline and the task runs to its end.
async fn a_deadline_stops_steps_that_have_not_started<S: Store>(store: S) {
    let recorder = Recorder::default();
    let tasker = tasker_tests::tasker(store, |b| {
        b.subscriber(recorder.clone()).configure(|c| {
            c.concurrency = 1;
            c.claim_batch = 1;
            // Maintenance (and so the deadline sweep) runs every lease / 3.
            c.lease = Duration::from_millis(600);
        })
    })
    .await;
    // `busy` holds the only slot for a second; `late` waits behind it and
    // its deadline passes before it could start. `running` has a deadline
    // too, but its first step is already running when it passes.
    let busy = tasker.create_task(slow(1000)).await.unwrap().task_id();
    let worker = tasker.start_worker();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = tasker
        .create_task(slow(0).max_execution_time(Duration::from_millis(200)))
        .await
        .unwrap()
        .task_id();
    let created = tasker.task(late).await.unwrap();
    let deadline = created.deadline.expect("a deadline is set");
    let after = (deadline - created.created_at).num_milliseconds();
    assert!(
        (190..=210).contains(&after),
        "deadline {after} ms after creation"
    );

    let task = tasker.wait_for_task(late, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Error, "{task:?}");
    let work = &task.steps[0];
    assert_eq!(
        (work.state, work.attempts),
        (StepState::Error, 0),
        "never started"
    );
    let error = work.last_error.as_ref().unwrap();
    assert_eq!(error.class(), tasker::store::DEADLINE_EXCEEDED);
    assert!(error.message().contains("max_execution_time"), "{error:?}");
    assert_eq!(task.steps[1].state, StepState::Pending, "{task:?}");
    let event = recorder
        .wait_for(late, tasker::events::names::TASK_DEADLINE_EXCEEDED)
        .await;
    assert_eq!(event.data(), Some(&serde_json::json!(["work"])));
    let failed = recorder
        .wait_for(late, tasker::events::names::TASK_FAILED)
        .await;
    assert_eq!(failed.error_class(), Some(tasker::store::DEADLINE_EXCEEDED));
    assert_eq!(
        tasker.wait_for_task(busy, WAIT).await.unwrap().state,
        TaskState::Complete,
        "a deadline on one task never touches another"
    );
    assert_legal(&tasker.transitions(late).await.unwrap());

    // A retry lifts the deadline: the task runs to its end.
    tasker.retry_task(late, "ops").await.unwrap();
    let task = tasker.wait_for_task(late, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(task.deadline, None);
    assert_eq!(task.steps[0].attempts, 1);
    assert_legal(&tasker.transitions(late).await.unwrap());

    // The deadline passes while the first step runs: it finishes, and the
    // step after it is stopped instead of started.
    let running = tasker
        .create_task(slow(800).max_execution_time(Duration::from_millis(300)))
        .await
        .unwrap()
        .task_id();
    let task = tasker.wait_for_task(running, WAIT).await.unwrap();
    assert_eq!(task.state, TaskState::Error, "{task:?}");
    recorder
        .wait_for(running, tasker::events::names::TASK_DEADLINE_EXCEEDED)
        .await;
    let until = Instant::now() + WAIT;
    let task = loop {
        let task = tasker.task(running).await.unwrap();
        if !task
            .steps
            .iter()
            .any(|s| matches!(s.state, StepState::Ready | StepState::InProgress))
        {
            break task;
        }
        assert!(Instant::now() < until, "{task:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(task.state, TaskState::Error);
    assert_eq!(
        (task.steps[0].state, task.steps[0].output.clone()),
        (StepState::Complete, Some(serde_json::json!(800))),
        "a running step finishes"
    );
    assert_eq!(
        (task.steps[1].state, task.steps[1].attempts),
        (StepState::Error, 0),
        "{task:?}"
    );
    assert_eq!(
        task.steps[1].last_error.as_ref().unwrap().class(),
        tasker::store::DEADLINE_EXCEEDED
    );
    assert_legal(&tasker.transitions(running).await.unwrap());
    worker.shutdown().await;
}

/// JSON requests (the API's, the CLI's) carry both settings; a limit out
/// of range or an unknown priority is refused with what to write.
async fn requests_carry_priority_and_deadline<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let request = TaskRequest::from_json(
        r#"{"namespace": "tests", "name": "ordered", "context": {"label": "x"},
            "priority": "high", "max_execution_time": "90s"}"#,
    )
    .unwrap();
    let id = tasker.create_task(request).await.unwrap().task_id();
    let task = tasker.task(id).await.unwrap();
    assert_eq!(task.priority, Priority::High);
    let after = (task.deadline.unwrap() - task.created_at).num_milliseconds();
    assert!((89_990..=90_010).contains(&after), "{after} ms");

    for (limit, shown) in [
        (Duration::ZERO, "0s"),
        (
            Duration::from_secs(400 * 86_400),
            "1year 1month 4days 7h 26m 24s",
        ),
    ] {
        let err = tasker
            .create_task(labelled("out-of-range").max_execution_time(limit))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid task request: `max_execution_time` is {shown}, out of range: give between 1ms and 366 days"),
        );
    }
    let err = TaskRequest::from_json(
        r#"{"namespace": "tests", "name": "ordered", "context": {}, "priority": "urgent"}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "unknown variant `urgent`, expected one of `low`, `normal`, `high`, `critical`"
        ),
        "{err}"
    );
    let err = TaskRequest::from_json(
        r#"{"namespace": "tests", "name": "ordered", "context": {}, "max_execution_time": "soon"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("invalid duration"), "{err}");
    assert_eq!(
        "urgent".parse::<Priority>().unwrap_err(),
        "unknown priority `urgent`; use low, normal, high or critical"
    );
    assert_eq!(
        tasker
            .store()
            .tasks(&tasker::store::TaskFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1,
        "nothing else written"
    );
}

tasker_tests::on_both_stores!(
    higher_priorities_are_claimed_first,
    low_priority_ages_instead_of_starving,
    a_custom_claim_order_replaces_priority_aging,
    a_deadline_stops_steps_that_have_not_started,
    requests_carry_priority_and_deadline,
);
