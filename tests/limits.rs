//! Limits held across workers: concurrency and rate, on both stores, and a
//! concurrency limit held by three worker processes on one PostgreSQL
//! database. What ran at once is read from the audit trail: its sequence
//! follows commit order for claims under a limit (see `pg/claim.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tasker::config::Config;
use tasker::store::Transition;
use tasker::{Store, TaskHandler, TaskId, TaskState, Tasker};
use tasker_tests::assert_legal;
use tasker_tests::handlers::{ApiCall, Gauge, Job, SlowJob, Throttled};

const WAIT: Duration = Duration::from_secs(60);

fn config(yaml: &str) -> Config {
    Config::from_yaml_str(yaml, "limits.yaml", |_| None).expect("a valid configuration")
}

/// Creates `n` tasks of `Throttled`.
async fn throttled<S: Store>(tasker: &Tasker<S>, n: usize, sleep_ms: u64) -> Vec<TaskId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let request = Throttled::request(ApiCall { sleep_ms });
        ids.push(tasker.create_task(request).await.unwrap().task_id());
    }
    ids
}

/// Waits for every task to complete; returns all their transitions, with
/// the names of their steps, checked for legality.
async fn finished<S: Store>(
    tasker: &Tasker<S>,
    ids: &[TaskId],
) -> (Vec<Transition>, HashMap<tasker::StepId, String>) {
    let mut transitions = Vec::new();
    let mut names = HashMap::new();
    for id in ids {
        let task = tasker.wait_for_task(*id, WAIT).await.unwrap();
        assert_eq!(task.state, TaskState::Complete, "{task:?}");
        names.extend(task.steps.iter().map(|s| (s.step_id, s.name.clone())));
        let trail = tasker.transitions(*id).await.unwrap();
        assert_legal(&trail);
        transitions.extend(trail);
    }
    (transitions, names)
}

/// The most steps named in `steps` that were in progress at once, by the
/// audit trail's order.
fn most_at_once(
    transitions: &[Transition],
    names: &HashMap<tasker::StepId, String>,
    steps: &[&str],
) -> usize {
    let mut rows: Vec<&Transition> = transitions
        .iter()
        .filter(|t| {
            t.step_id
                .and_then(|id| names.get(&id))
                .is_some_and(|n| steps.contains(&n.as_str()))
        })
        .collect();
    rows.sort_by_key(|t| t.seq);
    let (mut now, mut most) = (0usize, 0usize);
    for t in rows {
        if t.to_state == "in_progress" {
            now += 1;
            most = most.max(now);
        } else if t.from_state.as_deref() == Some("in_progress") {
            now -= 1;
        }
    }
    most
}

async fn a_step_limit_holds_however_many_slots_a_worker_has<S: Store>(store: S) {
    let gauge = Arc::new(Gauge::default());
    let settings = config(
        "handlers:\n  tests/throttled:\n    steps:\n      call_api:\n        limit: {concurrency: 2}\n",
    );
    let tasker = tasker_tests::tasker(store, |b| {
        b.settings(settings)
            .resource(gauge.clone())
            .configure(|c| c.concurrency = 8)
    })
    .await;
    let ids = throttled(&tasker, 12, 60).await;
    let worker = tasker.start_worker();
    let (transitions, names) = finished(&tasker, &ids).await;
    worker.shutdown().await;
    assert_eq!(
        gauge.most.load(Ordering::SeqCst),
        2,
        "the step ran two at once, no more"
    );
    assert_eq!(most_at_once(&transitions, &names, &["call_api"]), 2);
    // The other steps are not held: `prepare` of many tasks ran at once.
    assert!(most_at_once(&transitions, &names, &["prepare"]) > 2);
}

async fn a_handler_limit_holds_its_steps_together_and_no_other<S: Store>(store: S) {
    let settings = config("handlers:\n  tests/throttled:\n    limit: {concurrency: 1}\n");
    let tasker = tasker_tests::tasker(store, |b| {
        b.settings(settings).configure(|c| c.concurrency = 8)
    })
    .await;
    let ids = throttled(&tasker, 5, 30).await;
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let request = SlowJob::request(Job { sleep_ms: 300 });
        jobs.push(tasker.create_task(request).await.unwrap().task_id());
    }
    let worker = tasker.start_worker();
    let (transitions, names) = finished(&tasker, &ids).await;
    let (job_transitions, job_names) = finished(&tasker, &jobs).await;
    worker.shutdown().await;
    let all = ["prepare", "call_api", "record"];
    assert_eq!(most_at_once(&transitions, &names, &all), 1);
    assert!(
        most_at_once(&job_transitions, &job_names, &["work"]) >= 2,
        "unlimited handlers run beside the limited one"
    );
}

