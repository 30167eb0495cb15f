//! Decision steps (`#[step(branches = [...])]`): the unchosen branches end
//! `skipped`, audited and announced; what follows only from skipped steps
//! is skipped too; a step after a skipped and a completed one runs with
//! `None`; a decision naming no branch fails. On both stores, in a
//! transactional decision (PostgreSQL), under concurrency, and in the
//! in-process runner.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tasker::events::{Event, EventFilter, Subscriber, SubscriberError};
use tasker::prelude::*;
use tasker::store::TaskRecord;
use tasker::testing::TaskRunner;
use tasker::{Registry, StepState, Store, TaskState, Tasker};

const WAIT: Duration = Duration::from_secs(30);

/// What to approve, and how to route it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// `auto`, `manual`, `both` or `none`.
    pub route: String,
}

/// The branches of `route`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Approve without a person.
    AutoApprove,
    /// A person looks at it.
    ManualReview,
}

/// score -> route -> {auto_approve, manual_review}; notify_reviewer after
/// manual_review only; audit after score and manual_review; finalize after
/// both branches.
pub struct Approval;

#[task_handler(namespace = "decisions", version = "1.0.0", context = Order)]
impl Approval {
    /// A score to route by.
    #[step]
    async fn score(ctx: &StepContext<Order>) -> StepResult<u32> {
        Ok(ctx.context().route.len() as u32)
    }

    /// Chooses the branches.
    #[step(depends_on = score, branches = [auto_approve, manual_review])]
    async fn route(ctx: &StepContext<Order>) -> StepResult<Vec<Route>> {
        Ok(match ctx.context().route.as_str() {
            "auto" => vec![Route::AutoApprove],
            "manual" => vec![Route::ManualReview],
            "both" => vec![Route::AutoApprove, Route::ManualReview],
            _ => vec![],
        })
    }

    /// One branch.
    #[step(depends_on = route)]
    async fn auto_approve() -> StepResult<String> {
        Ok("auto".to_owned())
    }

    /// The other.
    #[step(depends_on = route)]
    async fn manual_review() -> StepResult<String> {
        Ok("manual".to_owned())
    }

    /// Runs exactly when manual_review ran (skipped with it): takes it plainly.
    #[step(depends_on = manual_review)]
    async fn notify_reviewer(manual_review: String) -> StepResult<String> {
        Ok(format!("notified about {manual_review}"))
    }

    /// Runs after score even when manual_review was skipped.
    #[step(depends_on = [score, manual_review])]
    async fn audit(score: u32, manual_review: Option<String>) -> StepResult<String> {
        Ok(format!(
            "{score}:{}",
            manual_review.as_deref().unwrap_or("-")
        ))
    }

    /// Joins the branches.
    #[step(depends_on = [auto_approve, manual_review])]
    async fn finalize(
        auto_approve: Option<String>,
        manual_review: Option<String>,
    ) -> StepResult<String> {
        Ok(format!(
            "{}+{}",
            auto_approve.as_deref().unwrap_or("-"),
            manual_review.as_deref().unwrap_or("-")
        ))
    }
}

/// A decision whose output names no branch.
pub struct Confused;

#[task_handler(namespace = "decisions", version = "1.0.0")]
impl Confused {
    /// Returns a name that is not a branch.
    #[step(branches = [left, right])]
    async fn pick() -> StepResult<String> {
        Ok("middle".to_owned())
    }

    /// A branch.
    #[step(depends_on = pick)]
    async fn left() -> StepResult<()> {
        Ok(())
    }

    /// A branch.
    #[step(depends_on = pick)]
    async fn right() -> StepResult<()> {
        Ok(())
    }
}

/// Records `step.skipped` events.
#[derive(Clone, Default)]
struct Skips(Arc<Mutex<Vec<Event>>>);

impl Subscriber for Skips {
    fn events(&self) -> EventFilter {
        EventFilter::only(["step.skipped"])
    }

