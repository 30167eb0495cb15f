//! The engine: [`Tasker`] creates tasks, applies operator actions and runs
//! [`Worker`](crate::Worker)s, on any [`Store`].

mod attempt;
mod builder;
mod checkpoint;
mod config;
mod operator;
mod stats;
mod worker;

pub use crate::registry::RefusedHandler;
pub(crate) use attempt::run_attempt;
pub use builder::{StartupReport, TaskerBuilder};
pub use config::{Backoff, CoordinationMode, EngineConfig, RetentionPolicy, RetentionRule};
pub use stats::{WorkerCounts, WorkerStats};
pub use worker::Worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use semver::Version;

use crate::binding::{ResolvedStep, TaskDefaults};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::{names, Catalog, Event, EventBus, SubscriberFailures};
use crate::handler::Handler;
use crate::ids::{StepId, TaskId};
use crate::metrics::Metrics;
use crate::priority::{ClaimOrder, QueuedStep};
use crate::registry::Registry;
use crate::request::TaskRequest;
use crate::state::TaskState;
use crate::step::Resources;
use crate::store::{
    Created, ItemWindow, NewStep, NewTask, StepRecord, Store, TaskFilter, TaskRecord, Transition,
};

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
    /// Each served handler's steps, every configuration layer applied.
    pub(crate) steps: HashMap<i64, Arc<[ResolvedStep]>>,
    /// Each served handler's configured task priority and deadline.
    pub(crate) task_defaults: HashMap<i64, TaskDefaults>,
    /// Where new steps go in the claim queue.
    pub(crate) claim_order: Arc<dyn ClaimOrder>,
    pub(crate) settings: Config,
    pub(crate) ids: HashMap<(String, String, Version), i64>,
    pub(crate) served_ids: Vec<i64>,
    /// The limits this worker claims under, with the steps each covers.
    pub(crate) limits: Vec<crate::limit::ClaimLimit>,
    pub(crate) resources: Resources,
    pub(crate) config: EngineConfig,
    pub(crate) mode: CoordinationMode,
    pub(crate) report: StartupReport,
    pub(crate) events: EventBus,
    pub(crate) metrics: Arc<Metrics>,
    /// A store housekeeping run is in progress.
    pub(crate) housekeeping: std::sync::atomic::AtomicBool,
    /// When the background retention policy last ran (or is running).
    pub(crate) retention_ran: std::sync::Mutex<Option<std::time::Instant>>,
}

impl<S: Store> Tasker<S> {
    /// The engine's Prometheus metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The events this engine can publish: the built-ins and the custom
    /// events its handlers declare.
    pub fn event_catalog(&self) -> Catalog {
        self.inner.registry.event_catalog()
    }

    /// Delivery failures per subscriber.
    pub fn subscriber_failures(&self) -> HashMap<String, SubscriberFailures> {
        self.inner.events.failures()
    }

