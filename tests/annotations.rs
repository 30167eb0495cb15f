//! Annotations (`ctx.annotate`): written with a step's success and only
//! then, on both stores and in a transactional step; found again by the
//! task read, the task list filter, the REST and GraphQL API and the
//! in-process runner.

#[path = "common/http.rs"]
mod http;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tasker::api::{ApiConfig, StaticTokens};
use tasker::prelude::*;
use tasker::store::TaskFilter;
use tasker::{Registry, Store, TaskState, Tasker};

/// An order to review.
#[derive(Debug, Serialize, Deserialize)]
pub struct Order {
    /// Its amount.
    pub cents: u64,
}

/// Counts attempts of `review`.
#[derive(Default)]
pub struct Tries(AtomicU32);

/// Annotates in two steps; the first attempt of `review` annotates, then
/// fails.
pub struct Reviewed;

#[task_handler(namespace = "annotations", version = "1.0.0", context = Order)]
impl Reviewed {
    /// Records where the order came from.
    #[step]
    async fn intake(ctx: &StepContext<Order>) -> StepResult<()> {
        ctx.annotate("source", "web")?;
        Ok(())
    }

    /// Fails its first attempt after annotating; the second annotates
    /// again and succeeds.
    #[step(depends_on = intake, retry_limit = 2)]
    async fn review(ctx: &StepContext<Order>) -> StepResult<String> {
        let n = ctx
            .resource::<Arc<Tries>>()?
            .0
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        ctx.annotate("review.attempt", n)?;
        if n == 1 {
            return Err(StepError::retryable("the reviewer is busy"));
        }
        let verdict = if ctx.context().cents > 10_000 {
            "manual"
        } else {
            "auto"
        };
        ctx.annotate(
            "review.reason",
            json!({"verdict": verdict, "cents": ctx.context().cents}),
        )?;
        Ok(verdict.to_owned())
    }

    /// Tries to record a bad annotation.
    #[step(depends_on = review)]
    async fn close(ctx: &StepContext<Order>) -> StepResult<()> {
        if ctx.context().cents == 13 {
            ctx.annotate("not a type", 1)?;
        }
        Ok(())
    }
}

fn registry() -> Registry {
    Registry::new().with::<Reviewed>().unwrap()
}

async fn engine<S: Store>(store: S) -> Tasker<S> {
    tasker_tests::tasker(store, |b| {
        b.registry(registry()).resource(Arc::new(Tries::default()))
    })
    .await
}

fn kinds(task: &tasker::store::TaskRecord) -> Vec<(String, Option<String>, Value)> {
    task.annotations
        .iter()
        .map(|a| {
            (
                a.annotation_type.clone(),
                a.step.clone(),
                a.annotation.clone(),
            )
        })
        .collect()
}

