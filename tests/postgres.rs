//! PostgreSQL only: several workers on one database, a worker process
//! killed mid-step, a configured schema, and a database of tasker's own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tasker::prelude::*;
use tasker::{StepState, Store, TaskState};
use tasker_diesel::testing::TestDatabase;
use tasker_diesel::{PgOptions, PgStore};
use tasker_tests::handlers::{Diamond, Job, Seed, SlowJob};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_workers_drain_diamonds_exactly_once() {
    const TASKS: i64 = 300;
    let db = TestDatabase::create().await.unwrap();
    let first = PgStore::connect(db.url()).await.unwrap();
    first.migrate().await.unwrap();

    // Three engines, each with its own pool, as three processes would have.
    let mut engines = vec![tasker_tests::tasker(first, |b| b).await];
    for _ in 0..2 {
        let store = PgStore::connect_with(
            db.url(),
            PgOptions {
                pool_size: 4,
                ..PgOptions::default()
            },
        )
        .await
        .unwrap();
        engines.push(tasker_tests::tasker(store, |b| b.configure(|c| c.concurrency = 8)).await);
    }
    let mut ids = Vec::new();
    for value in 0..TASKS {
        ids.push(
            engines[0]
                .create_task(Diamond::request(Seed { value }))
                .await
                .unwrap()
                .task_id(),
        );
    }
    let started = Instant::now();
    let workers: Vec<_> = engines.iter().map(|e| e.start_worker()).collect();
    for id in &ids {
        let task = engines[0]
            .wait_for_task(*id, Duration::from_secs(120))
            .await
            .unwrap();
        assert_eq!(task.state, TaskState::Complete, "task {id}");
    }
    let elapsed = started.elapsed();
    let mut claimed_by_worker = Vec::new();
    for worker in workers {
        claimed_by_worker.push(worker.shutdown().await);
    }
    println!(
        "{} steps in {elapsed:?} ({:.0} steps/s); per worker: {claimed_by_worker:?}",
        TASKS * 4,
        (TASKS * 4) as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        claimed_by_worker.iter().map(|c| c.completed).sum::<u64>(),
        TASKS as u64 * 4
    );
    assert!(claimed_by_worker
        .iter()
        .all(|c| c.stale == 0 && c.failed == 0));
    assert!(
        claimed_by_worker.iter().filter(|c| c.completed > 0).count() >= 2,
        "work was shared: {claimed_by_worker:?}"
    );

    for (value, id) in ids.iter().enumerate() {
        let task = engines[0].task(*id).await.unwrap();
        let d = task.steps.iter().find(|s| s.name == "d").unwrap();
        let value = value as i64;
        assert_eq!(d.output, Some(serde_json::json!((value + 1) + value * 10)));
        let transitions = engines[0].transitions(*id).await.unwrap();
        // Each step completed exactly once, on its first attempt.
        let mut completes: HashMap<_, usize> = HashMap::new();
        for t in transitions
            .iter()
            .filter(|t| t.to_state == "complete" && t.step_id.is_some())
        {
            *completes.entry(t.step_id).or_default() += 1;
        }
        assert_eq!(completes.len(), 4);
        assert!(completes.values().all(|n| *n == 1));
        // The join started only after both parents completed.
        let seq_of = |name: &str, to: &str| {
            let step = task.steps.iter().find(|s| s.name == name).unwrap().step_id;
            transitions
                .iter()
                .find(|t| t.step_id == Some(step) && t.to_state == to)
                .unwrap()
                .seq
        };
        assert!(seq_of("d", "in_progress") > seq_of("b", "complete"));
        assert!(seq_of("d", "in_progress") > seq_of("c", "complete"));
        // Only legal transitions.
        for t in &transitions {
            if let (Some(from), Some(_)) = (&t.from_state, t.step_id) {
                let from: StepState = from.parse().unwrap();
                assert!(from.can_transition_to(t.to_state.parse().unwrap()), "{t:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_steps_are_finished_by_another_after_the_lease() {
    const TASKS: usize = 12;
    let (store, db) = tasker_tests::postgres().await;
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let mut ids = Vec::new();
    for _ in 0..TASKS {
        ids.push(
            tasker
                .create_task(SlowJob::request(Job { sleep_ms: 1500 }))
                .await
                .unwrap()
                .task_id(),
        );
    }
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasker-test-worker"))
        .arg(db.url())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the test worker starts");
    // Wait until the doomed worker holds steps, then kill it mid-step.
    let deadline = Instant::now() + Duration::from_secs(30);
    let running = loop {
        let mut running = 0;
        for id in &ids {
            let task = tasker.task(*id).await.unwrap();
            running += task
                .steps
                .iter()
                .filter(|s| s.state == StepState::InProgress)
                .count();
        }
        if running >= 4 {
            break running;
        }
        assert!(
            Instant::now() < deadline,
            "the worker process never claimed steps"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().await.expect("SIGKILL");
    println!("killed the worker holding {running} running steps");

    let worker = tasker.start_worker();
    for id in &ids {
        let task = tasker
            .wait_for_task(*id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(task.state, TaskState::Complete, "task {id}");
    }
    worker.shutdown().await;

    let mut recovered = 0;
    for id in &ids {
        let transitions = tasker.transitions(*id).await.unwrap();
        let mut completes: HashMap<_, usize> = HashMap::new();
        for t in transitions
            .iter()
            .filter(|t| t.to_state == "complete" && t.step_id.is_some())
        {
            *completes.entry(t.step_id).or_default() += 1;
            assert_ne!(
                t.actor.as_deref().unwrap_or_default().split(':').next(),
                Some("doomed"),
                "the killed worker recorded nothing"
            );
        }
        assert!(
            completes.values().all(|n| *n == 1),
            "a step completed twice: {transitions:?}"
        );
        recovered += transitions
            .iter()
            .filter(|t| t.actor.as_deref() == Some("lease-recovery") && t.to_state == "ready")
            .count();
    }
    assert!(
        recovered >= running,
        "every killed step was recovered ({recovered} of {running})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_in_a_configured_schema_of_a_separate_database() {
    // A database of tasker's own, and a schema inside it.
    let db = TestDatabase::create().await.unwrap();
    let store = PgStore::connect_with(
        db.url(),
        PgOptions {
            schema: "workflows".into(),
            ..PgOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!store.migrations_current().await.unwrap());
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent
    assert!(store.migrations_current().await.unwrap());
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let worker = tasker.start_worker();
    let id = tasker
        .create_task(Diamond::request(Seed { value: 2 }))
        .await
        .unwrap()
        .task_id();
    assert_eq!(
        tasker
            .wait_for_task(id, Duration::from_secs(20))
            .await
            .unwrap()
            .state,
        TaskState::Complete
    );
    worker.shutdown().await;

    // The tables live in `workflows`, not in `public`.
    let public = PgStore::connect(db.url()).await.unwrap();
    assert!(!public.migrations_current().await.unwrap());
    let err = public.task(id).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let err = PgStore::connect("postgres://postgres:secret@127.0.0.1:1/nothing")
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(
            "cannot connect to PostgreSQL at postgres://postgres:***@127.0.0.1:1/nothing"
        ),
        "{message}"
    );
    assert!(!message.contains("secret"));
}

/// The server's autovacuum setting is reported, and with it off (as on
/// this project's CI server) housekeeping vacuums the queue tables once
/// dead rows pile up; with it on, housekeeping leaves them to autovacuum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_vacuums_the_queue_when_autovacuum_is_off() {
    use diesel::QueryableByName;
    use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let (store, db) = tasker_tests::postgres().await;
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let requests = (0..3_000)
        .map(|n| Diamond::request(Seed { value: n }))
        .collect();
    tasker.create_tasks(requests).await.unwrap();
    let mut conn = diesel_async::AsyncPgConnection::establish(db.url())
        .await
        .unwrap();
    // 12,000 step rows updated twice: 24,000 dead row versions.
    conn.batch_execute(
        "UPDATE tasker_workflow_steps SET updated_at = now();
         UPDATE tasker_workflow_steps SET updated_at = now();",
    )
    .await
    .unwrap();
    let mut read = async |sql: &str| -> i64 {
        let _ = conn.batch_execute("SELECT pg_stat_clear_snapshot()").await;
        diesel::sql_query(sql)
            .get_result::<Row>(&mut conn)
            .await
            .unwrap()
            .n
    };
    let autovacuum_on =
        read("SELECT (current_setting('autovacuum') = 'on')::int::bigint AS n").await == 1;
    let vacuums = "SELECT (vacuum_count + autovacuum_count)::bigint AS n FROM pg_stat_user_tables \
                   WHERE relname = 'tasker_workflow_steps'";
    let dead =
        "SELECT n_dead_tup AS n FROM pg_stat_user_tables WHERE relname = 'tasker_workflow_steps'";
    // Backends report their statistics up to seconds late; wait for them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while read(dead).await < 20_000 {
        assert!(
            Instant::now() < deadline,
            "the dead rows were never counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = read(vacuums).await;
    let warnings = tasker.store().warnings().await.unwrap();
    tasker.store().housekeeping().await.unwrap();
    let after = read(vacuums).await;
    if autovacuum_on {
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(after, before, "autovacuum's job, not ours");
    } else {
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("autovacuum is off"), "{warnings:?}");
        assert_eq!(after, before + 1, "housekeeping vacuumed the steps table");
        assert!(read(dead).await < 5_000);
        assert_eq!(
            tasker.startup_report().warnings,
            warnings,
            "reported at start-up too"
        );
        // Nothing left to do: the next run is a no-op.
        tasker.store().housekeeping().await.unwrap();
        assert_eq!(read(vacuums).await, after);
    }
}
