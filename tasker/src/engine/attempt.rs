//! Running claimed steps: a concurrency slot runs its step, then each child
//! claimed on release; one attempt runs on its own tokio task (so a panic is
//! caught) under the step's timeout, and its outcome is recorded and
//! announced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::checkpoint::StorePort;
use super::stats::WorkerStats;
use super::Tasker;
use crate::annotation::Annotations;
use crate::checkpoint::Checkpoints;
use crate::context::{EventPort, StepEvents};
use crate::error::panic_message;
use crate::events::{names, Event, EventBus};
use crate::handler::Handler;
use crate::ids::{StepId, TaskId};
use crate::input::StepInput;
use crate::state::TaskState;
use crate::step::StepError;
use crate::store::{ClaimedStep, Completed, Completion, Outcome, Store};
use crate::sync::lock;
use crate::transaction::SharedTransaction;

/// Runs one attempt on its own tokio task, so a panic is caught, under the
/// step's timeout.
pub(crate) async fn run_attempt(
    handler: &Handler,
    index: usize,
    input: StepInput,
    timeout: Option<std::time::Duration>,
) -> Result<Value, StepError> {
    let mut task = tokio::spawn(handler.run_step(index, input));
    let joined = match timeout {
        None => (&mut task).await,
        Some(limit) => match tokio::time::timeout(limit, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                task.abort();
                return Err(StepError::retryable(format!(
                    "the step did not finish within its timeout of {limit:?}"
                ))
                .with_class("Timeout"));
            }
        },
    };
    match joined {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => Err(StepError::retryable(format!(
            "the step panicked: {}",
            panic_message(&*e.into_panic())
        ))
        .with_class("Panic")),
        Err(e) => {
            Err(StepError::retryable(format!("the step was cancelled: {e}"))
                .with_class("Cancelled"))
        }
    }
}

/// An attempt's end on its way to the store, and where to send the result.
pub(super) type Pending = (Completion, oneshot::Sender<Option<Completed>>);

/// Sends finished attempts to the worker's completer.
pub(super) type Completer = mpsc::UnboundedSender<Pending>;

/// Leases held by this worker: step -> attempt.
pub(super) type Leases = Arc<Mutex<HashMap<StepId, u32>>>;

/// An event about `handler` (when linked), unset otherwise.
pub(super) fn about(name: &'static str, handler: Option<&Handler>) -> Event {
    match handler {
        Some(handler) => handler.event(name),
        None => Event::new(name),
    }
}

