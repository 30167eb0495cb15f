//! A worker: claims ready steps, runs them with bounded concurrency under a
//! timeout, and records the outcome.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::attempt::{attempt, publish_claimed, Leases, Pending, Slot};
use super::stats::{WorkerCounts, WorkerStats};
use crate::engine::{CoordinationMode, Tasker};
use crate::events::{names, Event};
use crate::ids::StepId;
use crate::store::{ClaimRequest, Completed, Completion, Store};
use crate::sync::lock;

/// How long after a retry is due the worker claims it: the database's
/// clock decides when `run_at` has passed, so a claim exactly on time could
/// find nothing.
const RETRY_SLACK: Duration = Duration::from_millis(5);

/// A running worker. Dropping it does not stop it; call
/// [`Worker::shutdown`].
pub struct Worker {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
    stats: Arc<WorkerStats>,
}

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

    /// The live counters, to read while the worker runs (a status line, a
    /// health check) without holding the worker.
    pub fn stats(&self) -> Arc<WorkerStats> {
        Arc::clone(&self.stats)
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
    let (completer, completions) = mpsc::unbounded_channel();
    let stopping = Arc::new(AtomicBool::new(false));
    // Retries this worker scheduled, earliest first: it claims each when it
    // is due instead of waiting for the next poll.
    let (retries, mut scheduled) = mpsc::unbounded_channel();
    let mut due: BinaryHeap<Reverse<tokio::time::Instant>> = BinaryHeap::new();
    let completer_task = tokio::spawn(complete_in_batches(
        tasker.clone(),
        completions,
        config.claim_batch.max(1) as usize,
    ));
    let mut maintenance = tokio::time::interval(config.lease / 3);
    maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(worker = %config.worker_id, mode = ?tasker.mode(), "worker started");
    tasker.publish(Event::new(names::WORKER_STARTED).with_worker(&config.worker_id));
    // Claim in batches: wait for enough free slots (or an idle worker)
    // rather than making one round trip per finished step.
    let worth_claiming = (config.claim_batch as usize)
        .min(config.concurrency / 2)
        .max(1);
    let mut busy = false;

    // Whether the last wake-up can have made steps claimable (not so for
    // the note of a retry scheduled for later).
    let mut look = true;
    loop {
        if *stopped.borrow() {
            break;
        }
        let free = config.concurrency.saturating_sub(in_flight.len());
        let mut claimed_any = false;
        if std::mem::replace(&mut look, true) && (free >= worth_claiming || in_flight.is_empty()) {
            let request = ClaimRequest {
                handler_ids: &tasker.inner.served_ids,
                limit: config.claim_batch.min(free as u32).max(1),
                lease: config.lease,
                worker: &config.worker_id,
                limits: &tasker.inner.limits,
            };
            stats.claim_queries.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            match tasker.store().claim_steps(request).await {
                Ok(claimed) => {
                    tasker.metrics().claimed(started.elapsed(), claimed.len());
                    claimed_any = !claimed.is_empty();
                    if claimed_any {
                        busy = true;
                    } else if std::mem::take(&mut busy) {
                        tasker.publish(
                            Event::new(names::WORKFLOW_NO_VIABLE_STEPS)
                                .with_worker(&config.worker_id),
                        );
                    }
                    stats
                        .claimed
                        .fetch_add(claimed.len() as u64, Ordering::Relaxed);
                    publish_claimed(&tasker, &claimed, &config.worker_id);
                    for step in claimed {
                        lock(&leases).insert(step.step_id, step.attempt);
                        in_flight.spawn(attempt(
                            tasker.clone(),
                            step,
                            Slot {
                                leases: Arc::clone(&leases),
                                stats: Arc::clone(&stats),
                                completer: completer.clone(),
                                stopping: Arc::clone(&stopping),
                                retries: retries.clone(),
                            },
                        ));
                    }
                }
                Err(e) => {
                    tracing::error!("claiming steps failed: {e}; retrying after the poll interval");
                    tokio::time::sleep(config.poll_interval).await;
                }
            }
        }
        let free = config.concurrency.saturating_sub(in_flight.len());
        if claimed_any && free >= worth_claiming {
            // More may be waiting: claim again at once.
            continue;
        }
        let can_claim = free >= worth_claiming || in_flight.is_empty();
        let next_retry = due.peek().map(|Reverse(at)| *at + RETRY_SLACK);
        tokio::select! {
            _ = stopped.changed() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            Some(at) = scheduled.recv() => {
                due.push(Reverse(at));
                look = false;
            }
            () = tokio::time::sleep_until(next_retry.unwrap_or_else(tokio::time::Instant::now)), if can_claim && next_retry.is_some() => {
                let now = tokio::time::Instant::now();
                while due.peek().is_some_and(|Reverse(at)| *at + RETRY_SLACK <= now) {
                    due.pop();
                }
            }
            () = tasker.store().wait_for_work(config.poll_interval), if can_claim => {}
            _ = maintenance.tick() => maintain(&tasker, &leases).await,
        }
    }

    tracing::info!(worker = %config.worker_id, in_flight = in_flight.len(), "worker draining");
    stopping.store(true, Ordering::Relaxed);
    while in_flight.join_next().await.is_some() {}
    drop(completer);
    if let Err(e) = completer_task.await {
        tracing::error!("the completer task ended abnormally: {e}");
    }
    tracing::info!(worker = %config.worker_id, "worker stopped");
    let counts = stats.counts();
    tasker.publish(
        Event::new(names::WORKER_STOPPED)
            .with_worker(&config.worker_id)
            .with_count(counts.completed + counts.retried + counts.failed),
    );
}

