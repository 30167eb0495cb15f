//! The engine: [`Tasker`] creates tasks, applies operator actions and runs
//! [`Worker`](crate::Worker)s, on any [`Store`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use semver::Version;

use crate::error::{Error, Result};
use crate::events::{
    names, Catalog, ErasedSubscriber, Event, EventBus, Subscriber, SubscriberFailures,
};
use crate::handler::Handler;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::request::TaskRequest;
use crate::state::{StepState, TaskState};
use crate::step::{Resources, StepConfig, TaskId};
use crate::store::{
    Capabilities, Created, HandlerRecord, NewStep, NewTask, OperatorAction, StepId, Store,
    TaskFilter, TaskRecord, Transition, UnfinishedHandler,
};
use crate::worker::Worker;

/// Exponential backoff with jitter and one cap.
///
/// The delay before retry `n` (after failed attempt `n`) is `base * 2^(n-1)`,
/// capped at `cap`, then with jitter drawn uniformly from the upper half:
/// `[d/2, d]`. A step's `StepError::with_retry_after` wins over all of it.
///
/// ```
/// use std::time::Duration;
/// use tasker::Backoff;
///
/// let backoff = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(60), jitter: false };
/// assert_eq!(backoff.delay(1), Duration::from_secs(1));
/// assert_eq!(backoff.delay(3), Duration::from_secs(4));
/// assert_eq!(backoff.delay(30), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// No delay exceeds this.
    pub cap: Duration,
    /// Whether to spread delays over `[d/2, d]`.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            jitter: true,
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let full = self
            .base
            .checked_mul(1u32 << exponent)
            .map_or(self.cap, |d| d.min(self.cap));
        if !self.jitter || full.is_zero() {
            return full;
        }
        let half = full / 2;
        let spread = (full - half).as_nanos() as u64;
        half + Duration::from_nanos(fastrand::u64(0..=spread))
    }
}

/// Settings of the engine and its workers.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Step settings where a step's attribute is silent.
    pub step_defaults: StepConfig,
    /// Retry delays.
    pub backoff: Backoff,
    /// How long a claim lasts without renewal. Running steps are renewed
    /// every third of it; a dead worker's steps are reclaimed after it.
    pub lease: Duration,
    /// Idle workers look for work at least this often, notifications or not.
    pub poll_interval: Duration,
    /// Steps one worker runs at once.
    pub concurrency: usize,
    /// Steps claimed per round trip (at most the free slots).
    pub claim_batch: u32,
    /// This process's worker name in the audit trail.
    pub worker_id: String,
    /// How long one subscriber call may run before it is abandoned.
    pub subscriber_timeout: Duration,
    /// Events queued per subscriber before new ones are dropped.
    pub subscriber_queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            step_defaults: StepConfig::default(),
            backoff: Backoff::default(),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            concurrency: 16,
            claim_batch: 16,
            worker_id: default_worker_id(),
            subscriber_timeout: Duration::from_secs(5),
            subscriber_queue: 1024,
        }
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}:{}:{:04x}", std::process::id(), fastrand::u16(..))
}

/// How workers coordinate, chosen from the store's [`Capabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinationMode {
    /// Many worker processes share the store: claims skip locked rows, idle
    /// workers wake on notifications, and expired leases are recovered
    /// periodically.
    Distributed,
    /// One process owns the store: in-process wake-ups, and every step left
    /// `in_progress` by a previous process is recovered at start.
    SingleProcess,
}

impl CoordinationMode {
    /// The mode a store's capabilities call for.
    pub fn for_capabilities(capabilities: Capabilities) -> Self {
        if capabilities.distributed && capabilities.skip_locked {
            CoordinationMode::Distributed
        } else {
            CoordinationMode::SingleProcess
        }
    }
}

/// A handler shape that unfinished tasks use but this binary cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedHandler {
    /// What the database holds.
    pub stored: UnfinishedHandler,
    /// Why these tasks will not run here.
    pub reason: String,
}

