//! Events: the exact sequences a subscriber receives, subscriber isolation,
//! custom events, the catalog, and the Prometheus endpoint scraped over
//! HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tasker::events::{Event, EventCategory, EventFilter, Subscriber, SubscriberError};
use tasker::prelude::*;
use tasker::{StepState, TaskId, TaskState, Tasker};
use tasker_tests::handlers::{
    Announcement, Announcer, Attempts, Diamond, Flaky, Script, Seed, Switch,
};

const WAIT: Duration = Duration::from_secs(20);

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
    /// `name` or `name(step)` of every event about `task`, in order.
    fn sequence(&self, task: TaskId) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.task_id() == Some(task))
            .map(|e| match e.step_name() {
                Some(step) => format!("{}({step})", e.name()),
                None => e.name().to_owned(),
            })
            .collect()
    }

    async fn wait_for(&self, task: TaskId, last: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.sequence(task).iter().any(|e| e == last) {
            assert!(
                Instant::now() < deadline,
                "no {last} for task {task}: {:?}",
                self.sequence(task)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One worker running one step at a time, so the sequence is exact.
async fn engine<S: tasker::Store>(store: S, recorder: &Recorder) -> Tasker<S> {
    tasker_tests::tasker(store, |b| {
        b.subscriber(recorder.clone())
            .resource(Arc::new(Attempts::default()))
            .resource(Arc::new(Switch::default()))
            .configure(|c| {
                c.concurrency = 1;
                c.claim_batch = 1;
                c.backoff.base = Duration::from_millis(10);
                c.backoff.jitter = false;
            })
    })
    .await
}

fn script(key: &str, fail_times: u32, sleep_ms: u64) -> Script {
    Script {
        fail_times,
        sleep_ms,
        key: key.into(),
        ..Script::default()
    }
}

const AFTER: [&str; 7] = [
    "workflow.viable_steps_discovered",
    "step.execution_requested(after)",
    "step.started(after)",
    "step.before_handle(after)",
    "step.completed(after)",
    "task.completed",
    "workflow.task_finalized",
];

async fn a_clean_run_publishes_the_exact_sequence<S: tasker::Store>(store: S) {
    let recorder = Recorder::default();
    let tasker = engine(store, &recorder).await;
    let task = tasker
        .run_task(Flaky::request(script("clean", 0, 0)), WAIT)
        .await
        .unwrap();
    recorder
        .wait_for(task.task_id, "workflow.task_finalized")
        .await;
    let mut expected = vec![
        "task.created",
        "task.started",
        "workflow.viable_steps_discovered",
        "step.execution_requested(work)",
        "step.started(work)",
        "step.before_handle(work)",
        "step.completed(work)",
    ];
    expected.extend(AFTER);
    assert_eq!(recorder.sequence(task.task_id), expected);

    // Payloads carry the task, handler, step, attempt and duration.
    let events = recorder.0.lock().unwrap().clone();
    let completed = events
        .iter()
        .find(|e| e.name() == "step.completed")
        .unwrap();
    assert_eq!(completed.namespace(), Some("tests"));
    assert_eq!(completed.handler_name(), Some("flaky"));
    assert_eq!(completed.version(), Some("1.0.0"));
    assert_eq!(completed.attempt(), Some(1));
    assert!(completed.duration().is_some());
    let finalized = events
        .iter()
        .find(|e| e.name() == "workflow.task_finalized")
        .unwrap();
    assert_eq!(finalized.task_state(), Some(TaskState::Complete));
    let discovered = events
        .iter()
        .find(|e| e.name() == "workflow.viable_steps_discovered")
        .unwrap();
    assert_eq!(discovered.count(), Some(1));
    assert_eq!(discovered.data(), Some(&serde_json::json!(["work"])));
    // Start-up and worker events have no task.
    assert!(events
        .iter()
        .any(|e| e.name() == "registry.handler_registered" && e.handler_name() == Some("flaky")));
    assert!(events.iter().any(|e| e.name() == "worker.started"));
}

async fn a_retried_step_publishes_failure_and_backoff<S: tasker::Store>(store: S) {
    let recorder = Recorder::default();
    let tasker = engine(store, &recorder).await;
    let task = tasker
        .run_task(Flaky::request(script("retried", 1, 0)), WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete);
    recorder
        .wait_for(task.task_id, "workflow.task_finalized")
        .await;
    let mut expected = vec![
        "task.created",
        "task.started",
        "workflow.viable_steps_discovered",
        "step.execution_requested(work)",
        "step.started(work)",
        "step.before_handle(work)",
        "step.failed(work)",
        "step.backoff(work)",
        "workflow.viable_steps_discovered",
        "step.execution_requested(work)",
        "step.started(work)",
        "step.before_handle(work)",
        "step.completed(work)",
    ];
    expected.extend(AFTER);
    assert_eq!(recorder.sequence(task.task_id), expected);
    let events = recorder.0.lock().unwrap().clone();
    let failed = events.iter().find(|e| e.name() == "step.failed").unwrap();
    assert_eq!(failed.error_message(), Some("planned failure 1"));
    assert_eq!(failed.error_class(), Some("StepError"));
    let backoff = events.iter().find(|e| e.name() == "step.backoff").unwrap();
    assert_eq!(backoff.delay(), Some(Duration::from_millis(10)));
    // The task's duration runs from its creation: it covers the backoff.
    let completed = events
        .iter()
        .find(|e| e.name() == "task.completed")
        .unwrap();
    let took = completed.duration().expect("task.completed has a duration");
    assert!(took >= Duration::from_millis(10) && took < WAIT, "{took:?}");
}

async fn an_exhausted_step_fails_the_task<S: tasker::Store>(store: S) {
    let recorder = Recorder::default();
    let tasker = engine(store, &recorder).await;
    let task = tasker
        .run_task(Flaky::request(script("exhausted", 10, 0)), WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Error);
    recorder
        .wait_for(task.task_id, "workflow.task_finalized")
        .await;
    let mut expected = vec!["task.created", "task.started"];
    for attempt in 1..=4 {
        expected.extend([
            "workflow.viable_steps_discovered",
            "step.execution_requested(work)",
            "step.started(work)",
            "step.before_handle(work)",
            "step.failed(work)",
        ]);
        if attempt < 4 {
            expected.push("step.backoff(work)");
        }
    }
    expected.extend([
        "step.max_retries_reached(work)",
        "task.failed(work)",
        "workflow.task_finalized",
        "task.bottleneck_detected(work)",
    ]);
    recorder
        .wait_for(task.task_id, "task.bottleneck_detected(work)")
        .await;
    assert_eq!(recorder.sequence(task.task_id), expected);
    let events = recorder.0.lock().unwrap().clone();
    let finalized = events
        .iter()
        .find(|e| e.name() == "workflow.task_finalized")
        .unwrap();
    assert_eq!(finalized.task_state(), Some(TaskState::Error));
    let failed = events.iter().find(|e| e.name() == "task.failed").unwrap();
    assert_eq!(failed.error_message(), Some("planned failure 4"));
    // The failed step holds up `after`: the worst bottleneck.
    let bottleneck = events
        .iter()
        .find(|e| e.name() == "task.bottleneck_detected")
        .unwrap();
    let data = bottleneck.data().unwrap();
    assert_eq!(data["problem"], "error");
    assert_eq!(
        (data["blocked"].as_u64(), data["downstream"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(data["impact_score"].as_f64().unwrap() > 0.0, "{data}");
    assert!(
        ["low", "medium", "high", "critical"].contains(&data["severity"].as_str().unwrap()),
        "{data}"
    );
    let started = events.iter().find(|e| e.name() == "step.started").unwrap();
    assert!(started.worker().is_some_and(|w| !w.is_empty()));
    assert_eq!(started.attempt(), Some(1));
    // Three backoffs of 10, 20 and 40 ms lie between creation and failure.
    let took = failed.duration().expect("task.failed has a duration");
    assert!(took >= Duration::from_millis(70) && took < WAIT, "{took:?}");
    assert_eq!(finalized.duration(), Some(took));
}

async fn a_cancelled_task_publishes_cancellations_and_the_discarded_result<S: tasker::Store>(
    store: S,
) {
    let recorder = Recorder::default();
    let tasker = engine(store, &recorder).await;
    // Created before the worker starts: `task.created` comes from the
    // creating engine after its write, so a worker already running could
    // publish `task.started` first (see the delivery guarantees).
    let id = tasker
        .create_task(Flaky::request(script("cancelled", 0, 500)))
        .await
        .unwrap()
        .task_id();
    let worker = tasker.start_worker();
    recorder.wait_for(id, "step.before_handle(work)").await;
    tasker.cancel_task(id, "ops@example.com").await.unwrap();
    recorder.wait_for(id, "step.result_discarded(work)").await;
    worker.shutdown().await;
    assert_eq!(
        recorder.sequence(id),
        [
            "task.created",
            "task.started",
            "workflow.viable_steps_discovered",
            "step.execution_requested(work)",
            "step.started(work)",
            "step.before_handle(work)",
            "task.cancelled",
            "step.cancelled(work)",
            "step.cancelled(after)",
            "workflow.task_finalized",
            "step.result_discarded(work)",
        ]
    );
    let events = recorder.0.lock().unwrap().clone();
    let cancelled = events
        .iter()
        .find(|e| e.name() == "task.cancelled")
        .unwrap();
    assert_eq!(cancelled.actor(), Some("ops@example.com"));
}

/// Panics on every event.
#[derive(Default)]
struct Panicker;

impl Subscriber for Panicker {
    fn events(&self) -> EventFilter {
        EventFilter::only(["step.*"])
    }

    async fn handle(&self, _event: &Event) -> Result<(), SubscriberError> {
        panic!("this subscriber always panics")
    }
}

/// Takes an hour per event.
#[derive(Default)]
struct Sleeper;

impl Subscriber for Sleeper {
    fn events(&self) -> EventFilter {
        EventFilter::all()
    }

    async fn handle(&self, _event: &Event) -> Result<(), SubscriberError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

/// Fails every event.
#[derive(Default)]
struct Failer;

impl Subscriber for Failer {
    fn events(&self) -> EventFilter {
        EventFilter::only(["task.completed"])
    }

    async fn handle(&self, _event: &Event) -> Result<(), SubscriberError> {
        Err("the alerting service is down".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_subscribers_never_break_or_stall_workflows() {
    let tasker = tasker_diesel::testing::embedded(|b| {
        b.subscriber(Panicker)
            .subscriber(Sleeper)
            .subscriber(Failer)
            .configure(|c| {
                // Long enough for a panic to be reported (a backtrace can take
                // a while), short against the hour-long subscriber.
                c.subscriber_timeout = Duration::from_secs(1);
                c.subscriber_queue = 8;
            })
    })
    .await
    .unwrap();
    let worker = tasker.start_worker();
    let started = Instant::now();
    let mut ids = Vec::new();
    for value in 0..10 {
        ids.push(
            tasker
                .create_task(Diamond::request(Seed { value }))
                .await
                .unwrap()
                .task_id(),
        );
    }
    for id in &ids {
        let task = tasker.wait_for_task(*id, WAIT).await.unwrap();
        assert_eq!(task.state, TaskState::Complete);
    }
    let elapsed = started.elapsed();
    worker.shutdown().await;
    // 40 steps with an hour-long subscriber and a panicking one: done in
    // far less than one stalled delivery (1 s) per event (> 200) would take.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // Let the deliveries still queued finish or time out.
    let accounted = |f: &tasker::events::SubscriberFailures| {
        f.panics + f.timeouts + f.dropped + f.errors + f.delivered
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let failures = tasker.subscriber_failures();
        let done = |suffix: &str, total: u64| {
            failures
                .iter()
                .any(|(name, f)| name.ends_with(suffix) && accounted(f) >= total)
        };
        if done("Panicker", 160)
            && done("Failer", 10)
            && failures
                .iter()
                .any(|(n, f)| n.ends_with("Sleeper") && f.timeouts >= 1)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries never settled: {failures:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failures = tasker.subscriber_failures();
    let of = |suffix: &str| {
        *failures
            .iter()
            .find(|(name, _)| name.ends_with(suffix))
            .unwrap_or_else(|| panic!("no stats for {suffix}: {failures:?}"))
            .1
    };
    // Every one of the 160 step events (10 tasks x 4 steps x requested, started,
    // before_handle, completed) is accounted for: a panic, or dropped from
    // the full queue (or, on a very slow machine, a timeout).
    let panicker = of("Panicker");
    assert!(panicker.panics >= 1, "{failures:?}");
    assert_eq!(panicker.delivered + panicker.errors, 0);
    assert_eq!(
        panicker.panics + panicker.timeouts + panicker.dropped,
        160,
        "{failures:?}"
    );
    assert!(of("Sleeper").timeouts >= 1, "{failures:?}");
    assert!(
        of("Sleeper").dropped >= 1,
        "the full queue drops: {failures:?}"
    );
    // Ten task.completed events: each an error, or dropped when the small
    // queue was full.
    let failer = of("Failer");
    assert!(failer.errors >= 1, "{failures:?}");
    assert_eq!(failer.errors + failer.dropped, 10, "{failures:?}");
    let metrics = tasker.metrics().encode();
    assert!(metrics.contains("kind=\"panic\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_publish_declared_custom_events_only() {
    let recorder = Recorder::default();
    let tasker = engine(tasker_tests::sqlite().await, &recorder).await;
    let request = |event: &str| {
        Announcer::request(Announcement {
            event: event.into(),
            amount_cents: 1250,
        })
    };
    let task = tasker
        .run_task(request("payment.processed"), WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete);
    recorder
        .wait_for(task.task_id, "payment.processed(announce)")
        .await;
    let events = recorder.0.lock().unwrap().clone();
    let custom = events
        .iter()
        .find(|e| e.name() == "payment.processed")
        .unwrap();
    assert_eq!(
        custom.data(),
        Some(&serde_json::json!({"amount_cents": 1250}))
    );
    assert_eq!(custom.task_id(), Some(task.task_id));
    assert_eq!(custom.attempt(), Some(1));

    let task = tasker
        .run_task(request("payment.refunded"), WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Error);
    let error = task.steps[0].last_error.as_ref().unwrap();
    assert_eq!(error.class(), "UndeclaredEvent");
    assert!(
        error
            .message()
            .contains("\"payment.refunded\", which it does not declare"),
        "{error}"
    );

    // The catalog lists the built-ins and the declared custom events.
    let catalog = tasker.event_catalog();
    assert!(catalog.get("payment.risk_flagged").is_some());
    let spec = catalog.get("payment.processed").unwrap();
    assert_eq!(spec.category, EventCategory::Custom);
    assert_eq!(spec.declared_by, ["tests/announcer@1.0.0 announce"]);
    assert_eq!(
        catalog.get("step.completed").unwrap().category,
        EventCategory::Step
    );
    assert!(catalog.by_category(EventCategory::Task).count() >= 6);

    // In-process, the runner keeps them for assertions.
    let run = tasker::testing::TaskRunner::new()
        .run::<Announcer>(Announcement {
            event: "payment.risk_flagged".into(),
            amount_cents: 5,
        })
        .await
        .unwrap();
    assert_eq!(run.events().len(), 1);
    assert_eq!(run.events()[0].name(), "payment.risk_flagged");
}

/// Counts `task.completed` events; registered through inventory.
#[derive(Default)]
struct CompletionCounter;

static COMPLETIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Subscriber for CompletionCounter {
    fn events(&self) -> EventFilter {
        EventFilter::only(["task.completed"])
    }

    async fn handle(&self, _event: &Event) -> Result<(), SubscriberError> {
        COMPLETIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

tasker::register_subscriber!(CompletionCounter);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_registered_through_inventory_receive_events() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let before = COMPLETIONS.load(std::sync::atomic::Ordering::SeqCst);
    tasker
        .run_task(Diamond::request(Seed { value: 1 }), WAIT)
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while COMPLETIONS.load(std::sync::atomic::Ordering::SeqCst) == before {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And an engine that opts out does not deliver to it.
    let quiet = tasker_diesel::testing::embedded(|b| b.without_registered_subscribers())
        .await
        .unwrap();
    assert!(quiet.subscriber_failures().is_empty());
    assert!(tasker
        .subscriber_failures()
        .keys()
        .any(|k| k.ends_with("CompletionCounter")));
}

/// Parses the exposition text into `name{labels} -> value`.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                key.to_owned(),
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {l:?}")),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_what_ran() {
    let tasker = tasker_diesel::testing::embedded(|b| {
        b.resource(Arc::new(Attempts::default()))
            .resource(Arc::new(Switch::default()))
            .configure(|c| c.backoff.base = Duration::from_millis(5))
    })
    .await
    .unwrap();
    let (addr, server) =
        tasker::api::serve_metrics(tasker.metrics().clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let worker = tasker.start_worker();
    let mut ids = Vec::new();
    for value in 0..3 {
        ids.push(
            tasker
                .create_task(Diamond::request(Seed { value }))
                .await
                .unwrap()
                .task_id(),
        );
    }
    ids.push(
        tasker
            .create_task(Flaky::request(script("metrics", 1, 0)))
            .await
            .unwrap()
            .task_id(),
    );
    let permanent = Script {
        permanent_until_switched: true,
        key: "metrics-fail".into(),
        ..Script::default()
    };
    ids.push(
        tasker
            .create_task(Flaky::request(permanent))
            .await
            .unwrap()
            .task_id(),
    );
    for id in &ids {
        tasker.wait_for_task(*id, WAIT).await.unwrap();
    }
    worker.shutdown().await;

    // Prometheus asks for OpenMetrics first; curl and promtool get the
    // text format 0.0.4, where counters carry their `_total` name in HELP.
    let client = reqwest::Client::new();
    let scrape = |accept: Option<&'static str>| {
        let mut request = client.get(format!("http://{addr}/metrics"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send()
    };
    let plain = scrape(None).await.unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(
        plain.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let plain = plain.text().await.unwrap();
    assert!(
        plain.contains("# HELP tasker_tasks_created_total Tasks created"),
        "{plain}"
    );
    assert!(!plain.contains("# EOF"), "{plain}");
    let response = scrape(Some(
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let m = parse_metrics(&text);
    assert_eq!(
        parse_metrics(&plain)
            .get(r#"tasker_tasks_created_total{namespace="tests",handler="diamond"}"#),
        Some(&3.0),
        "{plain}"
    );
    let get = |key: &str| *m.get(key).unwrap_or_else(|| panic!("no {key} in\n{text}"));
    assert_eq!(
        get(r#"tasker_tasks_created_total{namespace="tests",handler="diamond"}"#),
        3.0
    );
    assert_eq!(
        get(r#"tasker_tasks_created_total{namespace="tests",handler="flaky"}"#),
        2.0
    );
    assert_eq!(
        get(
            r#"tasker_tasks_finished_total{namespace="tests",handler="diamond",outcome="complete"}"#
        ),
        3.0
    );
    assert_eq!(
        get(r#"tasker_tasks_finished_total{namespace="tests",handler="flaky",outcome="complete"}"#),
        1.0
    );
    assert_eq!(
        get(r#"tasker_tasks_finished_total{namespace="tests",handler="flaky",outcome="error"}"#),
        1.0
    );
    for step in ["a", "b", "c", "d"] {
        assert_eq!(
            get(&format!(
                r#"tasker_steps_finished_total{{namespace="tests",handler="diamond",step="{step}",outcome="completed"}}"#
            )),
            3.0
        );
        assert_eq!(
            get(&format!(
                r#"tasker_step_duration_seconds_count{{namespace="tests",handler="diamond",step="{step}",outcome="completed"}}"#
            )),
            3.0
        );
    }
    // work: one retried failure and one permanent failure, two completions.
    assert_eq!(
        get(
            r#"tasker_steps_finished_total{namespace="tests",handler="flaky",step="work",outcome="failed"}"#
        ),
        2.0
    );
    assert_eq!(
        get(r#"tasker_step_retries_total{namespace="tests",handler="flaky",step="work"}"#),
        1.0
    );
    assert_eq!(
        get(r#"tasker_steps_started_total{namespace="tests",handler="flaky",step="work"}"#),
        3.0
    );
    assert!(get("tasker_claim_duration_seconds_count") >= 1.0);
    assert!(get("tasker_claim_batch_size_count") >= 1.0);
    assert!(m.contains_key("tasker_ready_steps"), "{text}");
    assert_eq!(get(r#"tasker_events_total{event="task.created"}"#), 5.0);
    // No label carries an id.
    assert!(!text.contains("task_id"), "{text}");
    server.abort();
    assert!(ids.iter().all(|id| id.0 > 0));
    let _ = StepState::Complete;
}

#[test]
fn the_documented_catalog_matches_the_code() {
    let registry = tasker_tests::registry();
    let table = registry.event_catalog().to_markdown();
    let built_in_only = tasker::events::Catalog::new([]).to_markdown();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let (start, end) = ("<!-- catalog:start -->\n", "<!-- catalog:end -->");
    let begin = doc.find(start).expect("the catalog markers") + start.len();
    let finish = doc.find(end).expect("the catalog markers");
    if std::env::var_os("TASKER_BLESS").is_some() {
        let updated = format!("{}{built_in_only}{}", &doc[..begin], &doc[finish..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        &doc[begin..finish],
        built_in_only,
        "docs/events.md is out of date: run `TASKER_BLESS=1 cargo test -p tasker-tests --test events`"
    );
    assert!(table.contains("`payment.processed` | custom"));
}

/// A task whose last unfinished step completes after another step was
/// cancelled ends `cancelled` on both stores: each reports it so, and
/// the worker publishes exactly this sequence (no `task.completed`).
async fn a_task_with_a_cancelled_step_ends_cancelled<S: tasker::Store>(store: S) {
    let recorder = Recorder::default();
    let tasker = tasker_tests::tasker(store, |b| {
        b.subscriber(recorder.clone()).configure(|c| {
            c.concurrency = 1;
            c.claim_batch = 1;
        })
    })
    .await;
    let id = tasker
        .create_task(Diamond::request(Seed { value: 1 }))
        .await
        .unwrap()
        .task_id();
    let task = tasker.task(id).await.unwrap();
    let c = task.steps.iter().find(|s| s.name == "c").unwrap().step_id;
    tasker.cancel_step(c, "ops").await.unwrap();
    let worker = tasker.start_worker();
    let task = tasker.wait_for_task(id, WAIT).await.unwrap();
    assert_eq!(task.state, tasker::TaskState::Cancelled);
    recorder.wait_for(id, "workflow.task_finalized").await;
    worker.shutdown().await;
    assert_eq!(
        recorder.sequence(id),
        [
            "task.created",
            "step.cancelled(c)",
            "step.cancelled(d)",
            "task.started",
            "workflow.viable_steps_discovered",
            "step.execution_requested(a)",
            "step.started(a)",
            "step.before_handle(a)",
            "step.completed(a)",
            "workflow.viable_steps_discovered",
            "step.execution_requested(b)",
            "step.started(b)",
            "step.before_handle(b)",
            "step.completed(b)",
            "workflow.task_finalized",
        ]
    );
    let finalized = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .find(|e| e.task_id() == Some(id) && e.name() == "workflow.task_finalized")
        .cloned()
        .unwrap();
    assert_eq!(finalized.task_state(), Some(tasker::TaskState::Cancelled));
}

// The exact-sequence scenarios on both stores: the same events in the same
// order, because each store reported the same outcomes to the worker.
tasker_tests::on_both_stores!(
    a_clean_run_publishes_the_exact_sequence,
    a_retried_step_publishes_failure_and_backoff,
    an_exhausted_step_fails_the_task,
    a_cancelled_task_publishes_cancellations_and_the_discarded_result,
    a_task_with_a_cancelled_step_ends_cancelled,
);
