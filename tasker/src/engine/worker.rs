//! A worker: claims ready steps, runs them with bounded concurrency under a
//! timeout, and records the outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use tracing::Instrument;

use crate::engine::{CoordinationMode, Tasker};
use crate::events::{names, Event, EventBus};
use crate::handler::{Handler, StepInput};
use crate::ids::{StepId, TaskId};
use crate::state::TaskState;
use crate::step::{EventPort, StepError, StepEvents};
use crate::store::{ClaimRequest, ClaimedStep, Completed, Completion, Outcome, Store};

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

/// An attempt's end on its way to the store, and where to send the result.
type Pending = (Completion, oneshot::Sender<Option<Completed>>);

/// Sends finished attempts to the worker's completer.
type Completer = mpsc::UnboundedSender<Pending>;

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
    let (completer, completions) = mpsc::unbounded_channel();
    let stopping = Arc::new(AtomicBool::new(false));
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

    loop {
        if *stopped.borrow() {
            break;
        }
        let free = config.concurrency.saturating_sub(in_flight.len());
        let mut claimed_any = false;
        if free >= worth_claiming || in_flight.is_empty() {
            let request = ClaimRequest {
                handler_ids: &tasker.inner.served_ids,
                limit: config.claim_batch.min(free as u32).max(1),
                lease: config.lease,
                worker: &config.worker_id,
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
                        leases
                            .lock()
                            .expect("lease map")
                            .insert(step.step_id, step.attempt);
                        in_flight.spawn(attempt(
                            tasker.clone(),
                            step,
                            Slot {
                                leases: Arc::clone(&leases),
                                stats: Arc::clone(&stats),
                                completer: completer.clone(),
                                stopping: Arc::clone(&stopping),
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
        tokio::select! {
            _ = stopped.changed() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = tasker.store().wait_for_work(config.poll_interval), if free >= worth_claiming || in_flight.is_empty() => {}
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

/// An event about `handler` (when linked), unset otherwise.
fn about(name: &'static str, handler: Option<&Handler>) -> Event {
    match handler {
        Some(handler) => handler.event(name),
        None => Event::new(name),
    }
}

/// Publishes what one claim found: per task, `task.started` (when the claim
/// started it) and `workflow.viable_steps_discovered`; per step,
/// `step.execution_requested`.
fn publish_claimed<S: Store>(tasker: &Tasker<S>, claimed: &[ClaimedStep], worker: &str) {
    let mut tasks: Vec<TaskId> = claimed.iter().map(|s| s.task_id).collect();
    tasks.sort_unstable();
    tasks.dedup();
    for task_id in tasks {
        let steps: Vec<&ClaimedStep> = claimed.iter().filter(|s| s.task_id == task_id).collect();
        let handler = tasker.handler_by_id(steps[0].handler_id);
        if steps.iter().any(|s| s.task_started) {
            tasker.publish(
                about(names::TASK_STARTED, handler)
                    .with_task(task_id)
                    .with_worker(worker),
            );
        }
        let step_names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        tasker.publish(
            about(names::WORKFLOW_VIABLE_STEPS_DISCOVERED, handler)
                .with_task(task_id)
                .with_count(steps.len() as u64)
                .with_worker(worker)
                .with_data(serde_json::json!(step_names)),
        );
        for step in steps {
            tasker.publish(
                about(names::STEP_EXECUTION_REQUESTED, handler)
                    .with_task(task_id)
                    .with_step(step.step_id, &step.name)
                    .with_attempt(step.attempt)
                    .with_worker(worker),
            );
        }
    }
}

/// Renews the leases of running steps, samples the ready queue's depth and,
/// in distributed mode, returns other workers' expired steps to the queue.
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
    match tasker.store().ready_steps().await {
        Ok(ready) => tasker.metrics().ready_steps(ready),
        Err(e) => tracing::warn!("counting ready steps failed: {e}"),
    }
    // Housekeeping (a vacuum, when the server does not run autovacuum) may
    // take seconds: off the claim loop, one at a time per engine.
    if !tasker.inner.housekeeping.swap(true, Ordering::AcqRel) {
        let tasker = tasker.clone();
        tokio::spawn(async move {
            if let Err(e) = tasker.store().housekeeping().await {
                tracing::warn!("store housekeeping failed: {e}");
            }
            tasker.inner.housekeeping.store(false, Ordering::Release);
        });
    }
    if tasker.mode() == CoordinationMode::Distributed {
        match tasker.store().recover_expired(false).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!("recovered {n} steps whose worker stopped renewing its lease"),
            Err(e) => tracing::warn!("recovering expired leases failed: {e}"),
        }
    }
}

/// What one concurrency slot shares with its worker.
struct Slot {
    leases: Leases,
    stats: Arc<WorkerStats>,
    completer: Completer,
    stopping: Arc<AtomicBool>,
}

/// Runs claimed attempts in one concurrency slot: the claimed step, then
/// each child its completion claimed for this worker (claim on release), so
/// a chain runs hop after hop without another claim round trip.
async fn attempt<S: Store>(tasker: Tasker<S>, step: ClaimedStep, slot: Slot) {
    let mut next = Some(step);
    while let Some(step) = next.take() {
        next = attempt_one(&tasker, step, &slot).await;
        if let Some(child) = &next {
            slot.stats.claimed.fetch_add(1, Ordering::Relaxed);
            slot.leases
                .lock()
                .expect("lease map")
                .insert(child.step_id, child.attempt);
            publish_claimed(
                &tasker,
                std::slice::from_ref(child),
                &tasker.config().worker_id,
            );
        }
    }
}

/// Runs one attempt and records its outcome, in a `task` span with a
/// `step` span inside. Returns the child claimed on release, if any.
async fn attempt_one<S: Store>(
    tasker: &Tasker<S>,
    step: ClaimedStep,
    slot: &Slot,
) -> Option<ClaimedStep> {
    let handler = tasker.handler_by_id(step.handler_id);
    let (namespace, name, version) = handler.map_or_else(
        || (String::new(), String::new(), String::new()),
        |h| {
            (
                h.namespace().to_owned(),
                h.name().to_owned(),
                h.version().to_string(),
            )
        },
    );
    let correlation_id = format!("tsk_{}", step.task_id);
    let task_span = tracing::info_span!(
        "task",
        task_id = step.task_id.0,
        correlation_id = %correlation_id,
        namespace = %namespace,
        handler = %name,
        version = %version,
    );
    crate::telemetry::link_to_task(&task_span, step.task_id);
    let step_span = tracing::info_span!(
        parent: &task_span,
        "step",
        task_id = step.task_id.0,
        correlation_id = %correlation_id,
        namespace = %namespace,
        handler = %name,
        version = %version,
        step = %step.name,
        attempt = step.attempt,
    );
    run_and_record(tasker, step, slot)
        .instrument(step_span)
        .await
}

async fn run_and_record<S: Store>(
    tasker: &Tasker<S>,
    step: ClaimedStep,
    slot: &Slot,
) -> Option<ClaimedStep> {
    let Slot {
        leases,
        stats,
        completer,
        stopping,
    } = slot;
    let handler = tasker.handler_by_id(step.handler_id);
    let event = |name: &'static str| {
        about(name, handler)
            .with_task(step.task_id)
            .with_step(step.step_id, &step.name)
            .with_attempt(step.attempt)
    };
    let started = Instant::now();
    tasker.publish(event(names::STEP_BEFORE_HANDLE));
    let result = run_step(tasker, step.clone(), event("custom"))
        .await
        .and_then(|output| {
            // An output the store could not keep, or the next step could
            // not read back, fails this step alone, here.
            crate::payload::check_owned(output, "output").map_err(|e| {
                StepError::permanent(format!("the step's output cannot be stored: {e}"))
                    .with_class("OutputRefused")
            })
        })
        .map_err(StepError::storable);
    let duration = started.elapsed();
    let outcome = match result {
        Ok(output) => Outcome::Complete(output),
        Err(error) if error.is_retryable() && step.attempt < step.max_attempts => {
            let delay = error
                .retry_after()
                .unwrap_or_else(|| tasker.config().backoff.delay(step.attempt));
            Outcome::Retry { error, delay }
        }
        Err(error) => Outcome::Fail(error),
    };
    match &outcome {
        Outcome::Complete(_) => tracing::debug!("step completed"),
        Outcome::Retry { error, delay } => {
            tracing::info!(?delay, "step failed, will retry: {error}")
        }
        Outcome::Fail(error) => tracing::warn!("step failed for good: {error}"),
    }
    // What the events need once the outcome is recorded (not the output).
    let ended = match &outcome {
        Outcome::Complete(_) => Ended::Completed,
        Outcome::Retry { error, delay } => Ended::Retry(error.clone(), *delay),
        Outcome::Fail(error) => Ended::Failed(error.clone()),
    };
    let completion = Completion {
        step_id: step.step_id,
        attempt: step.attempt,
        outcome,
        worker: tasker.config().worker_id.clone(),
        duration,
        // Take a released child along, unless the step has none or the
        // worker is stopping.
        take_next: (!stopping.load(Ordering::Relaxed)
            && handler.is_some_and(|h| !h.graph().dependents(&step.name).is_empty()))
        .then_some(tasker.config().lease),
    };
    let (reply, recorded) = oneshot::channel();
    let recorded = match completer.send((completion, reply)) {
        Ok(()) => recorded.await.ok().flatten(),
        Err(_) => None,
    };
    leases.lock().expect("lease map").remove(&step.step_id);
    let recorded = recorded?;
    if !recorded.applied {
        stats.stale.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("result discarded: the step was reclaimed, cancelled or resolved meanwhile");
        tasker.publish(event(names::STEP_RESULT_DISCARDED).with_duration(duration));
        return None;
    }
    match &ended {
        Ended::Completed => {
            stats.completed.fetch_add(1, Ordering::Relaxed);
            tasker.publish(event(names::STEP_COMPLETED).with_duration(duration));
        }
        Ended::Retry(error, delay) => {
            stats.retried.fetch_add(1, Ordering::Relaxed);
            tasker.publish(
                event(names::STEP_FAILED)
                    .with_duration(duration)
                    .with_error(error.class(), error.message()),
            );
            tasker.publish(event(names::STEP_BACKOFF).with_delay(*delay));
        }
        Ended::Failed(error) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            tasker.publish(
                event(names::STEP_FAILED)
                    .with_duration(duration)
                    .with_error(error.class(), error.message()),
            );
            if error.is_retryable() {
                tasker.publish(
                    event(names::STEP_MAX_RETRIES_REACHED)
                        .with_error(error.class(), error.message()),
                );
            }
        }
    }
    if let Some(state) = recorded.task_state {
        let task_event = |name: &'static str| about(name, handler).with_task(step.task_id);
        match (state, &ended) {
            (TaskState::Complete, _) => tasker.publish(task_event(names::TASK_COMPLETED)),
            (TaskState::Error, Ended::Failed(error)) => tasker.publish(
                task_event(names::TASK_FAILED)
                    .with_step_name(&step.name)
                    .with_error(error.class(), error.message()),
            ),
            _ => {}
        }
        tasker.publish(task_event(names::WORKFLOW_TASK_FINALIZED).with_task_state(state));
    }
    recorded.next
}

/// How an attempt ended, as far as its events care.
enum Ended {
    Completed,
    Retry(StepError, Duration),
    Failed(StepError),
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

/// A step's custom events, onto the engine's bus.
struct BusPort {
    bus: EventBus,
    /// The task, step and handler fields of every event.
    base: Event,
}

impl EventPort for BusPort {
    fn publish(&self, name: &'static str, data: serde_json::Value) {
        self.bus.publish(self.base.custom(name, data));
    }
}

/// Runs the step's code on its own task (so a panic is caught) under its
/// timeout. `base` fills in the custom events the step publishes.
async fn run_step<S: Store>(
    tasker: &Tasker<S>,
    step: ClaimedStep,
    base: Event,
) -> Result<serde_json::Value, StepError> {
    let Some(handler) = tasker.handler_by_id(step.handler_id) else {
        return Err(StepError::permanent(format!(
            "no handler with id {} is linked into this worker",
            step.handler_id
        )));
    };
    if let Some(why) = step.unreadable {
        return Err(StepError::permanent(why).with_class("UnreadableInput"));
    }
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
        task_id: step.task_id,
        step_name: definition.name(),
        attempt: step.attempt,
        context: Arc::new(step.context),
        dependencies: step.inputs,
        config,
        resources: tasker.inner.resources.clone(),
        events: Some(StepEvents::new(
            definition.name(),
            definition.events(),
            BusPort {
                bus: tasker.inner.events.clone(),
                base,
            },
        )),
    };
    super::run_attempt(handler, index, input, config.timeout).await
}

impl<S: Store> Tasker<S> {
    /// Starts a worker on this runtime: it claims and runs steps until
    /// [`Worker::shutdown`].
    pub fn start_worker(&self) -> Worker {
        Worker::start(self.clone())
    }
}