/// What the start-up check found.
#[derive(Debug, Clone, Default)]
pub struct StartupReport {
    /// Handlers registered from this binary.
    pub registered: Vec<String>,
    /// Unfinished tasks this worker will not touch, by handler shape.
    pub refused: Vec<RefusedHandler>,
    /// Steps recovered from a previous process (single-process mode).
    pub recovered_steps: u64,
    /// Problems of the database's set-up an operator should fix (see
    /// [`Store::warnings`]); also logged at start-up and shown by
    /// `/health/status`.
    pub warnings: Vec<String>,
}

/// The engine on a store: create tasks, inspect and repair them, run
/// workers. Cheap to clone.
pub struct Tasker<S: Store> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S: Store> Clone for Tasker<S> {
    fn clone(&self) -> Self {
        Tasker {
            inner: Arc::clone(&self.inner),
        }
    }
}

pub(crate) struct Inner<S> {
    pub(crate) store: S,
    pub(crate) registry: Registry,
    pub(crate) by_id: HashMap<i64, Handler>,
    pub(crate) ids: HashMap<(String, String, Version), i64>,
    pub(crate) served_ids: Vec<i64>,
    pub(crate) resources: Resources,
    pub(crate) config: EngineConfig,
    pub(crate) mode: CoordinationMode,
    pub(crate) report: StartupReport,
    pub(crate) events: EventBus,
    /// A store housekeeping run is in progress.
    pub(crate) housekeeping: std::sync::atomic::AtomicBool,
}

/// Builds a [`Tasker`]: see [`Tasker::builder`].
pub struct TaskerBuilder<S: Store> {
    store: S,
    registry: Option<Registry>,
    resources: Resources,
    config: EngineConfig,
    migrate: bool,
    subscribers: Vec<Arc<dyn ErasedSubscriber>>,
    registered_subscribers: bool,
}

impl<S: Store> TaskerBuilder<S> {
    /// Adds an event subscriber (besides those registered with
    /// [`register_subscriber!`](crate::register_subscriber)).
    #[must_use]
    pub fn subscriber(mut self, subscriber: impl Subscriber) -> Self {
        self.subscribers.push(Arc::new(subscriber));
        self
    }

    /// Leaves out the subscribers registered with
    /// [`register_subscriber!`](crate::register_subscriber).
    #[must_use]
    pub fn without_registered_subscribers(mut self) -> Self {
        self.registered_subscribers = false;
        self
    }

