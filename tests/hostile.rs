//! Hostile input to the engine, on both stores: what is accepted at
//! creation can always be claimed, what cannot be stored is refused with
//! an error naming the field (and nothing is written), values nested far
//! too deep never overflow a stack, and a step whose output, error or
//! stored input cannot be kept or read fails alone, never its claim batch.

use std::time::Duration;

use diesel::Connection;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use serde_json::{json, Value};
use tasker::payload::MAX_JSON_DEPTH;
use tasker::prelude::*;
use tasker::store::TaskFilter;
use tasker::{Error, StepState, Store, TaskId, TaskState, Tasker};
use tasker_tests::handlers::{Hostile, Mischief};

const WAIT: Duration = Duration::from_secs(20);

fn nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

async fn task_count<S: Store>(tasker: &Tasker<S>) -> usize {
    tasker
        .tasks(&TaskFilter {
            limit: 500,
            ..TaskFilter::default()
        })
        .await
        .unwrap()
        .len()
}

fn raw(context: Value) -> TaskRequest {
    TaskRequest::new("tests", "hostile", context).with_version("1.0.0")
}

async fn refused_at_creation_with_the_field_named<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| b).await;
    // Deeper than the limit: refused, naming where.
    let mut context = json!({ "mode": "ok" });
    context["extra"] = nested(MAX_JSON_DEPTH);
    let err = tasker.create_task(raw(context)).await.unwrap_err();
    assert!(matches!(err, Error::Payload(_)), "{err}");
    assert!(err.to_string().contains("context.extra"), "{err}");
    assert!(err.to_string().contains("nested more than"), "{err}");

    // NUL characters in the context, in a key, and in metadata.
    let err = tasker
        .create_task(raw(json!({ "mode": "a\u{0}b" })))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("context.mode"), "{err}");
    assert!(err.to_string().contains("NUL"), "{err}");
    let err = tasker
        .create_task(raw(json!({ "mode": "ok", "k\u{0}": 1 })))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("key"), "{err}");
    for (field, request) in [
        (
            "identity_key",
            Hostile::request(Mischief { mode: "ok".into() }).identity_key("k\u{0}"),
        ),
        (
            "initiator",
            Hostile::request(Mischief { mode: "ok".into() }).initiator("\u{0}"),
        ),
        (
            "tags[1]",
            Hostile::request(Mischief { mode: "ok".into() })
                .tag("fine")
                .tag("t\u{0}"),
        ),
    ] {
        let err = tasker.create_task(request).await.unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    // A filter with a NUL is refused, not sent to the database.
    let err = tasker
        .tasks(&TaskFilter {
            namespace: Some("te\u{0}sts".into()),
            ..TaskFilter::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("namespace"), "{err}");
    // Operator actions check the actor and the output too.
    let id = tasker
        .create_task(Hostile::request(Mischief { mode: "ok".into() }))
        .await
        .unwrap()
        .task_id();
    let err = tasker.cancel_task(id, "ops\u{0}").await.unwrap_err();
    assert!(err.to_string().contains("actor"), "{err}");
    let step = tasker.task(id).await.unwrap().steps[0].step_id;
    let err = tasker
        .resolve_step(step, nested(10_000), "ops")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("output"), "{err}");
    assert_eq!(task_count(&tasker).await, 1, "only the good task exists");
    let task = tasker.task(id).await.unwrap();
    assert_eq!(
        task.state,
        TaskState::Pending,
        "the refused actions changed nothing"
    );
}

async fn a_value_ten_thousand_deep_is_an_error_not_a_crash<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| b).await;
    // On a tokio worker thread (2 MiB stack): built, refused and dropped
    // without recursion.
    let handle = tokio::spawn({
        let tasker = tasker.clone();
        async move {
            let err = tasker.create_task(raw(nested(10_000))).await.unwrap_err();
            assert!(err.to_string().contains("nested"), "{err}");
            // In a batch: the bad request and every request after it are
            // dropped safely, and nothing is written.
            let good = Hostile::request(Mischief { mode: "ok".into() });
            let err = tasker
                .create_tasks(vec![good, raw(nested(10_000)), raw(nested(20_000))])
                .await
                .unwrap_err();
            assert!(err.to_string().contains("nested"), "{err}");
        }
    });
    handle.await.expect("the worker thread survived");
    assert_eq!(task_count(&tasker).await, 0, "nothing was written");
    // The engine is unharmed.
    let task = tasker
        .run_task(Hostile::request(Mischief { mode: "ok".into() }), WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete);
}

