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
