//! A worker: claims ready steps, runs them with bounded concurrency under a
//! timeout, and records the outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::engine::{CoordinationMode, Tasker};
use crate::handler::StepInput;
use crate::step::{StepError, TaskId};
use crate::store::{ClaimRequest, ClaimedStep, Completion, Outcome, StepId, Store};

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerStats {
    claim_queries: AtomicU64,
    claimed: AtomicU64,
    completed: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    stale: AtomicU64,
}

/// A snapshot of [`WorkerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Claim round trips made (including those that found nothing).
    pub claim_queries: u64,
    /// Attempts started.
    pub claimed: u64,
    /// Attempts that completed their step.
    pub completed: u64,
    /// Attempts that failed and were scheduled for retry.
    pub retried: u64,
    /// Attempts that failed their step for good.
    pub failed: u64,
    /// Results discarded because the claim was no longer this worker's.
    pub stale: u64,
}

impl WorkerStats {
    /// The current counts.
    pub fn counts(&self) -> WorkerCounts {
        WorkerCounts {
            claim_queries: self.claim_queries.load(Ordering::Relaxed),
            claimed: self.claimed.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
        }
    }
}

/// A running worker. Dropping it does not stop it; call
/// [`Worker::shutdown`].
pub struct Worker {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
    stats: Arc<WorkerStats>,
}

/// Leases held by this worker: step -> attempt.
type Leases = Arc<Mutex<HashMap<StepId, u32>>>;

impl Worker {
    pub(crate) fn start<S: Store>(tasker: Tasker<S>) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(WorkerStats::default());
        let handle = tokio::spawn(run(tasker, stopped, Arc::clone(&stats)));
        Worker {
            stop,
            handle,
            stats,
        }
    }

    /// Counters so far.
    pub fn counts(&self) -> WorkerCounts {
        self.stats.counts()
    }

    /// Stops claiming, waits for the steps in flight to finish and be
    /// recorded, and returns the final counts.
    pub async fn shutdown(self) -> WorkerCounts {
        let _ = self.stop.send(true);
        if let Err(e) = self.handle.await {
            tracing::error!("worker task ended abnormally: {e}");
        }
        self.stats.counts()
    }
}

async fn run<S: Store>(
    tasker: Tasker<S>,
    mut stopped: watch::Receiver<bool>,
    stats: Arc<WorkerStats>,
) {
    let config = tasker.config().clone();
    let leases: Leases = Arc::default();
    let mut in_flight = JoinSet::new();
    let mut maintenance = tokio::time::interval(config.lease / 3);
    maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(worker = %config.worker_id, mode = ?tasker.mode(), "worker started");

    loop {
        if *stopped.borrow() {
            break;
        }
        let free = config.concurrency.saturating_sub(in_flight.len());
        // Claim in batches: wait for enough free slots (or an idle worker)
        // rather than making one round trip per finished step.
        let worth_claiming = (config.claim_batch as usize)
            .min(config.concurrency / 2)
            .max(1);
        let mut claimed_any = false;
        if free >= worth_claiming || in_flight.is_empty() {
            let request = ClaimRequest {
                handler_ids: &tasker.inner.served_ids,
                limit: config.claim_batch.min(free as u32).max(1),
                lease: config.lease,
                worker: &config.worker_id,
            };
            stats.claim_queries.fetch_add(1, Ordering::Relaxed);
            match tasker.store().claim_steps(request).await {
                Ok(claimed) => {
                    claimed_any = !claimed.is_empty();
                    stats
                        .claimed
                        .fetch_add(claimed.len() as u64, Ordering::Relaxed);
                    for step in claimed {
                        leases
                            .lock()
                            .expect("lease map")
                            .insert(step.step_id, step.attempt);
                        in_flight.spawn(attempt(
                            tasker.clone(),
                            step,
                            Arc::clone(&leases),
                            Arc::clone(&stats),
                        ));
                    }
                }
                Err(e) => {
                    tracing::error!("claiming steps failed: {e}; retrying after the poll interval");
                    tokio::time::sleep(config.poll_interval).await;
                }
            }
        }
        if claimed_any && config.concurrency - in_flight.len() >= worth_claiming {
            // More may be waiting: claim again at once.
            continue;
        }
        tokio::select! {
            _ = stopped.changed() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = tasker.store().wait_for_work(config.poll_interval), if free >= worth_claiming || in_flight.is_empty() => {}
            _ = maintenance.tick() => maintain(&tasker, &leases).await,
        }
    }

    tracing::info!(worker = %config.worker_id, in_flight = in_flight.len(), "worker draining");
    while in_flight.join_next().await.is_some() {}
    tracing::info!(worker = %config.worker_id, "worker stopped");
}

