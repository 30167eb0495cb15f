//! Spans exported over OTLP/HTTP to a receiver started by the test: each
//! step attempt's `step` span is a child of a `task` span, with the task's
//! attributes, and all attempts of one task share a trace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tasker::prelude::*;
use tasker::telemetry::TelemetryConfig;
use tasker::TaskState;
use tasker_tests::handlers::{Attempts, Flaky, Script, Switch};

type Received = Arc<Mutex<Vec<Value>>>;

async fn receive(State(received): State<Received>, body: Bytes) -> &'static str {
    let value: Value = serde_json::from_slice(&body).expect("OTLP JSON");
    received.lock().unwrap().push(value);
    "{}"
}

fn spans(received: &Received) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|body| {
            body["resourceSpans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|rs| rs["scopeSpans"].as_array().cloned().unwrap_or_default())
        .flat_map(|ss| ss["spans"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn attribute(span: &Value, key: &str) -> Option<String> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| {
            let v = &a["value"];
            v.get("stringValue")
                .or_else(|| v.get("intValue"))
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string())
                })
                .unwrap_or_else(|| v.to_string())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver_with_the_task_step_hierarchy() {
    let received: Received = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The worker binary's default log filter (`warn`) must not silence the
    // spans: they have their own filter, `info` by default.
    let guard = tasker::telemetry::init(TelemetryConfig {
        service_name: "tasker-otel-test".into(),
        filter: "warn".into(),
        otlp_endpoint: Some(format!("http://{addr}")),
        json_logs: true,
        ..TelemetryConfig::default()
    })
    .unwrap();

    let tasker = tasker_diesel::testing::embedded(|b| {
        b.resource(Arc::new(Attempts::default()))
            .resource(Arc::new(Switch::default()))
            .configure(|c| c.backoff.base = Duration::from_millis(5))
    })
    .await
    .unwrap();
    let script = Script {
        fail_times: 1,
        key: "otel".into(),
        ..Script::default()
    };
    let task = tasker
        .run_task(Flaky::request(script), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete);

    // Flush: shutting the provider down exports what is batched.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = spans(&received);
    let task_id = task.task_id.0.to_string();
    let ours = |name: &str| -> Vec<Value> {
        spans
            .iter()
            .filter(|s| {
                s["name"] == name && attribute(s, "task_id").as_deref() == Some(task_id.as_str())
            })
            .cloned()
            .collect()
    };
    let task_spans = ours("task");
    let step_spans = ours("step");
    assert_eq!(step_spans.len(), 3, "work twice, after once: {spans:#?}");
    assert_eq!(task_spans.len(), 3, "one task span per attempt");
    for step in &step_spans {
        let parent = task_spans
            .iter()
            .find(|t| t["spanId"] == step["parentSpanId"])
            .unwrap_or_else(|| panic!("step span without a task parent: {step:#}"));
        assert_eq!(parent["traceId"], step["traceId"]);
        assert_eq!(attribute(step, "namespace").as_deref(), Some("tests"));
        assert_eq!(attribute(step, "handler").as_deref(), Some("flaky"));
        assert_eq!(attribute(step, "version").as_deref(), Some("1.0.0"));
        assert_eq!(
            attribute(step, "correlation_id"),
            Some(format!("tsk_{task_id}"))
        );
        assert!(attribute(step, "attempt").is_some());
    }
    let steps: Vec<(String, String)> = step_spans
        .iter()
        .map(|s| {
            (
                attribute(s, "step").unwrap(),
                attribute(s, "attempt").unwrap(),
            )
        })
        .collect();
    for expected in [("work", "1"), ("work", "2"), ("after", "1")] {
        assert!(
            steps.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {steps:?}"
        );
    }
    // Every attempt of the task shares one trace.
    let trace = &task_spans[0]["traceId"];
    assert!(task_spans
        .iter()
        .chain(&step_spans)
        .all(|s| &s["traceId"] == trace));
    assert_eq!(
        attribute(&task_spans[0], "correlation_id"),
        Some(format!("tsk_{task_id}"))
    );
}