/// Publishes what one claim found: per task, `task.started` (when the claim
/// started it) and `workflow.viable_steps_discovered`; per step,
/// `step.execution_requested`.
pub(super) fn publish_claimed<S: Store>(tasker: &Tasker<S>, claimed: &[ClaimedStep], worker: &str) {
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

/// What one concurrency slot shares with its worker.
pub(super) struct Slot {
    pub(super) leases: Leases,
    pub(super) stats: Arc<WorkerStats>,
    pub(super) completer: Completer,
    pub(super) stopping: Arc<AtomicBool>,
    /// When a retry this slot scheduled becomes due, so the worker claims
    /// it then rather than at its next poll.
    pub(super) retries: mpsc::UnboundedSender<tokio::time::Instant>,
}

/// Runs claimed attempts in one concurrency slot: the claimed step, then
/// each child its completion claimed for this worker (claim on release), so
/// a chain runs hop after hop without another claim round trip.
pub(super) async fn attempt<S: Store>(tasker: Tasker<S>, step: ClaimedStep, slot: Slot) {
    let mut next = Some(step);
    while let Some(step) = next.take() {
        next = attempt_one(&tasker, step, &slot).await;
        if let Some(child) = &next {
            slot.stats.claimed.fetch_add(1, Ordering::Relaxed);
            lock(&slot.leases).insert(child.step_id, child.attempt);
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
pub(super) async fn attempt_one<S: Store>(
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

pub(super) async fn run_and_record<S: Store>(
    tasker: &Tasker<S>,
    step: ClaimedStep,
    slot: &Slot,
) -> Option<ClaimedStep> {
    let stopping = &slot.stopping;
    let handler = tasker.handler_by_id(step.handler_id);
    let event = |name: &'static str| {
        about(name, handler)
            .with_task(step.task_id)
            .with_step(step.step_id, &step.name)
            .with_attempt(step.attempt)
    };
    let definition = handler.and_then(|h| h.steps().get(step.index as usize));
    // A fan-out's group row: it runs no body, it becomes its instances.
    if let Some((source, definition)) = definition
        .and_then(|d| Some((d.for_each()?, d)))
        .filter(|_| step.item_index.is_none())
    {
        let items = step
            .inputs
            .iter()
            .find(|(name, _)| name == source)
            .map(|(_, output)| output.clone());
        let (outcome, ended) = match crate::fan_out::items(definition.name(), source, items) {
            Ok(items) if items.is_empty() => {
                (Outcome::Complete(Value::Array(items)), Ended::Completed)
            }
            Ok(items) => {
                let count = items.len() as u64;
                let concurrency = definition
                    .concurrency()
                    .unwrap_or(u32::MAX)
                    .min(u32::try_from(count).unwrap_or(u32::MAX));
                (
                    Outcome::FanOut {
                        source,
                        items,
                        concurrency,
                        on_item_error: definition.on_item_error(),
                    },
                    Ended::FannedOut { count, concurrency },
                )
            }
            Err(error) => (Outcome::Fail(error.clone()), Ended::Failed(error)),
        };
        let completion = Completion {
            annotations: Vec::new(),
            skip: Vec::new(),
            item_index: None,
            step_id: step.step_id,
            attempt: step.attempt,
            outcome,
            worker: tasker.config().worker_id.clone(),
            duration: Duration::ZERO,
            take_next: None,
        };
        return record(tasker, &step, slot, completion, None, ended).await;
    }
    let started = Instant::now();
    let annotations = Annotations::default();
    tasker.publish(event(names::STEP_STARTED).with_worker(&tasker.config().worker_id));
    tasker.publish(event(names::STEP_BEFORE_HANDLE));
    let transactional = handler
        .and_then(|h| h.steps().get(step.index as usize))
        .is_some_and(|d| d.transactional());
    // A transactional step's writes and its completion share this.
    let transaction: Option<SharedTransaction> = if transactional {
        match tasker
            .store()
            .begin_step_transaction(step.step_id, step.attempt)
            .await
        {
            Ok(tx) => Some(Arc::new(tokio::sync::Mutex::new(Some(tx)))),
            Err(e) => {
                tracing::warn!("opening the step's transaction failed: {e}");
                None
            }
        }
    } else {
        None
    };
    let body = if transactional && transaction.is_none() {
        Err(
            StepError::retryable("the step's database transaction could not be opened")
                .with_class("TransactionUnavailable"),
        )
    } else {
        run_step(
            tasker,
            step.clone(),
            event("custom"),
            transaction.clone(),
            annotations.clone(),
        )
        .await
    };
    // The transaction back from the step (its body has ended; a guard kept
    // by a task the step spawned counts as still in use, and a success
    // that cannot be committed with its writes is a retryable failure).
    let transaction = transaction.and_then(|shared| shared.try_lock().ok()?.take());
    let body = match body {
        Ok(_) if transactional && transaction.is_none() => Err(StepError::retryable(
            "the step's transaction was still in use when it returned",
        )
        .with_class("TransactionInUse")),
        other => other,
    };
    let result = body
        .and_then(|output| {
            // An output the store could not keep, or the next step could
            // not read back, fails this step alone, here.
            crate::payload::check_owned(output, "output").map_err(|e| {
                StepError::permanent(format!("the step's output cannot be stored: {e}"))
                    .with_class("OutputRefused")
            })
        })
        .map_err(StepError::storable);
    // A decision's output names the branches that run; the others are
    // skipped with its completion. An output naming none fails the step.
    let (result, skip) = match result {
        Ok(output) => {
            match definition.map(|d| crate::decision::unchosen(d.name(), d.branches(), &output)) {
                Some(Err(error)) => (Err(error), Vec::new()),
                Some(Ok(skip)) => (Ok(output), skip),
                None => (Ok(output), Vec::new()),
            }
        }
        Err(error) => (Err(error), Vec::new()),
    };
    let duration = started.elapsed();
    // The outcome to record, and what the events need once it is
    // recorded (not the output).
    let (outcome, ended) = match result {
        Ok(output) => {
            tracing::debug!("step completed");
            (Outcome::Complete(output), Ended::Completed)
        }
        Err(error) if error.retries_after(step.attempt, step.max_attempts) => {
            let delay = error
                .retry_after()
                .unwrap_or_else(|| tasker.config().backoff.delay(step.attempt));
            tracing::info!(?delay, "step failed, will retry: {error}");
            (
                Outcome::Retry {
                    error: error.clone(),
                    delay,
                },
                Ended::Retry(error, delay),
            )
        }
        Err(error) => {
            tracing::warn!("step failed for good: {error}");
            (Outcome::Fail(error.clone()), Ended::Failed(error))
        }
    };
    // Only a success keeps what the attempt annotated.
    let annotations = match ended {
        Ended::Completed => annotations.take(),
        _ => Vec::new(),
    };
    let completion = Completion {
        annotations,
        skip,
        item_index: step.item_index,
        step_id: step.step_id,
        attempt: step.attempt,
        outcome,
        worker: tasker.config().worker_id.clone(),
        duration,
        // Take a released child along, unless the step has none (a
        // fan-out's instance has none of its own), a child runs under a
        // limit (claimed only under its lock) or the worker is stopping.
        take_next: (!stopping.load(Ordering::Relaxed)
            && step.item_index.is_none()
            && handler.is_some_and(|h| !h.graph().dependents(&step.name).is_empty())
            && tasker
                .resolved_steps(step.handler_id)
                .get(step.index as usize)
                .is_some_and(|r| r.take_child))
        .then_some(tasker.config().lease),
    };
    record(tasker, &step, slot, completion, transaction, ended).await
}

/// Records an attempt's end (in its transaction, when it has one) and
/// publishes what it did. Returns the child claimed on release, if any.
async fn record<S: Store>(
    tasker: &Tasker<S>,
    step: &ClaimedStep,
    slot: &Slot,
    completion: Completion,
    transaction: Option<Box<dyn crate::store::StepTransaction>>,
    ended: Ended,
) -> Option<ClaimedStep> {
    let Slot {
        leases,
        stats,
        completer,
        retries,
        ..
    } = slot;
    let handler = tasker.handler_by_id(step.handler_id);
    let event = |name: &'static str| {
        about(name, handler)
            .with_task(step.task_id)
            .with_step(step.step_id, &step.name)
            .with_attempt(step.attempt)
    };
    let duration = completion.duration;
    let recorded = match (transaction, &completion.outcome) {
        (Some(tx), Outcome::Complete(_)) => {
            match tasker
                .store()
                .complete_in_transaction(tx, &completion)
                .await
            {
                Ok(recorded) => Some(recorded),
                Err(e) => {
                    // Nothing committed: the lease runs out and the step
                    // runs again.
                    tracing::error!("committing the step with its writes failed: {e}");
                    None
                }
            }
        }
        (tx, _) => {
            // A failure: the step's writes roll back (the transaction is
            // dropped), and the outcome is recorded as any other.
            drop(tx);
            let (reply, recorded) = oneshot::channel();
            match completer.send((completion, reply)) {
                Ok(()) => recorded.await.ok().flatten(),
                Err(_) => None,
            }
        }
    };
    lock(leases).remove(&step.step_id);
    let recorded = recorded?;
    if !recorded.applied {
        stats.stale.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("result discarded: the step was reclaimed, cancelled or resolved meanwhile");
        tasker.publish(event(names::STEP_RESULT_DISCARDED).with_duration(duration));
        return None;
    }
    match &ended {
        Ended::FannedOut { count, concurrency } => {
            tasker.publish(
                event(names::STEP_FANNED_OUT)
                    .with_count(*count)
                    .with_data(serde_json::json!({ "items": count, "concurrency": concurrency })),
            );
        }
        Ended::Completed => {
            stats.completed.fetch_add(1, Ordering::Relaxed);
            tasker.publish(event(names::STEP_COMPLETED).with_duration(duration));
            for (skipped_id, skipped) in &recorded.skipped {
                tasker.publish(
                    about(names::STEP_SKIPPED, handler)
                        .with_task(step.task_id)
                        .with_step(*skipped_id, skipped)
                        .with_data(serde_json::json!({ "decision": step.name })),
                );
            }
        }
        Ended::Retry(error, delay) => {
            stats.retried.fetch_add(1, Ordering::Relaxed);
            // The worker may have stopped listening; then the retry waits
            // for whichever worker polls next.
            let _ = retries.send(tokio::time::Instant::now() + *delay);
            tasker.publish(
                event(names::STEP_FAILED)
                    .with_duration(duration)
                    .with_error(error.class(), error.message()),
            );
            tasker.publish(event(names::STEP_BACKOFF).with_delay(*delay));
        }
        Ended::Failed(error) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            let failed = event(names::STEP_FAILED)
                .with_duration(duration)
                .with_error(error.class(), error.message());
            // An item of `on_item_error = "collect"`: its task goes on.
            tasker.publish(if recorded.collected {
                failed.with_data(serde_json::json!({ "collected": true }))
            } else {
                failed
            });
            if error.is_retryable() {
                tasker.publish(
                    event(names::STEP_MAX_RETRIES_REACHED)
                        .with_error(error.class(), error.message()),
                );
            }
        }
    }
    if let Some((group, attempt)) = recorded.group_completed {
        // The last instance (done, or failed and collected) completed its
        // group.
        tasker.publish(
            about(names::STEP_COMPLETED, handler)
                .with_task(step.task_id)
                .with_step(group, &step.name)
                .with_attempt(attempt),
        );
    }
    if let Some(state) = recorded.task_state {
        let task_event = |name: &'static str| {
            let event = about(name, handler).with_task(step.task_id);
            match recorded.task_duration {
                Some(duration) => event.with_duration(duration),
                None => event,
            }
        };
        match (state, &ended) {
            (TaskState::Complete, _) => tasker.publish(task_event(names::TASK_COMPLETED)),
            (TaskState::Error, Ended::Failed(error)) => {
                tasker.publish(
                    task_event(names::TASK_FAILED)
                        .with_step_name(&step.name)
                        .with_error(error.class(), error.message()),
                );
            }
            _ => {}
        }
        tasker.publish(task_event(names::WORKFLOW_TASK_FINALIZED).with_task_state(state));
        if let (TaskState::Error, Ended::Failed(_), Some(handler)) = (state, &ended, handler) {
            report_bottleneck(tasker, handler.clone(), step.task_id);
        }
    }
    recorded.next
}

/// After a task failed: its worst bottleneck by the dependency analysis, as
/// `task.bottleneck_detected`. One read of the task, off the worker's path
/// (a failed task is rare; a read that fails only loses the event).
fn report_bottleneck<S: Store>(tasker: &Tasker<S>, handler: Handler, task_id: TaskId) {
    let tasker = tasker.clone();
    tokio::spawn(async move {
        // The steps and their items' counts: a fan-out is one step of the
        // graph.
        let task = match tasker
            .task_view(task_id, crate::store::ItemWindow::NONE)
            .await
        {
            Ok(task) => task,
            Err(e) => {
                tracing::warn!(task = %task_id, "reading the failed task for its bottleneck: {e}");
                return;
            }
        };
        let analysis = crate::analysis::analyze(
            handler.graph(),
            &task,
            &crate::analysis::AnalysisConfig::default(),
        );
        if let Some(worst) = analysis.bottlenecks.first() {
            tasker.publish(
                handler
                    .event(names::TASK_BOTTLENECK_DETECTED)
                    .with_task(task_id)
                    .with_step_name(&worst.step)
                    .with_data(serde_json::json!({
                        "severity": worst.severity,
                        "impact_score": worst.score,
                        "problem": worst.problem,
                        "blocked": worst.blocked,
                        "downstream": worst.downstream,
                    })),
            );
        }
    });
}

/// How an attempt ended, as far as its events care.
pub(super) enum Ended {
    Completed,
    /// A fan-out's group became `count` instances.
    FannedOut {
        count: u64,
        concurrency: u32,
    },
    Retry(StepError, Duration),
    Failed(StepError),
}

/// A step's custom events, onto the engine's bus.
pub(super) struct BusPort {
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
pub(super) async fn run_step<S: Store>(
    tasker: &Tasker<S>,
    step: ClaimedStep,
    base: Event,
    transaction: Option<SharedTransaction>,
    annotations: Annotations,
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
    let Some(resolved) = tasker.resolved_steps(step.handler_id).get(index) else {
        return Err(StepError::permanent(format!(
            "handler {} is not served by this worker",
            handler.key()
        )));
    };
    let config = resolved.config;
    let checkpoints = Checkpoints::new(StorePort {
        tasker: tasker.clone(),
        step_id: step.step_id,
        step_name: definition.name(),
        attempt: step.attempt,
        base: base.clone(),
    });
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
        transaction,
        configs: resolved.configs.clone(),
        annotations,
        checkpoints,
        item: step.item,
    };
    super::run_attempt(handler, index, input, config.timeout).await
}