    async fn handle(&self, event: &Event) -> Result<(), SubscriberError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

fn registry() -> Registry {
    Registry::new()
        .with::<Approval>()
        .unwrap()
        .with::<Confused>()
        .unwrap()
}

fn states(task: &TaskRecord) -> Vec<(&str, StepState)> {
    task.steps
        .iter()
        .map(|s| (s.name.as_str(), s.state))
        .collect()
}

fn output(task: &TaskRecord, step: &str) -> Option<serde_json::Value> {
    task.steps
        .iter()
        .find(|s| s.name == step)
        .and_then(|s| s.output.clone())
}

async fn run<S: Store>(tasker: &Tasker<S>, route: &str) -> TaskRecord {
    tasker
        .run_task(
            Approval::request(Order {
                route: route.to_owned(),
            }),
            WAIT,
        )
        .await
        .unwrap()
}

async fn unchosen_branches_are_skipped_and_joins_get_none<S: Store>(store: S) {
    use StepState::{Complete, Skipped};
    let skips = Skips::default();
    let tasker =
        tasker_tests::tasker(store, |b| b.registry(registry()).subscriber(skips.clone())).await;

    let task = run(&tasker, "auto").await;
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(
        states(&task),
        [
            ("score", Complete),
            ("route", Complete),
            ("auto_approve", Complete),
            ("manual_review", Skipped),
            ("notify_reviewer", Skipped),
            ("audit", Complete),
            ("finalize", Complete)
        ]
    );
    assert_eq!(output(&task, "finalize"), Some(json!("auto+-")));
    // Released by the skip itself (its other dependency had completed).
    assert_eq!(output(&task, "audit"), Some(json!("4:-")));
    assert_eq!(output(&task, "route"), Some(json!(["auto_approve"])));
    assert_eq!(output(&task, "manual_review"), None);
    let manual = task
        .steps
        .iter()
        .find(|s| s.name == "manual_review")
        .unwrap();
    assert_eq!(manual.attempts, 0, "a skipped step never ran");

    // Audited: pending -> skipped, by the worker that recorded the decision.
    let transitions = tasker.transitions(task.task_id).await.unwrap();
    tasker_tests::assert_legal(&transitions);
    let skipped: Vec<_> = transitions
        .iter()
        .filter(|t| t.to_state == "skipped")
        .map(|t| (t.step_id, t.from_state.as_deref()))
        .collect();
    let id = |name: &str| task.steps.iter().find(|s| s.name == name).unwrap().step_id;
    assert_eq!(
        skipped,
        [
            (Some(id("manual_review")), Some("pending")),
            (Some(id("notify_reviewer")), Some("pending"))
        ]
    );

    let task = run(&tasker, "manual").await;
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(
        states(&task),
        [
            ("score", Complete),
            ("route", Complete),
            ("auto_approve", Skipped),
            ("manual_review", Complete),
            ("notify_reviewer", Complete),
            ("audit", Complete),
            ("finalize", Complete)
        ]
    );
    assert_eq!(output(&task, "finalize"), Some(json!("-+manual")));
    assert_eq!(
        output(&task, "notify_reviewer"),
        Some(json!("notified about manual"))
    );
    assert_eq!(output(&task, "audit"), Some(json!("6:manual")));

    let task = run(&tasker, "both").await;
    assert_eq!(task.state, TaskState::Complete);
    assert!(task.steps.iter().all(|s| s.state == Complete), "{task:?}");
    assert_eq!(output(&task, "finalize"), Some(json!("auto+manual")));

    // No branch: everything after only the branches is skipped, the task
    // still completes.
    let none = run(&tasker, "none").await;
    assert_eq!(none.state, TaskState::Complete, "{none:?}");
    assert_eq!(
        states(&none),
        [
            ("score", Complete),
            ("route", Complete),
            ("auto_approve", Skipped),
            ("manual_review", Skipped),
            ("notify_reviewer", Skipped),
            ("audit", Complete),
            ("finalize", Skipped)
        ]
    );

    // Announced: one step.skipped per skipped step, naming the decision.
    let deadline = std::time::Instant::now() + WAIT;
    let of_none = || {
        skips
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.task_id() == Some(none.task_id))
            .map(|e| {
                (
                    e.step_name().unwrap().to_owned(),
                    e.data().and_then(|d| d.get("decision").cloned()),
                )
            })
            .collect::<Vec<_>>()
    };
    while of_none().len() < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut got = of_none();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            "auto_approve",
            "finalize",
            "manual_review",
            "notify_reviewer"
        ]
        .map(|s| (s.to_owned(), Some(json!("route"))))
    );

    // A decision that names no branch fails for good, saying what it may
    // return; its branches never run.
    let confused = tasker
        .run_task(Confused::request(json!(null)), WAIT)
        .await
        .unwrap();
    assert_eq!(confused.state, TaskState::Error);
    let pick = &confused.steps[0];
    assert_eq!(pick.state, StepState::Error);
    assert_eq!(pick.attempts, 1, "not retried");
    let error = pick.last_error.as_ref().unwrap();
    assert_eq!(error.class(), tasker::decision::INVALID_DECISION);
    assert_eq!(
        error.message(),
        "decision `pick` returned \"middle\"; it must return one of its branches (`left`, \
         `right`) or a list of them"
    );
    assert!(confused.steps[1..]
        .iter()
        .all(|s| s.state == StepState::Pending));
}