async fn a_rate_limit_spaces_starts<S: Store>(store: S) {
    let settings = config(
        "engine:\n  limits:\n    api:\n      per_second: 20\n      burst: 2\n\
         handlers:\n  tests/throttled:\n    steps:\n      call_api:\n        limit: api\n",
    );
    let tasker = tasker_tests::tasker(store, |b| {
        b.settings(settings).configure(|c| c.concurrency = 8)
    })
    .await;
    const TASKS: usize = 20;
    let ids = throttled(&tasker, TASKS, 0).await;
    let worker = tasker.start_worker();
    let (transitions, names) = finished(&tasker, &ids).await;
    worker.shutdown().await;
    let mut starts: Vec<_> = transitions
        .iter()
        .filter(|t| t.to_state == "in_progress")
        .filter(|t| t.step_id.and_then(|id| names.get(&id)).map(String::as_str) == Some("call_api"))
        .map(|t| t.at)
        .collect();
    starts.sort();
    assert_eq!(starts.len(), TASKS);
    // 2 at once, then one per 50 ms: 18 more take at least 0.9 s. Allow
    // for the clock's granularity, not for a faster rate.
    let span = (starts[TASKS - 1] - starts[0]).to_std().unwrap();
    assert!(span >= Duration::from_millis(800), "20 starts in {span:?}");
    // No half second holds more than the burst and the rate allow.
    for (i, first) in starts.iter().enumerate() {
        let within = starts[i..]
            .iter()
            .take_while(|t| (**t - *first).to_std().unwrap() < Duration::from_millis(500))
            .count();
        assert!(
            within <= 2 + 10 + 1,
            "{within} starts within 500 ms of {first}"
        );
    }
}

/// A limit set in code is checked like one from the file.
#[tokio::test]
async fn a_bad_limit_in_code_refuses_to_start() {
    let store = tasker_tests::sqlite().await;
    let settings = config("handlers:\n  tests/throttled:\n    limit: api\n");
    let error = Tasker::builder(store)
        .settings(settings)
        .configure(|c| {
            c.limits.insert("api".into(), tasker::Limit::concurrency(0));
        })
        .build()
        .await
        .err()
        .expect("refused");
    assert_eq!(
        error.to_string(),
        "invalid configuration: EngineConfig::limits: engine.limits.api: limit `api` has \
         `concurrency: 0`: give at least 1"
    );
}

tasker_tests::on_both_stores!(
    a_step_limit_holds_however_many_slots_a_worker_has,
    a_handler_limit_holds_its_steps_together_and_no_other,
    a_rate_limit_spaces_starts,
);

/// Three worker processes, each with 8 slots, share one database and a
/// limit of 2 on `call_api`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_two_holds_across_three_worker_processes() {
    const TASKS: usize = 30;
    let (store, db) = tasker_tests::postgres().await;
    let dir = std::env::temp_dir().join(format!("tasker-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tasker.yaml");
    std::fs::write(
        &file,
        "engine:\n  concurrency: 8\n  limits:\n    fragile-api:\n      concurrency: 2\n\
         handlers:\n  tests/throttled:\n    steps:\n      call_api:\n        limit: fragile-api\n",
    )
    .unwrap();
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let ids = throttled(&tasker, TASKS, 100).await;
    let mut workers = Vec::new();
    for _ in 0..3 {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasker-test-worker"))
            .arg(db.url())
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the test worker starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let ready = tokio::time::timeout(WAIT, lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref line))) if line == "ready"),
            "{ready:?}"
        );
        workers.push(child);
    }
    let (transitions, names) = finished(&tasker, &ids).await;
    for mut child in workers {
        child.kill().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        most_at_once(&transitions, &names, &["call_api"]),
        2,
        "never more than two at once, across the processes"
    );
    let claimers: HashSet<_> = transitions
        .iter()
        .filter(|t| t.to_state == "in_progress")
        .filter(|t| t.step_id.and_then(|id| names.get(&id)).map(String::as_str) == Some("call_api"))
        .filter_map(|t| t.actor.clone())
        .collect();
    assert!(
        claimers.len() >= 2,
        "the limited step ran on several processes: {claimers:?}"
    );
}