/// Renews the leases of running steps, samples the ready queue's depth and,
/// in distributed mode, returns other workers' expired steps to the queue.
async fn maintain<S: Store>(tasker: &Tasker<S>, leases: &Leases) {
    let held: Vec<(StepId, u32)> = lock(leases).iter().map(|(k, v)| (*k, *v)).collect();
    if !held.is_empty() {
        if let Err(e) = tasker
            .store()
            .renew_leases(&held, tasker.config().lease)
            .await
        {
            tracing::warn!("renewing {} leases failed: {e}", held.len());
        }
    }
    match tasker.store().ready_steps().await {
        Ok(ready) => tasker.metrics().ready_steps(ready),
        Err(e) => tracing::warn!("counting ready steps failed: {e}"),
    }
    // Housekeeping (a vacuum, when the server does not run autovacuum) may
    // take seconds: off the claim loop, one at a time per engine.
    // Retention runs on the same task, after it.
    if !tasker.inner.housekeeping.swap(true, Ordering::AcqRel) {
        let tasker = tasker.clone();
        tokio::spawn(async move {
            if let Err(e) = tasker.store().housekeeping().await {
                tracing::warn!("store housekeeping failed: {e}");
            }
            tasker.run_retention_if_due().await;
            tasker.inner.housekeeping.store(false, Ordering::Release);
        });
    }
    tasker.expire_deadlines().await;
    if tasker.mode() == CoordinationMode::Distributed {
        match tasker.store().recover_expired(false).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!("recovered {n} steps whose worker stopped renewing its lease"),
            Err(e) => tracing::warn!("recovering expired leases failed: {e}"),
        }
    }
}

/// Records finished attempts: whatever has queued up while the previous
/// batch was being written goes in one call, so a busy worker writes many
/// results per round trip and an idle one writes each at once.
async fn complete_in_batches<S: Store>(
    tasker: Tasker<S>,
    mut queue: mpsc::UnboundedReceiver<Pending>,
    max_batch: usize,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (completions, replies): (Vec<Completion>, Vec<_>) = batch.into_iter().unzip();
        match record(&tasker, &completions).await {
            Some(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Some(result));
                }
            }
            None => {
                for reply in replies {
                    let _ = reply.send(None);
                }
            }
        }
    }
}

/// Records attempts' ends. A store hiccup must not lose finished attempts,
/// so it retries a few times before leaving the steps to lease recovery
/// (`None`).
async fn record<S: Store>(
    tasker: &Tasker<S>,
    completions: &[Completion],
) -> Option<Vec<Completed>> {
    let mut tries = 0;
    loop {
        match tasker.store().complete_steps(completions).await {
            Ok(results) => return Some(results),
            Err(e) if tries < 5 => {
                tries += 1;
                tracing::warn!(
                    "recording {} step results failed (try {tries}): {e}",
                    completions.len()
                );
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
            Err(e) => {
                tracing::error!(
                    "recording {} step results failed: {e}; their leases will expire and they will run again",
                    completions.len()
                );
                return None;
            }
        }
    }
}

impl<S: Store> Tasker<S> {
    /// Starts a worker on this runtime: it claims and runs steps until
    /// [`Worker::shutdown`].
    pub fn start_worker(&self) -> Worker {
        Worker::start(self.clone())
    }
}
