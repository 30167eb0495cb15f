//! Resumable batches: a step saves checkpoints (`ctx.save_checkpoint`) as
//! it works through its input, and the attempt after a failure, a timeout
//! or a crash resumes at the last one. Saves are fenced by the attempt.
//! On both stores, in the in-process runner, and (PostgreSQL) with a
//! worker process killed mid-batch.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tasker::events::{Event, EventFilter, Subscriber, SubscriberError};
use tasker::prelude::*;
use tasker::store::{ClaimRequest, HandlerRecord, NewStep, NewTask, OperatorAction};
use tasker::testing::TaskRunner;
use tasker::{HeadStart, Priority, StepState, Store, TaskState};
use tasker_tests::handlers::{process_chunk, Batch, ParallelBatch, Progress, Rows, SplitRows};

const WAIT: Duration = Duration::from_secs(60);

/// A fresh chunk log in the temp directory.
fn log_path(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "tasker-batch-{name}-{}-{n}-{}.log",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

fn rows(rows: u64, chunk: u64, log: &str) -> Rows {
    Rows {
        rows,
        chunk,
        log: log.to_owned(),
        chunk_ms: 0,
        fail_after: None,
    }
}

/// How many rows the log says were processed, and whether every row of
/// `0..total` was processed at least once.
fn processed(log: &str, total: u64) -> (u64, bool) {
    let mut chunks = Rows::logged(log);
    let count = chunks.iter().map(|(start, end)| end - start).sum();
    chunks.sort();
    let mut covered = 0;
    for (start, end) in chunks {
        if start > covered {
            return (count, false);
        }
        covered = covered.max(end);
    }
    (count, covered == total)
}

fn sum(rows: u64) -> u64 {
    (0..rows).sum()
}

/// Collects `step.checkpointed` events.
#[derive(Clone, Default)]
struct Saves(Arc<Mutex<Vec<Event>>>);

impl Subscriber for Saves {
    fn events(&self) -> EventFilter {
        EventFilter::only(["step.checkpointed"])
    }

    async fn handle(&self, event: &Event) -> Result<(), SubscriberError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

async fn a_failed_attempt_resumes_from_its_checkpoint<S: Store>(store: S) {
    let saves = Saves::default();
    let tasker = tasker_tests::tasker(store, |b| b.subscriber(saves.clone())).await;
    let log = log_path("retry");
    let task = tasker
        .run_task(
            Batch::request(Rows {
                fail_after: Some(400),
                ..rows(1_000, 100, &log)
            }),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let step = &task.steps[0];
    assert_eq!(step.attempts, 2);
    let output: Progress = serde_json::from_value(step.output.clone().unwrap()).unwrap();
    assert_eq!(
        output,
        Progress {
            next: 1_000,
            sum: sum(1_000)
        }
    );
    // Attempt 1 failed right after saving at row 400: attempt 2 began
    // there, and no row was processed twice.
    assert_eq!(processed(&log, 1_000), (1_000, true));
    let stored = tasker
        .store()
        .checkpoint(step.step_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.attempt, stored.value["next"].clone()),
        (2, json!(1_000))
    );
    // The task's record shows it (API, GraphQL and the CLI read it there).
    assert_eq!(step.checkpoint.as_ref(), Some(&stored));
    // One event per save: 4 by attempt 1, 6 by attempt 2.
    let deadline = Instant::now() + Duration::from_secs(10);
    while saves.0.lock().unwrap().len() < 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let events = saves.0.lock().unwrap().clone();
    let attempts: Vec<_> = events.iter().map(|e| e.attempt().unwrap()).collect();
    assert_eq!(attempts, [1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
    assert!(events.iter().all(|e| e.step_name() == Some("import")
        && e.task_id() == Some(task.task_id)
        && e.data().unwrap()["bytes"].as_u64().unwrap() > 0));
    let _ = std::fs::remove_file(&log);
}

/// A batch whose attempts time out: each resumes where the last saved.
pub struct SlowBatch;

#[task_handler(namespace = "checkpoints", version = "1.0.0", context = Rows)]
impl SlowBatch {
    /// Like [`Batch`], under a timeout shorter than the whole batch.
    #[step(timeout = "700ms", retry_limit = 10)]
    async fn import(ctx: &StepContext<Rows>) -> StepResult<Progress> {
        let rows = ctx.context();
        let mut progress: Progress = ctx.checkpoint().await?.unwrap_or_default();
        while progress.next < rows.rows {
            let end = (progress.next + rows.chunk).min(rows.rows);
            progress.sum += process_chunk(rows, progress.next, end).await?;
            progress.next = end;
            ctx.save_checkpoint(&progress).await?;
        }
        Ok(progress)
    }
}

async fn a_timed_out_attempt_resumes_from_its_checkpoint<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(tasker::Registry::new().with::<SlowBatch>().unwrap())
    })
    .await;
    let log = log_path("timeout");
    // 20 chunks of 100 ms: no attempt of 700 ms gets through them all.
    let task = tasker
        .run_task(
            SlowBatch::request(Rows {
                chunk_ms: 100,
                ..rows(200, 10, &log)
            }),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let step = &task.steps[0];
    assert!(step.attempts >= 3, "{step:?}");
    let output: Progress = serde_json::from_value(step.output.clone().unwrap()).unwrap();
    assert_eq!(output.sum, sum(200));
    // A timeout may fall between a chunk's work and its save: then that
    // one chunk is redone, never more.
    let (count, covered) = processed(&log, 200);
    assert!(covered);
    let redone = count - 200;
    assert!(
        redone <= 10 * u64::from(step.attempts - 1),
        "{redone} rows redone in {} attempts",
        step.attempts
    );
    let _ = std::fs::remove_file(&log);
}

/// The store's own fence, without the engine: only the attempt that holds
/// the step saves; lease recovery and a newer attempt fence an older one
/// out, and an operator's action on the step ends its saves.
async fn saves_are_fenced_by_the_attempt<S: Store>(store: S) {
    let handler = Batch::handler();
    let handler_id = store
        .register_handler(&HandlerRecord::of(&handler))
        .await
        .unwrap();
    let task = |key: &str| NewTask {
        handler_id,
        context: json!({}),
        identity_key: Some(key.to_owned()),
        initiator: None,
        source_system: None,
        reason: None,
        tags: Vec::new(),
        priority: Priority::Normal,
        max_execution_time: None,
        steps: vec![NewStep {
            name: "import".to_owned(),
            index: 0,
            parents: vec![],
            max_attempts: 5,
            timeout: None,
            priority: Priority::Normal,
            head_start: HeadStart::NONE,
        }],
    };
    let ids = [handler_id];
    let claim = || ClaimRequest {
        handler_ids: &ids,
        limit: 1,
        lease: Duration::from_secs(30),
        worker: "w1",
        limits: &[],
    };
    let t1 = store.create_task(task("t1")).await.unwrap().task_id();
    let step_id = store.task(t1).await.unwrap().steps[0].step_id;
    // Nothing saved yet; a step not claimed cannot save.
    assert_eq!(store.checkpoint(step_id).await.unwrap(), None);
    assert!(!store
        .save_checkpoint(step_id, 1, &json!({"next": 1}))
        .await
        .unwrap());
    assert_eq!(store.checkpoint(step_id).await.unwrap(), None);

    let first = store.claim_steps(claim()).await.unwrap().remove(0);
    assert_eq!(first.attempt, 1);
    assert!(store
        .save_checkpoint(step_id, 1, &json!({"next": 10}))
        .await
        .unwrap());
    assert!(store
        .save_checkpoint(step_id, 1, &json!({"next": 20}))
        .await
        .unwrap());
    // An attempt that is not the step's: refused, nothing changed.
    assert!(!store
        .save_checkpoint(step_id, 2, &json!({"next": 99}))
        .await
        .unwrap());
    let saved = store.checkpoint(step_id).await.unwrap().unwrap();
    assert_eq!((saved.attempt, saved.value), (1, json!({"next": 20})));

    // Lease recovery takes the step from attempt 1: its saves are refused
    // from then on, and attempt 2 reads attempt 1's checkpoint.
    assert_eq!(store.recover_expired(true).await.unwrap(), 1);
    assert!(!store
        .save_checkpoint(step_id, 1, &json!({"next": 30}))
        .await
        .unwrap());
    let second = store.claim_steps(claim()).await.unwrap().remove(0);
    assert_eq!(second.attempt, 2);
    assert!(!store
        .save_checkpoint(step_id, 1, &json!({"next": 30}))
        .await
        .unwrap());
    assert_eq!(
        store.checkpoint(step_id).await.unwrap().unwrap().value,
        json!({"next": 20})
    );
    assert!(store
        .save_checkpoint(step_id, 2, &json!({"next": 40}))
        .await
        .unwrap());
    let saved = store.checkpoint(step_id).await.unwrap().unwrap();
    assert_eq!((saved.attempt, saved.value), (2, json!({"next": 40})));

    // Cancelled by an operator: attempt 2 no longer holds the step.
    store
        .operator_action(OperatorAction::CancelStep(step_id), "ops")
        .await
        .unwrap();
    assert!(!store
        .save_checkpoint(step_id, 2, &json!({"next": 50}))
        .await
        .unwrap());
    assert_eq!(
        store.checkpoint(step_id).await.unwrap().unwrap().value,
        json!({"next": 40})
    );
    // Purging the task deletes its checkpoint with it.
    let purged = store
        .purge_tasks(&tasker::store::PurgeFilter {
            states: vec![TaskState::Cancelled],
            finished_before: chrono::Utc::now() + chrono::Duration::hours(1),
            namespace: None,
            name: None,
            batch: 10,
        })
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(store.checkpoint(step_id).await.unwrap(), None);
}

async fn a_checkpoint_the_store_cannot_keep_fails_the_step<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(tasker::Registry::new().with::<NulBatch>().unwrap())
    })
    .await;
    let task = tasker
        .run_task(NulBatch::request(serde_json::Value::Null), WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Error);
    let step = &task.steps[0];
    // Permanent: one attempt, not four.
    assert_eq!((step.state, step.attempts), (StepState::Error, 1));
    let error = step.last_error.as_ref().unwrap();
    assert_eq!(error.class(), "InvalidCheckpoint");
    assert!(error.message().contains("checkpoint"), "{error}");
    assert!(error.message().contains("NUL"), "{error}");
    assert_eq!(tasker.store().checkpoint(step.step_id).await.unwrap(), None);
}

