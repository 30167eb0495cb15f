//! Shared pieces of tasker's integration tests: handlers used by both the
//! tests and the `tasker-test-worker` process, and store set-up.
//!
//! The library also compiles the guide's examples as doctests, so the
//! documentation cannot drift from the code.

pub mod handlers;

use std::sync::Arc;
use std::time::Duration;

use tasker::{Registry, Tasker};
use tasker_diesel::testing::TestDatabase;
use tasker_diesel::{PgStore, SqliteStore};

/// Engine settings for tests: short leases, quick polling, quick backoff.
pub fn fast_config(config: &mut tasker::EngineConfig) {
    config.poll_interval = Duration::from_millis(20);
    config.lease = Duration::from_secs(2);
    config.backoff = tasker::Backoff {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(400),
        jitter: true,
    };
}

/// A migrated PostgreSQL store on a fresh database (dropped with the
/// returned guard).
pub async fn postgres() -> (PgStore, Arc<TestDatabase>) {
    let db = TestDatabase::create().await.expect("a test database");
    let store = PgStore::connect(db.url()).await.expect("connect");
    tasker::Store::migrate(&store).await.expect("migrate");
    (store, Arc::new(db))
}

/// A migrated in-memory SQLite store.
pub async fn sqlite() -> SqliteStore {
    let store = SqliteStore::in_memory().await.expect("open");
    tasker::Store::migrate(&store).await.expect("migrate");
    store
}

/// Runs each named `async fn(store)` as two tests, in modules `postgres`
/// (a fresh database) and `sqlite` (in memory): one suite, both stores.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _db) = $crate::postgres().await;
                    super::$name(store).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::sqlite().await).await;
                }
            )*
        }
    };
}

/// Every transition in the audit trail is legal and continues from the
/// previous state of the same row.
pub fn assert_legal(transitions: &[tasker::store::Transition]) {
    let mut last: std::collections::HashMap<(bool, i64), String> = std::collections::HashMap::new();
    let mut sorted = transitions.to_vec();
    sorted.sort_by_key(|t| (t.step_id.is_some(), t.seq));
    for t in &sorted {
        let key = (t.step_id.is_some(), t.step_id.map_or(t.task_id.0, |s| s.0));
        match (&t.from_state, last.get(&key)) {
            (None, None) => {}
            (Some(from), Some(prev)) => {
                assert_eq!(from, prev, "transition {t:?} does not continue from {prev}")
            }
            (from, prev) => {
                panic!("transition {t:?} breaks the chain (from {from:?}, previous {prev:?})")
            }
        }
        if let Some(from) = &t.from_state {
            let legal = if t.step_id.is_some() {
                from.parse::<tasker::StepState>()
                    .unwrap()
                    .can_transition_to(t.to_state.parse().unwrap())
            } else {
                from.parse::<tasker::TaskState>()
                    .unwrap()
                    .can_transition_to(t.to_state.parse().unwrap())
            };
            assert!(legal, "illegal transition {t:?}");
        } else if t.step_id.is_some() {
            assert!(matches!(t.to_state.as_str(), "pending" | "ready"), "{t:?}");
        } else {
            assert_eq!(t.to_state, "pending", "{t:?}");
        }
        last.insert(key, t.to_state.clone());
    }
}

/// Every handler linked into the binary.
pub fn registry() -> Registry {
    Registry::from_inventory().expect("a valid registry")
}

/// An engine with test settings and `resources`.
pub async fn tasker<S: tasker::Store>(
    store: S,
    configure: impl FnOnce(tasker::TaskerBuilder<S>) -> tasker::TaskerBuilder<S>,
) -> Tasker<S> {
    configure(Tasker::builder(store).configure(fast_config))
        .build()
        .await
        .expect("engine starts")
}

/// `docs/transactions.md`, compiled.
#[cfg(doctest)]
#[doc = include_str!("../docs/transactions.md")]
pub struct Transactions;

/// `docs/getting-started.md`, compiled and run.
#[cfg(doctest)]
#[doc = include_str!("../docs/getting-started.md")]
pub struct GettingStarted;

/// `docs/engine.md`, compiled.
#[cfg(doctest)]
#[doc = include_str!("../docs/engine.md")]
pub struct Engine;

/// `docs/configuration.md`, compiled and run.
#[cfg(doctest)]
#[doc = include_str!("../docs/configuration.md")]
pub struct Configuration;

/// `docs/api-steps.md`, compiled and run.
#[cfg(doctest)]
#[doc = include_str!("../docs/api-steps.md")]
pub struct ApiSteps;

/// `docs/events.md`, compiled and run.
#[cfg(doctest)]
#[doc = include_str!("../docs/events.md")]
pub struct Events;