/// Several tasks claimed in one batch, one of them hostile: only that one
/// fails, permanently, saying why; the others complete.
async fn a_step_that_cannot_be_stored_fails_alone<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.configure(|c| {
            c.claim_batch = 16;
            c.concurrency = 16;
        })
    })
    .await;
    let mut ids = Vec::new();
    for mode in [
        "ok",
        "nul",
        "ok",
        "deep",
        "ok",
        "nul_error",
        "huge_error",
        "ok",
    ] {
        let id = tasker
            .create_task(Hostile::request(Mischief { mode: mode.into() }))
            .await
            .unwrap()
            .task_id();
        ids.push((mode, id));
    }
    let worker = tasker.start_worker();
    for (mode, id) in &ids {
        let task = tasker.wait_for_task(*id, WAIT).await.unwrap();
        let emit = &task.steps[0];
        match *mode {
            "ok" => assert_eq!(task.state, TaskState::Complete, "{mode}: {task:?}"),
            "nul" | "deep" => {
                assert_eq!(task.state, TaskState::Error, "{mode}");
                let error = emit.last_error.as_ref().unwrap();
                assert_eq!(error.class(), "OutputRefused", "{mode}: {error}");
                assert!(error.message().contains("output"), "{mode}: {error}");
                assert_eq!(emit.attempts, 1, "{mode}: failed once, permanently");
            }
            "nul_error" => {
                assert_eq!(task.state, TaskState::Error);
                let error = emit.last_error.as_ref().unwrap();
                assert_eq!(error.message(), "bad\u{FFFD}thing");
            }
            "huge_error" => {
                assert_eq!(task.state, TaskState::Error);
                let error = emit.last_error.as_ref().unwrap();
                assert!(error.message().len() <= StepError::MAX_MESSAGE_BYTES + 20);
                assert!(error.message().ends_with("[truncated]"));
            }
            other => unreachable!("{other}"),
        }
    }
    let counts = worker.shutdown().await;
    assert_eq!(counts.failed, 4, "{counts:?}");
}

/// A stored context that cannot be decoded (written behind tasker's back)
/// fails its step alone: the claim batch it came in is not poisoned.
async fn unreadable_stored_input_fails_its_step_alone<S: Store>(
    store: S,
    corrupt: impl AsyncFnOnce(TaskId, String),
) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.configure(|c| {
            c.claim_batch = 8;
            c.concurrency = 8;
        })
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            tasker
                .create_task(Hostile::request(Mischief { mode: "ok".into() }))
                .await
                .unwrap()
                .task_id(),
        );
    }
    // Deeper than any JSON parser here reads back.
    let deep = format!("{{\"mode\": {}1{}}}", "[".repeat(300), "]".repeat(300));
    corrupt(ids[2], deep).await;
    let worker = tasker.start_worker();
    for (n, id) in ids.iter().enumerate() {
        let task = tasker.wait_for_task(*id, WAIT).await.unwrap();
        if n == 2 {
            assert_eq!(task.state, TaskState::Error);
            let emit = &task.steps[0];
            assert_eq!(emit.state, StepState::Error);
            assert_eq!(emit.attempts, 1, "failed once, not after lease recovery");
            let error = emit.last_error.as_ref().unwrap();
            assert_eq!(error.class(), "UnreadableInput", "{error}");
            assert!(error.message().contains("cannot be read"), "{error}");
        } else {
            assert_eq!(task.state, TaskState::Complete, "task {n}");
            assert_eq!(task.steps[0].attempts, 1, "task {n} lost no attempt");
        }
    }
    worker.shutdown().await;
}

tasker_tests::on_both_stores!(
    refused_at_creation_with_the_field_named,
    a_value_ten_thousand_deep_is_an_error_not_a_crash,
    a_step_that_cannot_be_stored_fails_alone,
);

/// The stored context is rewritten behind tasker's back, through the
/// database's own driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_stored_input_fails_its_step_alone_on_postgres() {
    let (store, db) = tasker_tests::postgres().await;
    let url = db.url().to_owned();
    unreadable_stored_input_fails_its_step_alone(store, async move |id, context| {
        let mut conn = diesel_async::AsyncPgConnection::establish(&url)
            .await
            .unwrap();
        conn.batch_execute(&format!(
            "UPDATE tasker_tasks SET context = '{context}'::jsonb WHERE task_id = {id}"
        ))
        .await
        .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_stored_input_fails_its_step_alone_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("tasker-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("unreadable.sqlite");
    let _ = std::fs::remove_file(&path);
    let store = tasker_diesel::SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    let file = path.to_string_lossy().into_owned();
    unreadable_stored_input_fails_its_step_alone(store, async move |id, context| {
        use diesel::connection::SimpleConnection;
        let mut conn = diesel::SqliteConnection::establish(&file).unwrap();
        conn.batch_execute(&format!(
            "UPDATE tasker_tasks SET context = '{context}' WHERE task_id = {id}"
        ))
        .unwrap();
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