async fn annotations_are_kept_with_successes_only<S: Store>(store: S) {
    let tasker = engine(store).await;
    let task = tasker
        .run_task(
            Reviewed::request(Order { cents: 20_000 }),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(
        kinds(&task),
        [
            ("source".to_owned(), Some("intake".to_owned()), json!("web")),
            // Attempt 1 annotated `1`, then failed: not kept.
            (
                "review.attempt".to_owned(),
                Some("review".to_owned()),
                json!(2)
            ),
            (
                "review.reason".to_owned(),
                Some("review".to_owned()),
                json!({"verdict": "manual", "cents": 20_000})
            ),
        ]
    );
    assert!(task
        .annotations
        .windows(2)
        .all(|w| w[0].created_at <= w[1].created_at));

    // A bad annotation fails its step permanently, naming the rule.
    let bad = tasker
        .run_task(
            Reviewed::request(Order { cents: 13 }),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(bad.state, TaskState::Error);
    let close = bad.steps.iter().find(|s| s.name == "close").unwrap();
    let error = close.last_error.as_ref().unwrap();
    assert_eq!(error.class(), "AnnotationRefused");
    assert!(
        error
            .message()
            .contains("\"not a type\" is not 1 to 64 ASCII letters"),
        "{error}"
    );
    assert_eq!(close.attempts, 1, "not retried");

    let found = tasker
        .tasks(&TaskFilter {
            annotation_type: Some("review.reason".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<_> = found.iter().map(|t| t.task_id).collect();
    ids.sort();
    assert_eq!(ids, [task.task_id, bad.task_id]);
    let none = tasker
        .tasks(&TaskFilter {
            annotation_type: Some("nobody.wrote.this".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

tasker_tests::on_both_stores!(annotations_are_kept_with_successes_only);

/// A transactional step's annotations commit with its writes (PostgreSQL).
pub struct Booked;

#[task_handler(namespace = "annotations", version = "1.0.0")]
impl Booked {
    /// Annotates inside its transaction.
    #[step(transactional)]
    async fn book(ctx: &StepContext) -> StepResult<()> {
        let _conn = tasker_diesel::StepDb::db(ctx).await?;
        ctx.annotate("ledger", json!({"booked": true}))?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_step_commits_its_annotations_with_its_writes() {
    let (store, _db) = tasker_tests::postgres().await;
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Booked>().unwrap())
    })
    .await;
    let task = tasker
        .run_task(Booked::request(json!({})), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(
        kinds(&task),
        [(
            "ledger".to_owned(),
            Some("book".to_owned()),
            json!({"booked": true})
        )]
    );
}

#[tokio::test]
async fn the_runner_shows_what_the_engine_would_keep() {
    let run = tasker::testing::TaskRunner::new()
        .resource(Arc::new(Tries::default()))
        .run::<Reviewed>(Order { cents: 5 })
        .await
        .unwrap();
    assert!(run.is_complete());
    let seen: Vec<_> = run
        .annotations()
        .iter()
        .map(|(step, a)| (*step, a.annotation_type.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("intake", "source"),
            ("review", "review.attempt"),
            ("review", "review.reason")
        ]
    );
}

const TOKEN: &str = "annotations-admin-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_and_filters_annotations() {
    let tasker = engine(tasker_tests::sqlite().await).await;
    let task = tasker
        .run_task(
            Reviewed::request(Order { cents: 50 }),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let config = ApiConfig::new(StaticTokens::new().token("admin", TOKEN, ["*"]));
    let (base, _) = http::serve(tasker, config).await;
    let client = Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move {
            let (status, text) = http::send(&client, Method::GET, &url, Some(TOKEN), None).await;
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
            )
        }
    };

    let (status, body) = get(format!("{base}/tasks/{}", task.task_id)).await;
    assert_eq!(status, 200, "{body}");
    let notes = &body["task"]["annotations"];
    assert_eq!(notes.as_array().unwrap().len(), 3, "{notes}");
    assert_eq!(notes[2]["annotation_type"], "review.reason");
    assert_eq!(notes[2]["step"], "review");
    assert_eq!(
        notes[2]["annotation"],
        json!({"verdict": "auto", "cents": 50})
    );
    assert!(notes[2]["created_at"].is_string());

    let (status, body) = get(format!("{base}/tasks?annotation_type=review.reason")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tasks"].as_array().unwrap().len(), 1);
    let (_, body) = get(format!("{base}/tasks?annotation_type=other")).await;
    assert_eq!(body["tasks"], json!([]));
    let (status, body) = get(format!("{base}/tasks?annotation_type=%20drop%20table")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`annotation_type`"),
        "{body}"
    );

    let query = json!({"query": format!(
        "{{ task(id: {}) {{ annotations {{ annotationType step annotation }} }} \
           tasks(annotationType: \"source\") {{ taskId }} }}",
        task.task_id
    )});
    let (status, text) = http::send(
        &client,
        Method::POST,
        &format!("{base}/graphql"),
        Some(TOKEN),
        Some(&query.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["task"]["annotations"][0],
        json!({"annotationType": "source", "step": "intake", "annotation": "web"})
    );
    assert_eq!(body["data"]["tasks"], json!([{"taskId": task.task_id.0}]));
}
