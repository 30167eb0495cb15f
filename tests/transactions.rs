//! Transactional enqueue on real PostgreSQL: a task created in the
//! application's own diesel-async transaction exists if and only if that
//! transaction commits, workers are woken only after the commit, and the
//! caller's connection settings are left alone.

use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tasker::prelude::*;
use tasker::store::Created;
use tasker::{Store, TaskState};
use tasker_diesel::testing::TestDatabase;
use tasker_diesel::{CreateTaskIn, PgOptions, PgStore};
use tasker_tests::handlers::{Diamond, Seed};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = Text)]
    value: String,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

async fn search_path(conn: &mut AsyncPgConnection) -> String {
    diesel::sql_query("SELECT current_setting('search_path') AS value")
        .get_result::<Value>(conn)
        .await
        .unwrap()
        .value
}

/// tasker in schema `jobs`; the application's own table in `public`, its
/// connection on the default search path.
async fn set_up(db: &TestDatabase) -> (tasker::Tasker<PgStore>, AsyncPgConnection) {
    let store = PgStore::connect_with(
        db.url(),
        PgOptions {
            schema: "jobs".into(),
            ..PgOptions::default()
        },
    )
    .await
    .unwrap();
    let tasker = tasker_tests::tasker(store, |b| {
        b.migrate(true)
            // Polling alone would take 30 s: only the notification wakes a
            // worker in time for these tests.
            .configure(|c| c.poll_interval = Duration::from_secs(30))
    })
    .await;
    let mut app = AsyncPgConnection::establish(db.url()).await.unwrap();
    app.batch_execute("CREATE TABLE orders (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    (tasker, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_leaves_no_task_and_a_committed_one_runs() {
    let db = TestDatabase::create().await.unwrap();
    let (tasker, mut app) = set_up(&db).await;
    let worker = tasker.start_worker();

    // Rolled back: neither the order nor the task exists.
    let outcome = app
        .transaction(async |conn| {
            diesel::sql_query("INSERT INTO orders (id) VALUES (1)")
                .execute(conn)
                .await?;
            let created = tasker
                .create_task_in(conn, Diamond::request(Seed { value: 1 }))
                .await
                .expect("created in the transaction");
            assert!(matches!(created, Created::New(_)));
            Err::<(), _>(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(outcome.is_err());
    assert_eq!(count(&mut app, "SELECT count(*) AS n FROM orders").await, 0);
    assert_eq!(
        count(&mut app, "SELECT count(*) AS n FROM jobs.tasker_tasks").await,
        0
    );
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) AS n FROM jobs.tasker_workflow_steps"
        )
        .await,
        0
    );

    // Committed, after a pause: invisible and not started until the commit,
    // then woken by the commit's notification (the poll is 30 s).
    let before = search_path(&mut app).await;
    let mut observer = AsyncPgConnection::establish(db.url()).await.unwrap();
    let created = app
        .transaction(async |conn| {
            diesel::sql_query("INSERT INTO orders (id) VALUES (2)")
                .execute(conn)
                .await?;
            let created = tasker
                .create_task_in(conn, Diamond::request(Seed { value: 2 }))
                .await
                .expect("created in the transaction");
            assert_eq!(
                search_path(conn).await,
                before,
                "the caller's search_path is kept"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(
                count(&mut observer, "SELECT count(*) AS n FROM jobs.tasker_tasks").await,
                0,
                "not visible before the commit"
            );
            Ok::<_, diesel::result::Error>((created, chrono::Utc::now()))
        })
        .await
        .unwrap();
    let (created, about_to_commit) = created;
    let committed = Instant::now();
    let task = tasker
        .wait_for_task(created.task_id(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete);
    assert!(
        committed.elapsed() < Duration::from_secs(10),
        "woken by the commit, not the 30 s poll"
    );
    assert_eq!(count(&mut app, "SELECT count(*) AS n FROM orders").await, 1);
    let started = tasker
        .transitions(created.task_id())
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.step_id.is_some() && t.to_state == "in_progress")
        .expect("a step started");
    assert!(
        started.at >= about_to_commit,
        "no step started before the commit: {} < {about_to_commit}",
        started.at
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_create_leaves_the_caller_s_transaction_usable() {
    let db = TestDatabase::create().await.unwrap();
    let (tasker, mut app) = set_up(&db).await;
    let first = tasker
        .create_task(Diamond::request(Seed { value: 1 }).identity_key("order-7"))
        .await
        .unwrap();
    let (existing, bad) = app
        .transaction(async |conn| {
            diesel::sql_query("INSERT INTO orders (id) VALUES (7)")
                .execute(conn)
                .await?;
            // The identity key exists: the existing task, nothing written.
            let existing = tasker
                .create_task_in(
                    conn,
                    Diamond::request(Seed { value: 9 }).identity_key("order-7"),
                )
                .await
                .unwrap();
            // A request the handler refuses: an error before any write.
            let bad = tasker
                .create_task_in(
                    conn,
                    tasker::TaskRequest::new("tests", "diamond", serde_json::json!({"value": "x"})),
                )
                .await
                .unwrap_err();
            diesel::sql_query("INSERT INTO orders (id) VALUES (8)")
                .execute(conn)
                .await?;
            Ok::<_, diesel::result::Error>((existing, bad))
        })
        .await
        .unwrap();
    assert_eq!(existing, Created::Existing(first.task_id()));
    assert!(bad.to_string().contains("context"), "{bad}");
    assert_eq!(count(&mut app, "SELECT count(*) AS n FROM orders").await, 2);
    assert_eq!(
        count(&mut app, "SELECT count(*) AS n FROM jobs.tasker_tasks").await,
        1
    );
}

#[tokio::test]
async fn on_sqlite_the_transactional_create_says_it_needs_postgresql() {
    let db = TestDatabase::create().await.unwrap();
    let sqlite =
        tasker_diesel::AnyStore::Sqlite(tasker_diesel::SqliteStore::in_memory().await.unwrap());
    let tasker = tasker::Tasker::builder(sqlite)
        .migrate(true)
        .build()
        .await
        .unwrap();
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let err = tasker
        .create_task_in(&mut conn, Diamond::request(Seed { value: 1 }))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("needs the PostgreSQL store"),
        "{err}"
    );
    assert_eq!(tasker.store().task_counts().await.unwrap(), []);
}

// ---------------------------------------------------------------------
// Transactional steps: the step's writes and its completion record commit
// together, or not at all.

use std::collections::HashMap;

use tasker_tests::handlers::{Entry, Ledger};

const TASKS: usize = 200;

#[derive(QueryableByName)]
struct EffectRow {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempt: i32,
}

async fn effects(url: &str) -> HashMap<String, Vec<i32>> {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let rows = diesel::sql_query("SELECT key, attempt FROM ledger_effects")
        .load::<EffectRow>(&mut conn)
        .await
        .unwrap();
    let mut by_key: HashMap<String, Vec<i32>> = HashMap::new();
    for row in rows {
        by_key.entry(row.key).or_default().push(row.attempt);
    }
    by_key
}

/// A migrated database (tasker in `public`) with the application's table.
async fn ledger_database() -> (PgStore, std::sync::Arc<TestDatabase>) {
    let (store, db) = tasker_tests::postgres().await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    conn.batch_execute("CREATE TABLE ledger_effects (key TEXT NOT NULL, attempt INT NOT NULL)")
        .await
        .unwrap();
    (store, db)
}

#[track_caller]
fn exactly_one_effect_per_task(effects: &HashMap<String, Vec<i32>>, keys: &[String]) {
    assert_eq!(effects.len(), keys.len(), "one key per task");
    for key in keys {
        let rows = effects
            .get(key)
            .unwrap_or_else(|| panic!("no effect for {key}"));
        assert_eq!(
            rows.len(),
            1,
            "{key} applied {} times: attempts {rows:?}",
            rows.len()
        );
    }
}

async fn create_entries(
    tasker: &tasker::Tasker<PgStore>,
    prefix: &str,
    sleep_ms: u64,
    fail_first: impl Fn(usize) -> bool,
) -> (Vec<tasker::TaskId>, Vec<String>) {
    let keys: Vec<String> = (0..TASKS).map(|i| format!("{prefix}-{i}")).collect();
    let requests = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            Ledger::request(Entry {
                key: key.clone(),
                sleep_ms,
                fail_first: fail_first(i),
            })
        })
        .collect();
    let ids = tasker
        .create_tasks(requests)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.task_id())
        .collect();
    (ids, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_rolls_its_writes_back_and_a_success_keeps_them() {
    let (store, db) = ledger_database().await;
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let (ids, keys) = create_entries(&tasker, "retry", 0, |i| i % 3 == 0).await;
    let worker = tasker.start_worker();
    for id in &ids {
        let task = tasker
            .wait_for_task(*id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(task.state, TaskState::Complete, "task {id}");
    }
    worker.shutdown().await;
    let effects = effects(db.url()).await;
    exactly_one_effect_per_task(&effects, &keys);
    for (i, key) in keys.iter().enumerate() {
        let expected = if i % 3 == 0 { 2 } else { 1 };
        assert_eq!(
            effects[key],
            [expected],
            "{key}: the failed first attempt's row rolled back"
        );
    }
}

/// Starts `tasker-test-worker` (lease 1 s) on the database and waits until
/// it runs at least four `record` steps.
async fn doomed_worker(url: &str) -> (tokio::process::Child, usize) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasker-test-worker"))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the test worker starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    loop {
        // One quick query, so the signal follows the count closely.
        let running = count(
            &mut conn,
            "SELECT count(*) AS n FROM tasker_workflow_steps WHERE state = 'in_progress'",
        )
        .await as usize;
        if running >= 4 {
            return (child, running);
        }
        assert!(
            Instant::now() < deadline,
            "the worker process never claimed steps"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn drain(tasker: &tasker::Tasker<PgStore>, ids: &[tasker::TaskId]) -> usize {
    let worker = tasker.start_worker();
    for id in ids {
        let task = tasker
            .wait_for_task(*id, Duration::from_secs(90))
            .await
            .unwrap();
        assert_eq!(task.state, TaskState::Complete, "task {id}");
    }
    worker.shutdown().await;
    let mut recovered = 0;
    for id in ids {
        recovered += tasker
            .transitions(*id)
            .await
            .unwrap()
            .iter()
            .filter(|t| t.actor.as_deref() == Some("lease-recovery") && t.to_state == "ready")
            .count();
    }
    recovered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_step_leaves_no_effect_behind() {
    let (store, db) = ledger_database().await;
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let (ids, keys) = create_entries(&tasker, "killed", 150, |_| false).await;
    let (mut child, running) = doomed_worker(db.url()).await;
    child.kill().await.expect("SIGKILL");
    let recovered = drain(&tasker, &ids).await;
    // Steps counted as running may have finished in the instant before the
    // signal; at least one was cut off mid-step.
    assert!(
        recovered >= 1,
        "no killed step was recovered ({running} were running)"
    );
    exactly_one_effect_per_task(&effects(db.url()).await, &keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_frozen_past_its_lease_rolls_its_writes_back() {
    let (store, db) = ledger_database().await;
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let (ids, keys) = create_entries(&tasker, "frozen", 150, |_| false).await;
    let (mut child, running) = doomed_worker(db.url()).await;
    let pid = child.id().expect("running").to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, pid.as_str()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    // Another worker takes the frozen steps over once their leases end.
    let recovered = drain(&tasker, &ids).await;
    assert!(
        recovered >= 1,
        "no frozen step was taken over ({running} were running)"
    );
    // The frozen worker wakes up and tries to commit what it wrote: its
    // attempts are stale, so its writes roll back.
    signal("-CONT");
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.kill().await.expect("SIGKILL");
    let effects = effects(db.url()).await;
    exactly_one_effect_per_task(&effects, &keys);
    let retaken = effects.values().filter(|attempts| attempts[0] > 1).count();
    assert_eq!(
        retaken, recovered,
        "each taken-over step's one effect is from its second attempt"
    );
}

#[tokio::test]
async fn without_postgresql_a_transactional_step_is_refused_clearly() {
    // In-process: no database, so no transaction; the step says why.
    let run = tasker::testing::TaskRunner::new()
        .run::<Ledger>(Entry {
            key: "runner".into(),
            sleep_ms: 0,
            fail_first: false,
        })
        .await
        .unwrap();
    assert!(!run.is_complete());
    let error = run
        .step("record")
        .unwrap()
        .errors
        .last()
        .cloned()
        .expect("an error");
    assert_eq!(error.class(), "NoTransaction");
    assert!(
        error.message().contains("#[step(transactional)]"),
        "{error}"
    );

    // SQLite: the handler is not served, and the start-up report says why.
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let unsupported = &tasker.startup_report().unsupported;
    assert!(
        unsupported
            .iter()
            .any(|r| r.contains("tests/ledger") && r.contains("`record`")),
        "{unsupported:?}"
    );
    let err = tasker
        .create_task(Ledger::request(Entry {
            key: "sqlite".into(),
            sleep_ms: 0,
            fail_first: false,
        }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not served"), "{err}");
}