/// Many decisions at once, on several slots: every task ends complete with
/// exactly the steps its route chose, none run twice.
async fn decisions_hold_under_concurrency<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(registry()).configure(|c| {
            c.concurrency = 8;
            c.claim_batch = 8;
        })
    })
    .await;
    let routes = ["auto", "manual", "both", "none"];
    let worker = tasker.start_worker();
    let mut ids = Vec::new();
    for i in 0..40 {
        let created = tasker
            .create_task(Approval::request(Order {
                route: routes[i % 4].to_owned(),
            }))
            .await
            .unwrap();
        ids.push((created.task_id(), routes[i % 4]));
    }
    for (id, route) in ids {
        let task = tasker.wait_for_task(id, WAIT).await.unwrap();
        assert_eq!(task.state, TaskState::Complete, "{route}: {task:?}");
        let ran: Vec<&str> = task
            .steps
            .iter()
            .filter(|s| s.state == StepState::Complete)
            .map(|s| s.name.as_str())
            .collect();
        let expected: &[&str] = match route {
            "auto" => &["score", "route", "auto_approve", "audit", "finalize"],
            "manual" => &[
                "score",
                "route",
                "manual_review",
                "notify_reviewer",
                "audit",
                "finalize",
            ],
            "both" => &[
                "score",
                "route",
                "auto_approve",
                "manual_review",
                "notify_reviewer",
                "audit",
                "finalize",
            ],
            _ => &["score", "route", "audit"],
        };
        assert_eq!(ran, expected, "{route}");
        assert!(task.steps.iter().all(|s| s.attempts <= 1), "{task:?}");
        tasker_tests::assert_legal(&tasker.transitions(id).await.unwrap());
    }
    worker.shutdown().await;
}

tasker_tests::on_both_stores!(
    unchosen_branches_are_skipped_and_joins_get_none,
    decisions_hold_under_concurrency
);

#[tokio::test]
async fn the_runner_skips_as_the_stores_do() {
    let run = TaskRunner::new()
        .run::<Approval>(Order {
            route: "auto".into(),
        })
        .await
        .unwrap();
    assert!(run.is_complete());
    assert_eq!(run.output::<String>("finalize").unwrap(), "auto+-");
    assert_eq!(run.output::<String>("audit").unwrap(), "4:-");
    let skipped: Vec<&str> = run
        .steps()
        .iter()
        .filter(|s| s.state == StepState::Skipped)
        .map(|s| s.name)
        .collect();
    assert_eq!(skipped, ["manual_review", "notify_reviewer"]);

    let none = TaskRunner::new()
        .run::<Approval>(Order {
            route: "none".into(),
        })
        .await
        .unwrap();
    assert!(none.is_complete());
    assert!(none.output::<String>("finalize").is_err());

    let confused = TaskRunner::new()
        .run_handler(&Confused::handler(), json!(null))
        .await
        .unwrap();
    assert_eq!(confused.state(), TaskState::Error);
    assert_eq!(confused.failure().unwrap().0, "pick");
}

/// A transactional decision: its skips commit with its writes (PostgreSQL).
pub struct Booked;

#[task_handler(namespace = "decisions", version = "1.0.0")]
impl Booked {
    /// Writes in its transaction and chooses `ship`.
    #[step(transactional, branches = [ship, refund])]
    async fn decide(ctx: &StepContext) -> StepResult<String> {
        let _conn = tasker_diesel::StepDb::db(ctx).await?;
        Ok("ship".to_owned())
    }

    /// Chosen.
    #[step(depends_on = decide)]
    async fn ship() -> StepResult<()> {
        Ok(())
    }

    /// Not chosen.
    #[step(depends_on = decide)]
    async fn refund() -> StepResult<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_decision_skips_in_its_transaction() {
    let (store, _db) = tasker_tests::postgres().await;
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(Registry::new().with::<Booked>().unwrap())
    })
    .await;
    let task = tasker
        .run_task(Booked::request(json!(null)), WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(
        states(&task),
        [
            ("decide", StepState::Complete),
            ("ship", StepState::Complete),
            ("refund", StepState::Skipped)
        ]
    );
}

/// A pool of one connection: decisions (recorded on connections of their
/// own) never wait for the connection their own batch holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_complete_with_a_pool_of_one() {
    let (_store, db) = tasker_tests::postgres().await;
    let store = tasker_diesel::PgStore::connect_with(
        db.url(),
        tasker_diesel::PgOptions {
            pool_size: 1,
            ..tasker_diesel::PgOptions::default()
        },
    )
    .await
    .unwrap();
    decisions_hold_under_concurrency(store).await;
}