    /// Every event this engine publishes from now on, as it is published:
    /// for live views such as the dashboard's task page. Events of other
    /// processes' workers do not arrive here; a receiver that falls more
    /// than 1,024 events behind misses the oldest
    /// ([`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)).
    /// Costs nothing while no receiver is alive.
    ///
    /// ```no_run
    /// # async fn demo(tasker: tasker::Tasker<impl tasker::Store>) {
    /// let mut events = tasker.live_events();
    /// while let Ok(event) = events.recv().await {
    ///     println!("{} {:?}", event.name(), event.task_id());
    /// }
    /// # }
    /// ```
    pub fn live_events(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>> {
        self.inner.events.listen()
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
                handler
                    .event(names::TASK_CREATED)
                    .with_task(task_id)
                    .with_actor(actor.unwrap_or("tasker")),
            );
        }
    }

    /// Checks a request as [`create_task`](Self::create_task) does (the
    /// handler exists and is served here, the context fits its type, the
    /// payload limits) and builds the rows a store writes for it, without
    /// writing anything. For stores that create tasks inside a caller's own
    /// transaction (`tasker_diesel::CreateTaskIn`); no `task.created`
    /// event is published for such tasks, since only the caller knows
    /// whether its transaction commits.
    pub fn prepare_task(&self, request: TaskRequest) -> Result<NewTask> {
        self.prepare(request).map(|(task, _)| task)
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
        handler.validate_context(&request.context)?;
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
        let resolved = self.resolved_steps(handler_id);
        let defaults = self
            .inner
            .task_defaults
            .get(&handler_id)
            .copied()
            .unwrap_or_default();
        let task_priority = request.priority.or(defaults.priority).unwrap_or_default();
        let order = &*self.inner.claim_order;
        // The handler's own per-task settings win over the attribute and
        // the file.
        let per_task = handler.step_defaults(&request.context)?;
        let steps = handler
            .steps()
            .iter()
            .zip(resolved.iter())
            .enumerate()
            .map(|(index, (step, resolved))| {
                let set = per_task.at(index);
                let config = set.apply(resolved.config);
                let priority = set
                    .get_priority()
                    .or(resolved.priority)
                    .unwrap_or(task_priority);
                let head_start = order.head_start(&QueuedStep {
                    namespace: handler.namespace(),
                    handler: handler.name(),
                    step: step.name(),
                    priority,
                    task_priority,
                    context: &request.context,
                });
                NewStep {
                    name: step.name().to_owned(),
                    index: graph.index_of(step.name()).expect("graph holds every step") as u32,
                    parents: step
                        .depends_on()
                        .iter()
                        .map(|d| graph.index_of(d).expect("graph holds every step") as u32)
                        .collect(),
                    max_attempts: config.max_attempts(),
                    timeout: config.timeout,
                    priority,
                    head_start,
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
            priority: task_priority,
            max_execution_time: request.max_execution_time.or(defaults.max_execution_time),
            steps,
        };
        Ok((task, handler))
    }

    /// One task with its steps, every fan-out item among them (see
    /// [`task_view`](Self::task_view) for a read bounded by a window).
    pub async fn task(&self, task_id: TaskId) -> Result<TaskRecord> {
        Ok(self.inner.store.task(task_id).await?)
    }

    /// One task with its steps and, of each fan-out's items, those in
    /// `items`; every fan-out's group row counts all its items
    /// ([`StepRecord::items`](crate::store::StepRecord::items)).
    pub async fn task_view(&self, task_id: TaskId, items: ItemWindow) -> Result<TaskRecord> {
        Ok(self.inner.store.task_view(task_id, items).await?)
    }

    /// One step (a fan-out item, or a group with its items' counts) and
    /// its task's id.
    pub async fn step(&self, step_id: StepId) -> Result<(TaskId, StepRecord)> {
        Ok(self.inner.store.step(step_id).await?)
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

    /// The audit trail of a task, every fan-out item's transitions among
    /// them (see [`transitions_window`](Self::transitions_window) for a
    /// bounded read).
    pub async fn transitions(&self, task_id: TaskId) -> Result<Vec<Transition>> {
        Ok(self.inner.store.transitions(task_id).await?)
    }

    /// The part of a task's audit trail in `window`, oldest first.
    ///
    /// ```no_run
    /// # async fn show(tasker: &tasker::Tasker<impl tasker::Store>, id: tasker::TaskId) -> tasker::Result<()> {
    /// use tasker::store::TransitionWindow;
    ///
    /// // The newest 100 transitions of the task and its steps, not of its items.
    /// for t in tasker.transitions_window(id, TransitionWindow::STEPS.newest(100)).await? {
    ///     println!("{} {:?} -> {}", t.at, t.from_state, t.to_state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn transitions_window(
        &self,
        task_id: TaskId,
        window: crate::store::TransitionWindow,
    ) -> Result<Vec<Transition>> {
        Ok(self.inner.store.transitions_window(task_id, window).await?)
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
    /// in `error`, polling every 20 ms, for at most `timeout`; returns it
    /// with every fan-out item. The polls read no items.
    pub async fn wait_for_task(&self, task_id: TaskId, timeout: Duration) -> Result<TaskRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let task = self.task_view(task_id, ItemWindow::NONE).await?;
            if task.state.is_finished() || task.state == TaskState::Error {
                return self.task(task_id).await;
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

    /// The steps of served handler `id` with their resolved settings.
    pub(crate) fn resolved_steps(&self, id: i64) -> &[ResolvedStep] {
        self.inner.steps.get(&id).map_or(&[], |steps| &steps[..])
    }

    /// The configuration this engine was built with (see
    /// [`TaskerBuilder::settings`]); the built-in defaults when none.
    pub fn settings(&self) -> &Config {
        &self.inner.settings
    }

    /// The settings step `step` of `handler` runs with: the engine's step
    /// defaults, the step's attribute, and the configuration's `handlers:`
    /// entries applied. `None` for a handler this engine does not serve.
    pub fn step_config(&self, handler: &Handler, step: &str) -> Option<crate::StepConfig> {
        let key = (
            handler.namespace().to_owned(),
            handler.name().to_owned(),
            handler.version().clone(),
        );
        let id = self.inner.ids.get(&key)?;
        let index = handler.steps().iter().position(|s| s.name() == step)?;
        self.resolved_steps(*id).get(index).map(|r| r.config)
    }
}