    /// Serve these handlers instead of every handler linked in.
    #[must_use]
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Adds a shared resource for steps (`ctx.resource::<T>()`).
    #[must_use]
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources = self.resources.with(value);
        self
    }

    /// Replaces the engine settings.
    #[must_use]
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Changes the engine settings in place.
    #[must_use]
    pub fn configure(mut self, change: impl FnOnce(&mut EngineConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Applies the store's migrations before starting (default: no).
    #[must_use]
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Migrates (when asked), records the handlers, checks unfinished
    /// tasks against them, and recovers a dead predecessor's steps in
    /// single-process mode.
    pub async fn build(self) -> Result<Tasker<S>> {
        let TaskerBuilder {
            store,
            registry,
            resources,
            config,
            migrate,
            mut subscribers,
            registered_subscribers,
        } = self;
        if registered_subscribers {
            subscribers.extend(crate::events::registered_subscribers());
        }
        let events = EventBus::start(
            subscribers,
            config.subscriber_queue,
            config.subscriber_timeout,
            Arc::new(Metrics::new()),
        );
        if migrate {
            store.migrate().await?;
        }
        let registry = match registry {
            Some(registry) => registry,
            None => Registry::from_inventory()?,
        };
        let mut report = StartupReport::default();
        let mut by_id = HashMap::new();
        let mut ids = HashMap::new();
        for handler in registry.handlers() {
            let record = HandlerRecord {
                namespace: handler.namespace().to_owned(),
                name: handler.name().to_owned(),
                version: handler.version().to_string(),
                fingerprint: handler.fingerprint().to_owned(),
                description: handler.description().to_owned(),
                steps: handler
                    .steps()
                    .iter()
                    .map(|s| s.name().to_owned())
                    .collect(),
            };
            let id = store.register_handler(&record).await?;
            by_id.insert(id, handler.clone());
            ids.insert(
                (
                    handler.namespace().to_owned(),
                    handler.name().to_owned(),
                    handler.version().clone(),
                ),
                id,
            );
            report.registered.push(handler.key());
            events.publish(
                Event::new(names::REGISTRY_HANDLER_REGISTERED)
                    .of(handler)
                    .with_data(handler.fingerprint().into()),
            );
        }
        for stored in store.unfinished_handlers().await? {
            let linked = Version::parse(&stored.version).ok().and_then(|v| {
                registry
                    .get(&stored.namespace, &stored.name, &v.into())
                    .ok()
            });
            let reason = match linked {
                None => format!(
                    "handler {}/{}@{} is not linked into this binary",
                    stored.namespace, stored.name, stored.version
                ),
                Some(h) if h.fingerprint() != stored.fingerprint => format!(
                    "handler {} has changed shape since these tasks were created (fingerprint \
                     {} in the database, {} in this binary): deploy the old version under its \
                     own version number to finish them",
                    h.key(),
                    stored.fingerprint,
                    h.fingerprint()
                ),
                Some(_) => continue,
            };
            tracing::error!(
                tasks = stored.tasks,
                "{reason}; these tasks will not run here"
            );
            events.publish(
                Event::new(names::REGISTRY_HANDLER_REFUSED)
                    .with_handler(&stored.namespace, &stored.name, &stored.version)
                    .with_count(stored.tasks as u64)
                    .with_message(reason.clone()),
            );
            report.refused.push(RefusedHandler { stored, reason });
        }
        let mode = CoordinationMode::for_capabilities(store.capabilities());
        if mode == CoordinationMode::SingleProcess {
            report.recovered_steps = store.recover_expired(true).await?;
        }
        report.warnings = store.warnings().await?;
        for warning in &report.warnings {
            tracing::warn!("{warning}");
        }
        let served_ids = by_id.keys().copied().collect();
        Ok(Tasker {
            inner: Arc::new(Inner {
                store,
                registry,
                by_id,
                ids,
                served_ids,
                resources,
                config,
                mode,
                report,
                events,
                housekeeping: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }
}

impl<S: Store> Tasker<S> {
    /// Starts building an engine on `store`.
    pub fn builder(store: S) -> TaskerBuilder<S> {
        TaskerBuilder {
            store,
            registry: None,
            resources: Resources::new(),
            config: EngineConfig::default(),
            migrate: false,
            subscribers: Vec::new(),
            registered_subscribers: true,
        }
    }

    /// The engine's Prometheus metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.inner.events.metrics()
    }

    /// The events this engine can publish: the built-ins and the custom
    /// events its handlers declare.
    pub fn event_catalog(&self) -> Catalog {
        Catalog::new(&self.inner.registry)
    }

    /// Delivery failures per subscriber.
    pub fn subscriber_failures(&self) -> HashMap<String, SubscriberFailures> {
        self.inner.events.failures()
    }

    pub(crate) fn publish(&self, event: Event) {
        self.inner.events.publish(event);
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The handlers served.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// How workers coordinate on this store.
    pub fn mode(&self) -> CoordinationMode {
        self.inner.mode
    }

    /// What the start-up check found.
    pub fn startup_report(&self) -> &StartupReport {
        &self.inner.report
    }

    /// Creates a task: finds the handler, checks the context against its
    /// type, and writes the task with its steps atomically. With an
    /// identity key that exists, returns the existing task instead. On any
    /// error nothing is written.
    pub async fn create_task(&self, request: TaskRequest) -> Result<Created> {
        let (task, handler) = self.prepare(request)?;
        let actor = task.initiator.clone();
        let created = self.inner.store.create_task(task).await?;
        self.announce_created(created, handler, actor.as_deref());
        Ok(created)
    }

    /// Creates several tasks in one transaction: every request is checked
    /// first, and on any error nothing is written. Faster than one by one.
    pub async fn create_tasks(&self, requests: Vec<TaskRequest>) -> Result<Vec<Created>> {
        let mut tasks = Vec::with_capacity(requests.len());
        let mut announce = Vec::with_capacity(requests.len());
        let mut requests = requests.into_iter();
        while let Some(request) = requests.next() {
            match self.prepare(request) {
                Ok((task, handler)) => {
                    announce.push((handler, task.initiator.clone()));
                    tasks.push(task);
                }
                Err(e) => {
                    // The rest may hold contexts too deep for `Drop`.
                    requests.for_each(TaskRequest::discard);
                    return Err(e);
                }
            }
        }
        let created = self.inner.store.create_tasks(tasks).await?;
        for (created, (handler, actor)) in created.iter().zip(announce) {
            self.announce_created(*created, handler, actor.as_deref());
        }
        Ok(created)
    }

    fn announce_created(&self, created: Created, handler: &Handler, actor: Option<&str>) {
        if let Created::New(task_id) = created {
            self.publish(
                Event::new(names::TASK_CREATED)
                    .with_task(task_id)
                    .of(handler)
                    .with_actor(actor.unwrap_or("tasker")),
            );
        }
    }

    /// Finds the handler, checks the context, and builds the rows to write.
    fn prepare(&self, request: TaskRequest) -> Result<(NewTask, &Handler)> {
        let request = request.into_parts()?;
        let handler = self
            .inner
            .registry
            .find(
                &request.namespace,
                &request.name,
                request.version.as_deref(),
            )
            .map_err(Error::Lookup)?;
        handler.check_context(&request.context)?;
        let key = (
            handler.namespace().to_owned(),
            handler.name().to_owned(),
            handler.version().clone(),
        );
        let handler_id = *self
            .inner
            .ids
            .get(&key)
            .ok_or_else(|| Error::HandlerNotServed(handler.key()))?;
        let graph = handler.graph();
        let defaults = &self.inner.config.step_defaults;
        let steps = handler
            .steps()
            .iter()
            .map(|step| {
                let config = step.config(defaults);
                NewStep {
                    name: step.name().to_owned(),
                    index: graph.index_of(step.name()).expect("graph holds every step") as u32,
                    parents: step
                        .depends_on()
                        .iter()
                        .map(|d| graph.index_of(d).expect("graph holds every step") as u32)
                        .collect(),
                    max_attempts: if config.retryable {
                        config.retry_limit.saturating_add(1)
                    } else {
                        1
                    },
                    timeout: config.timeout,
                }
            })
            .collect();
        let task = NewTask {
            handler_id,
            context: request.context,
            identity_key: request.identity_key,
            initiator: request.initiator,
            source_system: request.source_system,
            reason: request.reason,
            tags: request.tags,
            steps,
        };
        Ok((task, handler))
    }

    /// One task with its steps.
    pub async fn task(&self, task_id: TaskId) -> Result<TaskRecord> {
        Ok(self.inner.store.task(task_id).await?)
    }

    /// Tasks matching `filter`, newest first.
    pub async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>> {
        for (field, text) in [
            ("namespace", &filter.namespace),
            ("name", &filter.name),
            ("version", &filter.version),
        ] {
            if let Some(text) = text {
                crate::payload::check_text(text, field)?;
            }
        }
        Ok(self.inner.store.tasks(filter).await?)
    }

    /// The audit trail of a task.
    pub async fn transitions(&self, task_id: TaskId) -> Result<Vec<Transition>> {
        Ok(self.inner.store.transitions(task_id).await?)
    }

    /// Gives the failed steps of a failed task a new set of attempts.
    pub async fn retry_task(&self, task_id: TaskId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::RetryTask(task_id), actor)
            .await
    }

    /// Gives one failed step a new set of attempts.
    pub async fn retry_step(&self, step_id: StepId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::RetryStep(step_id), actor)
            .await
    }

    /// Cancels a task and its unfinished steps; a running attempt's result
    /// is discarded.
    pub async fn cancel_task(&self, task_id: TaskId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::CancelTask(task_id), actor)
            .await
    }

    /// Marks a task done by hand: its unfinished steps are resolved without
    /// an output and the task ends `resolved_manually`.
    pub async fn resolve_task(&self, task_id: TaskId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::ResolveTask(task_id), actor)
            .await
    }

    /// Cancels one unfinished step and every unfinished step after it; the
    /// rest of the task runs on, and the task ends `cancelled` once nothing
    /// else is left to run.
    pub async fn cancel_step(&self, step_id: StepId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::CancelStep(step_id), actor)
            .await
    }

    /// Marks a step done by hand with `output` for the steps that read it.
    pub async fn resolve_step(
        &self,
        step_id: StepId,
        output: serde_json::Value,
        actor: &str,
    ) -> Result<()> {
        let output = crate::payload::check_owned(output, "output")?;
        self.operator(OperatorAction::ResolveStep { step_id, output }, actor)
            .await
    }

    async fn operator(&self, action: OperatorAction, actor: &str) -> Result<()> {
        crate::payload::check_text(actor, "actor")?;
        tracing::info!(?action, actor, "operator action");
        let store = &self.inner.store;
        let task_id = match &action {
            OperatorAction::RetryTask(id)
            | OperatorAction::CancelTask(id)
            | OperatorAction::ResolveTask(id) => *id,
            OperatorAction::RetryStep(step)
            | OperatorAction::CancelStep(step)
            | OperatorAction::ResolveStep { step_id: step, .. } => {
                store.task_of_step(*step).await?
            }
        };
        let before = store.task(task_id).await?;
        store.operator_action(action.clone(), actor).await?;
        let after = store.task(task_id).await?;
        self.publish_operator_events(&action, &before, &after, actor);
        Ok(())
    }

    /// Events for what an operator action changed, read from the task
    /// before and after.
    fn publish_operator_events(
        &self,
        action: &OperatorAction,
        before: &TaskRecord,
        after: &TaskRecord,
        actor: &str,
    ) {
        let task_event = |name: &'static str| {
            Event::new(name)
                .with_task(after.task_id)
                .with_handler(&after.namespace, &after.name, &after.version)
                .with_actor(actor)
        };
        if matches!(action, OperatorAction::RetryTask(_)) {
            self.publish(task_event(names::TASK_RETRY_REQUESTED));
        }
        if before.state != after.state && after.state == TaskState::Cancelled {
            self.publish(task_event(names::TASK_CANCELLED));
        }
        if before.state != after.state && after.state == TaskState::ResolvedManually {
            self.publish(task_event(names::TASK_RESOLVED_MANUALLY));
        }
        for (old, new) in before.steps.iter().zip(&after.steps) {
            let name = match (old.state, new.state) {
                (StepState::Error, StepState::Ready) => names::STEP_RETRY_REQUESTED,
                (from, StepState::Cancelled) if from != StepState::Cancelled => {
                    names::STEP_CANCELLED
                }
                (from, StepState::ResolvedManually) if from != StepState::ResolvedManually => {
                    names::STEP_RESOLVED_MANUALLY
                }
                _ => continue,
            };
            let mut event = task_event(name).with_step(new.step_id, &new.name);
            if let Some(output) = new
                .output
                .clone()
                .filter(|_| name == names::STEP_RESOLVED_MANUALLY)
            {
                event = event.with_data(output);
            }
            self.publish(event);
        }
        if before.state != after.state && after.state == TaskState::Complete {
            self.publish(task_event(names::TASK_COMPLETED));
        }
        if before.state != after.state
            && matches!(
                after.state,
                TaskState::Complete | TaskState::Cancelled | TaskState::ResolvedManually
            )
        {
            self.publish(task_event(names::WORKFLOW_TASK_FINALIZED).with_task_state(after.state));
        }
    }

    /// Starts a worker on this runtime: it claims and runs steps until
    /// [`Worker::shutdown`].
    pub fn start_worker(&self) -> Worker {
        Worker::start(self.clone())
    }

    /// Creates a task, runs a worker until the task is finished or in
    /// `error`, and returns it: a whole workflow end to end, for tests and
    /// scripts.
    pub async fn run_task(&self, request: TaskRequest, timeout: Duration) -> Result<TaskRecord> {
        let task_id = self.create_task(request).await?.task_id();
        let worker = self.start_worker();
        let outcome = self.wait_for_task(task_id, timeout).await;
        worker.shutdown().await;
        outcome
    }

    /// Waits until the task is finished (complete, cancelled, resolved) or
    /// in `error`, polling every 20 ms, for at most `timeout`.
    pub async fn wait_for_task(&self, task_id: TaskId, timeout: Duration) -> Result<TaskRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let task = self.task(task_id).await?;
            if task.state.is_finished() || task.state == TaskState::Error {
                return Ok(task);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    task_id,
                    waited: timeout,
                    state: task.state,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn handler_by_id(&self, id: i64) -> Option<&Handler> {
        self.inner.by_id.get(&id)
    }
}