/// Renews the leases of running steps and, in distributed mode, returns
/// other workers' expired steps to the queue.
async fn maintain<S: Store>(tasker: &Tasker<S>, leases: &Leases) {
    let held: Vec<(StepId, u32)> = leases
        .lock()
        .expect("lease map")
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    if !held.is_empty() {
        if let Err(e) = tasker
            .store()
            .renew_leases(&held, tasker.config().lease)
            .await
        {
            tracing::warn!("renewing {} leases failed: {e}", held.len());
        }
    }
    if tasker.mode() == CoordinationMode::Distributed {
        match tasker.store().recover_expired(false).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!("recovered {n} steps whose worker stopped renewing its lease"),
            Err(e) => tracing::warn!("recovering expired leases failed: {e}"),
        }
    }
}

/// Runs one claimed attempt and records its outcome.
async fn attempt<S: Store>(
    tasker: Tasker<S>,
    step: ClaimedStep,
    leases: Leases,
    stats: Arc<WorkerStats>,
) {
    let started = Instant::now();
    let step_id = step.step_id;
    let attempt_no = step.attempt;
    let outcome = run_step(&tasker, step.clone()).await;
    let outcome = match outcome {
        Ok(output) => Outcome::Complete(output),
        Err(error) if error.is_retryable() && step.attempt < step.max_attempts => {
            let delay = error
                .retry_after()
                .unwrap_or_else(|| tasker.config().backoff.delay(step.attempt));
            Outcome::Retry { error, delay }
        }
        Err(error) => Outcome::Fail(error),
    };
    let counter = match &outcome {
        Outcome::Complete(_) => &stats.completed,
        Outcome::Retry { .. } => &stats.retried,
        Outcome::Fail(_) => &stats.failed,
    };
    match &outcome {
        Outcome::Complete(_) => {
            tracing::debug!(task = %step.task_id, step = %step.name, attempt = attempt_no, "step completed")
        }
        Outcome::Retry { error, delay } => {
            tracing::info!(task = %step.task_id, step = %step.name, attempt = attempt_no, ?delay, "step failed, will retry: {error}")
        }
        Outcome::Fail(error) => {
            tracing::warn!(task = %step.task_id, step = %step.name, attempt = attempt_no, "step failed for good: {error}")
        }
    }
    let completion = Completion {
        step_id,
        attempt: attempt_no,
        outcome,
        worker: tasker.config().worker_id.clone(),
        duration: started.elapsed(),
    };
    // Record it; a store hiccup must not lose a finished attempt, so retry a
    // few times before leaving it to lease recovery.
    let mut tries = 0;
    loop {
        match tasker
            .store()
            .complete_steps(std::slice::from_ref(&completion))
            .await
        {
            Ok(results) => {
                if results.first().is_some_and(|r| r.applied) {
                    counter.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.stale.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(task = %step.task_id, step = %step.name, attempt = attempt_no, "result discarded: the step was reclaimed, cancelled or resolved meanwhile");
                }
                break;
            }
            Err(e) if tries < 5 => {
                tries += 1;
                tracing::warn!("recording step {step_id} failed (try {tries}): {e}");
                tokio::time::sleep(Duration::from_millis(100 * tries)).await;
            }
            Err(e) => {
                tracing::error!("recording step {step_id} failed: {e}; its lease will expire and it will run again");
                break;
            }
        }
    }
    leases.lock().expect("lease map").remove(&step_id);
}

/// Runs the step's code on its own task (so a panic is caught) under its
/// timeout.
async fn run_step<S: Store>(
    tasker: &Tasker<S>,
    step: ClaimedStep,
) -> Result<serde_json::Value, StepError> {
    let Some(handler) = tasker.handler_by_id(step.handler_id) else {
        return Err(StepError::permanent(format!(
            "no handler with id {} is linked into this worker",
            step.handler_id
        )));
    };
    let index = step.index as usize;
    let Some(definition) = handler.steps().get(index).filter(|d| d.name() == step.name) else {
        return Err(StepError::permanent(format!(
            "handler {} has no step `{}` at position {index}",
            handler.key(),
            step.name
        )));
    };
    let config = definition.config(&tasker.config().step_defaults);
    let input = StepInput {
        task_id: TaskId(step.task_id.0),
        step_name: definition.name(),
        attempt: step.attempt,
        context: Arc::new(step.context),
        dependencies: step.inputs,
        config,
        resources: tasker.inner.resources.clone(),
    };
    crate::testing::run_attempt(handler, index, input, config.timeout).await
}