/// A step that saves a checkpoint with a NUL character.
pub struct NulBatch;

#[task_handler(namespace = "checkpoints", version = "1.0.0")]
impl NulBatch {
    /// Saves `"a\0b"`.
    #[step(retry_limit = 3)]
    async fn import(ctx: &StepContext) -> StepResult<u32> {
        ctx.save_checkpoint(&"a\0b").await?;
        Ok(1)
    }
}

/// The items of step `name` of `task`, in item order.
fn items<'a>(
    task: &'a tasker::store::TaskRecord,
    name: &str,
) -> Vec<&'a tasker::store::StepRecord> {
    let mut found: Vec<_> = task
        .steps
        .iter()
        .filter(|s| s.name == name && s.item_index.is_some())
        .collect();
    found.sort_by_key(|s| s.item_index);
    found
}

fn split(rows: Rows, partitions: u32) -> SplitRows {
    SplitRows { rows, partitions }
}

/// A parallel batch: four partitions, each one item of a fan-out with its
/// own checkpoints, converging in the join.
async fn a_parallel_batch_splits_and_converges<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| {
        b.registry(tasker::Registry::new().with::<ParallelBatch>().unwrap())
    })
    .await;
    let log = log_path("parallel");
    const ROWS: u64 = 20_000;
    let task = tasker
        .run_task(
            ParallelBatch::request(split(rows(ROWS, 500, &log), 4)),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let total = task.steps.iter().find(|s| s.name == "total").unwrap();
    assert_eq!(total.output, Some(json!(sum(ROWS))));
    // Every row once.
    assert_eq!(processed(&log, ROWS), (ROWS, true));
    let imports = items(&task, "import");
    assert_eq!(imports.len(), 4);
    for (i, import) in imports.iter().enumerate() {
        let part: tasker::batch::Partition =
            serde_json::from_value(import.item.clone().unwrap()).unwrap();
        assert_eq!((part.index, part.count), (i as u32, 4));
        assert_eq!(part.rows(), i as u64 * 5_000..(i as u64 + 1) * 5_000);
        let done: Progress = serde_json::from_value(import.output.clone().unwrap()).unwrap();
        assert_eq!(done.next, part.end);
        assert_eq!(done.sum, part.rows().sum::<u64>());
        // Its own checkpoint, at its end.
        let saved = tasker
            .store()
            .checkpoint(import.step_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(saved.value["next"], json!(part.end));
    }
    tasker_tests::assert_legal(&tasker.store().transitions(task.task_id).await.unwrap());
    let _ = std::fs::remove_file(&log);
}

tasker_tests::on_both_stores!(
    a_failed_attempt_resumes_from_its_checkpoint,
    a_timed_out_attempt_resumes_from_its_checkpoint,
    saves_are_fenced_by_the_attempt,
    a_checkpoint_the_store_cannot_keep_fails_the_step,
    a_parallel_batch_splits_and_converges,
);

#[tokio::test]
async fn the_runner_resumes_a_retried_step_from_its_checkpoint() {
    let log = log_path("runner");
    let run = TaskRunner::new()
        .run::<Batch>(Rows {
            fail_after: Some(30),
            ..rows(100, 10, &log)
        })
        .await
        .unwrap();
    assert!(run.is_complete());
    assert_eq!(
        run.output::<Progress>("import").unwrap(),
        Progress {
            next: 100,
            sum: sum(100)
        }
    );
    assert_eq!(run.attempts().len(), 2);
    assert_eq!(processed(&log, 100), (100, true));
    let _ = std::fs::remove_file(&log);
}

/// After a kill: the batch task of `rows` rows completed in a second
/// attempt with the full sum, every row was processed, at most one chunk
/// twice, and the second attempt resumed at or after `at_kill` (the
/// checkpoint seen before the kill): the chunks before it were processed
/// once, by the first.
fn assert_resumed_once(
    task: &tasker::store::TaskRecord,
    log: &str,
    rows: u64,
    chunk: u64,
    at_kill: &tasker::store::Checkpoint,
) {
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let step = &task.steps[0];
    assert_eq!(step.attempts, 2);
    let output: Progress = serde_json::from_value(step.output.clone().unwrap()).unwrap();
    assert_eq!(
        output,
        Progress {
            next: rows,
            sum: sum(rows)
        }
    );
    let (count, covered) = processed(log, rows);
    assert!(covered, "a row was never processed");
    let redone = count - rows;
    println!("{redone} rows processed twice (chunk: {chunk})");
    assert!(redone <= chunk, "{redone} rows redone, more than one chunk");
    let resumed_after = at_kill.value["next"].as_u64().unwrap();
    let before = Rows::logged(log)
        .into_iter()
        .filter(|(start, _)| *start < resumed_after)
        .count() as u64;
    assert_eq!(
        before,
        resumed_after / chunk,
        "the second attempt started over"
    );
}

/// A worker process is SIGKILLed in the middle of a 100,000-row batch;
/// another worker takes the step over after the lease and resumes at the
/// last checkpoint: every row is processed, at most one chunk twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_killed_mid_way_resumes_from_its_checkpoint() {
    const ROWS: u64 = 100_000;
    const CHUNK: u64 = 1_000;
    let (store, db) = tasker_tests::postgres().await;
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let log = log_path("crash");
    let task_id = tasker
        .create_task(Batch::request(Rows {
            chunk_ms: 30,
            ..rows(ROWS, CHUNK, &log)
        }))
        .await
        .unwrap()
        .task_id();
    let step_id = tasker.task(task_id).await.unwrap().steps[0].step_id;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasker-test-worker"))
        .arg(db.url())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the test worker starts");
    // Kill it once it has saved a checkpoint past a fifth of the rows.
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        if let Some(saved) = tasker.store().checkpoint(step_id).await.unwrap() {
            if saved.value["next"].as_u64().unwrap() >= ROWS / 5 {
                break saved;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the worker process never got a fifth of the way"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    child.kill().await.expect("SIGKILL");
    let killed_at = processed(&log, ROWS).0;
    println!(
        "killed the worker after {killed_at} rows, checkpoint at {}",
        at_kill.value["next"]
    );
    assert!(killed_at < ROWS, "the batch was not killed mid-way");

    let worker = tasker.start_worker();
    let task = tasker.wait_for_task(task_id, WAIT).await.unwrap();
    worker.shutdown().await;
    assert_resumed_once(&task, &log, ROWS, CHUNK, &at_kill);
    let saved = tasker.store().checkpoint(step_id).await.unwrap().unwrap();
    assert_eq!(saved.attempt, 2);
    let _ = std::fs::remove_file(&log);
}

/// A worker process is SIGKILLed in the middle of a 100,000-row batch
/// split among four partitions; another worker takes the partitions it
/// held over after their lease, and each resumes at its own checkpoint:
/// every row is processed, at most one chunk per partition twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_batch_killed_mid_way_resumes_each_partition() {
    const ROWS: u64 = 100_000;
    const CHUNK: u64 = 1_000;
    const PARTITIONS: u32 = 4;
    let (store, db) = tasker_tests::postgres().await;
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let log = log_path("parallel-crash");
    let context = split(
        Rows {
            chunk_ms: 30,
            ..rows(ROWS, CHUNK, &log)
        },
        PARTITIONS,
    );
    let task_id = tasker
        .create_task(ParallelBatch::request(context))
        .await
        .unwrap()
        .task_id();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasker-test-worker"))
        .arg(db.url())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the test worker starts");
    // Kill it once the partitions' checkpoints are past a fifth of the rows.
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let task = tasker.task(task_id).await.unwrap();
        let mut saved = Vec::new();
        for import in items(&task, "import") {
            let part: tasker::batch::Partition =
                serde_json::from_value(import.item.clone().unwrap()).unwrap();
            let next = tasker
                .store()
                .checkpoint(import.step_id)
                .await
                .unwrap()
                .map_or(part.start, |c| c.value["next"].as_u64().unwrap());
            saved.push((part, next));
        }
        let done: u64 = saved.iter().map(|(part, next)| next - part.start).sum();
        if done >= ROWS / 5 {
            break saved;
        }
        assert!(
            Instant::now() < deadline,
            "the worker process never got a fifth of the way"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    child.kill().await.expect("SIGKILL");
    let killed_at = processed(&log, ROWS).0;
    println!("killed the worker after {killed_at} rows, checkpoints at {at_kill:?}");
    assert!(killed_at < ROWS, "the batch was not killed mid-way");

    let worker = tasker.start_worker();
    let task = tasker.wait_for_task(task_id, WAIT).await.unwrap();
    worker.shutdown().await;
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let total = task.steps.iter().find(|s| s.name == "total").unwrap();
    assert_eq!(total.output, Some(json!(sum(ROWS))));
    let (count, covered) = processed(&log, ROWS);
    assert!(covered, "a row was never processed");
    let redone = count - ROWS;
    println!("{redone} rows processed twice (chunk: {CHUNK}, partitions: {PARTITIONS})");
    assert!(
        redone <= CHUNK * u64::from(PARTITIONS),
        "{redone} rows redone, more than one chunk per partition"
    );
    // No partition started over: the rows before its checkpoint at the
    // kill were processed once.
    let logged = Rows::logged(&log);
    for (part, next) in &at_kill {
        let before = logged
            .iter()
            .filter(|(start, _)| (part.start..*next).contains(start))
            .count() as u64;
        assert_eq!(
            before,
            (next - part.start).div_ceil(CHUNK),
            "partition {} started over",
            part.index
        );
    }
    tasker_tests::assert_legal(&tasker.store().transitions(task_id).await.unwrap());
    let _ = std::fs::remove_file(&log);
}

/// The embedded default: a worker process on a SQLite file is SIGKILLed in
/// the middle of a batch; the next process to open the file recovers the
/// step at start-up and resumes it at the last checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_on_sqlite_resumes_after_the_process_is_killed() {
    const ROWS: u64 = 20_000;
    const CHUNK: u64 = 500;
    let dir = std::env::temp_dir().join(format!(
        "tasker-batch-sqlite-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tasker.sqlite");
    let log = log_path("sqlite-crash");
    let (task_id, step_id) = {
        let store = tasker_diesel::SqliteStore::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        let tasker = tasker_tests::tasker(store, |b| b).await;
        let task_id = tasker
            .create_task(Batch::request(Rows {
                chunk_ms: 30,
                ..rows(ROWS, CHUNK, &log)
            }))
            .await
            .unwrap()
            .task_id();
        let step_id = tasker.task(task_id).await.unwrap().steps[0].step_id;
        (task_id, step_id)
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasker-test-worker"))
        .arg(format!("sqlite://{}", path.display()))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the test worker starts");
    // Watch from a read-only view (the worker owns the file).
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        if let Ok(reader) = tasker_diesel::SqliteStore::open_read_only(&path).await {
            if let Ok(Some(saved)) = reader.checkpoint(step_id).await {
                if saved.value["next"].as_u64().unwrap() >= ROWS / 4 {
                    break saved;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the worker never got a quarter of the way"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().await.expect("SIGKILL");
    let _ = child.wait().await;
    assert!(
        processed(&log, ROWS).0 < ROWS,
        "the batch was not killed mid-way"
    );

    // The next process: opening the file recovers the step, a worker resumes it.
    let store = tasker_diesel::SqliteStore::open(&path).await.unwrap();
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let worker = tasker.start_worker();
    let task = tasker.wait_for_task(task_id, WAIT).await.unwrap();
    worker.shutdown().await;
    assert_resumed_once(&task, &log, ROWS, CHUNK, &at_kill);
    drop(tasker);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_dir_all(&dir);
}
