//! Lifecycle events: the catalog, the [`Event`] payload, and
//! [`Subscriber`]s.
//!
//! The engine publishes an event at every step of a task's life
//! (`task.started`, `step.completed`, `workflow.task_finalized`, ...; see
//! [`BUILT_IN`]). Steps publish the custom events they declare with
//! `#[step(events = ["payment.processed"])]` through
//! [`StepContext::publish`](crate::StepContext::publish).
//!
//! Delivery is in-process, asynchronous and **at most once**: each
//! subscriber has its own bounded queue and task; an event for a full queue
//! is dropped and counted; each call to [`Subscriber::handle`] runs under a
//! timeout on its own task, so a subscriber that errors, panics or hangs is
//! counted and logged and never fails, stalls or slows a workflow step.
//! Events are not persisted: a process that dies loses what it had not
//! delivered. One subscriber sees one worker's events in the order they
//! were published; with several steps running at once, events of different
//! steps interleave. `task.created` is published by the creating engine
//! after the write, so a worker that starts the task at once may publish
//! `task.started` before it.
//!
//! ```
//! use tasker::events::{Event, EventFilter, Subscriber, SubscriberError};
//!
//! /// Pages someone when a task fails.
//! #[derive(Default)]
//! struct PageOnFailure;
//!
//! impl Subscriber for PageOnFailure {
//!     fn events(&self) -> EventFilter {
//!         EventFilter::only(["task.failed", "step.max_retries_reached"])
//!     }
//!
//!     async fn handle(&self, event: &Event) -> Result<(), SubscriberError> {
//!         let task = event.task_id().map(|id| id.to_string()).unwrap_or_default();
//!         println!("PAGE: {} on task {task}: {}", event.name(), event.error_message().unwrap_or(""));
//!         Ok(())
//!     }
//! }
//!
//! // Registered for every engine in the binary:
//! tasker::register_subscriber!(PageOnFailure);
//! ```

use std::any::type_name;
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::handler::Handler;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::state::TaskState;
use crate::step::{StepError, TaskId};
use crate::store::StepId;

/// The group an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCategory {
    /// Task lifecycle.
    Task,
    /// Step lifecycle.
    Step,
    /// Orchestration: discovery of runnable steps, finalisation.
    Workflow,
    /// Handler registration at start-up.
    Registry,
    /// Worker lifecycle.
    Worker,
    /// Declared by a step and published by its code.
    Custom,
}

/// One entry of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSpec {
    /// The event's name, e.g. `step.completed`.
    pub name: Cow<'static, str>,
    /// Its group.
    pub category: EventCategory,
    /// When it is published.
    pub description: Cow<'static, str>,
    /// The [`Event`] fields it sets.
    pub fields: Cow<'static, [&'static str]>,
    /// For a custom event: the `namespace/name@version step` declaring it.
    pub declared_by: Vec<String>,
}

macro_rules! built_in {
    ($($konst:ident = $name:literal, $category:ident, [$($field:literal),*], $description:literal;)*) => {
        /// Names of the built-in events, as constants.
        pub mod names {
            $(
                #[doc = $description]
                pub const $konst: &str = $name;
            )*
        }

        /// Every event the engine publishes.
        pub static BUILT_IN: &[EventSpec] = &[
            $(EventSpec {
                name: Cow::Borrowed($name),
                category: EventCategory::$category,
                description: Cow::Borrowed($description),
                fields: Cow::Borrowed(&[$($field),*]),
                declared_by: Vec::new(),
            },)*
        ];
    };
}

built_in! {
    TASK_CREATED = "task.created", Task, ["task_id", "namespace", "name", "version", "actor"],
        "A task was created (not published when an identity key returned an existing task).";
    TASK_STARTED = "task.started", Task, ["task_id", "namespace", "name", "version", "worker"],
        "A worker claimed the task's first step: pending -> in_progress.";
    TASK_COMPLETED = "task.completed", Task, ["task_id", "namespace", "name", "version"],
        "Every step of the task is complete or resolved by hand.";
    TASK_FAILED = "task.failed", Task, ["task_id", "namespace", "name", "version", "step", "error_class", "error_message"],
        "A step failed for good (permanent error or out of retries); the task is in error.";
    TASK_RETRY_REQUESTED = "task.retry_requested", Task, ["task_id", "namespace", "name", "version", "actor"],
        "An operator retried the failed task.";
    TASK_CANCELLED = "task.cancelled", Task, ["task_id", "namespace", "name", "version", "actor"],
        "An operator cancelled the task.";
    TASK_RESOLVED_MANUALLY = "task.resolved_manually", Task, ["task_id", "namespace", "name", "version", "actor"],
        "An operator marked the task done by hand; its unfinished steps were resolved without output.";
    STEP_EXECUTION_REQUESTED = "step.execution_requested", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "worker"],
        "A worker claimed the step and is about to run this attempt.";
    STEP_BEFORE_HANDLE = "step.before_handle", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt"],
        "The step's function is about to be called.";
    STEP_COMPLETED = "step.completed", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "duration"],
        "The attempt succeeded and its output is stored.";
    STEP_FAILED = "step.failed", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "duration", "error_class", "error_message"],
        "The attempt failed (it may still be retried: see step.backoff).";
    STEP_BACKOFF = "step.backoff", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "delay"],
        "A failed attempt will be retried after `delay`.";
    STEP_MAX_RETRIES_REACHED = "step.max_retries_reached", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt", "error_class", "error_message"],
        "A retryable failure with no attempts left: the step is in error.";
    STEP_RETRY_REQUESTED = "step.retry_requested", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "actor"],
        "An operator gave a failed step a new set of attempts.";
    STEP_CANCELLED = "step.cancelled", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "actor"],
        "The step was cancelled: with its task, or by itself together with the steps after it.";
    STEP_RESOLVED_MANUALLY = "step.resolved_manually", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "actor", "data"],
        "An operator marked the step done by hand, with `data` as its output.";
    STEP_RESULT_DISCARDED = "step.result_discarded", Step, ["task_id", "step_id", "namespace", "name", "version", "step", "attempt"],
        "An attempt finished after its claim was lost (lease expired, cancelled or resolved); its result was not recorded.";
    WORKFLOW_VIABLE_STEPS_DISCOVERED = "workflow.viable_steps_discovered", Workflow, ["task_id", "namespace", "name", "version", "count", "worker", "data"],
        "A worker claimed `count` runnable steps of the task (their names in `data`).";
    WORKFLOW_NO_VIABLE_STEPS = "workflow.no_viable_steps", Workflow, ["worker"],
        "A worker that had been busy found nothing to run.";
    WORKFLOW_TASK_FINALIZED = "workflow.task_finalized", Workflow, ["task_id", "namespace", "name", "version", "task_state"],
        "The task reached complete, error, cancelled or resolved_manually; `task_state` says which.";
    REGISTRY_HANDLER_REGISTERED = "registry.handler_registered", Registry, ["namespace", "name", "version", "data"],
        "The engine recorded a handler at start-up (`data`: its fingerprint).";
    REGISTRY_HANDLER_REFUSED = "registry.handler_refused", Registry, ["namespace", "name", "version", "count", "error_message"],
        "Unfinished tasks use a handler this binary does not have, or has in another shape; `count` tasks will not run here.";
    WORKER_STARTED = "worker.started", Worker, ["worker"],
        "A worker started claiming steps.";
    WORKER_STOPPED = "worker.stopped", Worker, ["worker", "count"],
        "A worker drained its in-flight steps and stopped; `count` attempts were recorded.";
}

/// One published event. Fields an event does not use are `None`; the
/// catalog lists which each event sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    name: Cow<'static, str>,
    at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<TaskId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_id: Option<StepId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(rename = "name_of_handler", skip_serializing_if = "Option::is_none")]
    handler: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_state: Option<TaskState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

impl Event {
    /// A new event named `name`, stamped now, with no fields set.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Event {
            name: name.into(),
            at: Utc::now(),
            task_id: None,
            step_id: None,
            namespace: None,
            handler: None,
            version: None,
            step: None,
            attempt: None,
            duration: None,
            delay: None,
            error_class: None,
            error_message: None,
            task_state: None,
            actor: None,
            worker: None,
            count: None,
            data: None,
        }
    }

    pub(crate) fn with_task(mut self, task_id: TaskId) -> Self {
        self.task_id = Some(task_id);
        self
    }

    pub(crate) fn with_handler(mut self, namespace: &str, name: &str, version: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self.handler = Some(name.to_owned());
        self.version = Some(version.to_owned());
        self
    }

    pub(crate) fn of(self, handler: &Handler) -> Self {
        let version = handler.version().to_string();
        self.with_handler(handler.namespace(), handler.name(), &version)
    }

    pub(crate) fn with_step(mut self, step_id: StepId, step: &str) -> Self {
        self.step_id = Some(step_id);
        self.step = Some(step.to_owned());
        self
    }

    pub(crate) fn with_step_name(mut self, step: &str) -> Self {
        self.step = Some(step.to_owned());
        self
    }

    pub(crate) fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt);
        self
    }

    pub(crate) fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    pub(crate) fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub(crate) fn with_error(mut self, error: &StepError) -> Self {
        self.error_class = Some(error.class().to_owned());
        self.error_message = Some(error.message().to_owned());
        self
    }

    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        self.error_message = Some(message.into());
        self
    }

    pub(crate) fn with_task_state(mut self, state: TaskState) -> Self {
        self.task_state = Some(state);
        self
    }

    pub(crate) fn with_actor(mut self, actor: &str) -> Self {
        self.actor = Some(actor.to_owned());
        self
    }

    pub(crate) fn with_worker(mut self, worker: &str) -> Self {
        self.worker = Some(worker.to_owned());
        self
    }

    pub(crate) fn with_count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it was published.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The task.
    pub fn task_id(&self) -> Option<TaskId> {
        self.task_id
    }

    /// The step.
    pub fn step_id(&self) -> Option<StepId> {
        self.step_id
    }

    /// The handler's namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The handler's name.
    pub fn handler_name(&self) -> Option<&str> {
        self.handler.as_deref()
    }

    /// The handler's version.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The step's name.
    pub fn step_name(&self) -> Option<&str> {
        self.step.as_deref()
    }

    /// The attempt number.
    pub fn attempt(&self) -> Option<u32> {
        self.attempt
    }

    /// How long the attempt ran.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// The retry delay.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// The error's class.
    pub fn error_class(&self) -> Option<&str> {
        self.error_class.as_deref()
    }

    /// The error's message.
    pub fn error_message(&self) -> Option<&str> {
        self.error_message.as_deref()
    }

    /// The task's state (for `workflow.task_finalized`).
    pub fn task_state(&self) -> Option<TaskState> {
        self.task_state
    }

    /// The operator or initiator.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// The worker.
    pub fn worker(&self) -> Option<&str> {
        self.worker.as_deref()
    }

    /// A count (claimed steps, refused tasks, ...).
    pub fn count(&self) -> Option<u64> {
        self.count
    }

    /// Extra data: a custom event's payload, claimed step names, ...
    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }
}

/// Which events a subscriber wants.
///
/// ```
/// use tasker::events::EventFilter;
///
/// let filter = EventFilter::only(["task.*", "step.failed"]);
/// assert!(filter.matches("task.completed"));
/// assert!(filter.matches("step.failed"));
/// assert!(!filter.matches("step.completed"));
/// assert!(EventFilter::all().matches("payment.processed"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    patterns: Vec<String>,
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        EventFilter {
            patterns: vec!["*".to_owned()],
        }
    }

    /// Events named in `patterns`: exact names, `prefix.*`, or `*`.
    pub fn only<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EventFilter {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the event named `name` passes.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| {
            p == "*"
                || p == name
                || p.strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with('.') && name.starts_with(prefix))
        })
    }
}

/// The error a subscriber may return.
pub type SubscriberError = Box<dyn std::error::Error + Send + Sync>;

/// Receives events. See the [module docs](self) for delivery guarantees.
pub trait Subscriber: Send + Sync + 'static {
    /// A name for logs and metrics (the type name by default).
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(type_name::<Self>())
    }

    /// The events wanted.
    fn events(&self) -> EventFilter;

    /// Handles one event.
    fn handle(&self, event: &Event) -> impl Future<Output = Result<(), SubscriberError>> + Send;
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), SubscriberError>> + Send>>;

/// Object-safe form of [`Subscriber`].
#[doc(hidden)]
pub trait ErasedSubscriber: Send + Sync + 'static {
    fn erased_name(&self) -> Cow<'static, str>;
    fn erased_events(&self) -> EventFilter;
    fn erased_handle(self: Arc<Self>, event: Arc<Event>) -> BoxFuture;
}

impl<S: Subscriber> ErasedSubscriber for S {
    fn erased_name(&self) -> Cow<'static, str> {
        self.name()
    }

    fn erased_events(&self) -> EventFilter {
        self.events()
    }

    fn erased_handle(self: Arc<Self>, event: Arc<Event>) -> BoxFuture {
        Box::pin(async move { self.handle(&event).await })
    }
}

/// A subscriber registered with [`register_subscriber!`](crate::register_subscriber).
#[doc(hidden)]
pub struct SubscriberRegistration {
    pub name: &'static str,
    pub make: fn() -> Arc<dyn ErasedSubscriber>,
}

inventory::collect!(SubscriberRegistration);

/// Registers a subscriber type (`Default`) for every engine in the binary,
/// through `inventory`.
#[macro_export]
macro_rules! register_subscriber {
    ($ty:ty) => {
        $crate::__private::inventory::submit! {
            $crate::__private::SubscriberRegistration {
                name: ::core::stringify!($ty),
                make: || ::std::sync::Arc::new(<$ty as ::core::default::Default>::default()),
            }
        }
    };
}

pub(crate) fn registered_subscribers() -> Vec<Arc<dyn ErasedSubscriber>> {
    let mut registrations: Vec<&SubscriberRegistration> = inventory::iter::<SubscriberRegistration>
        .into_iter()
        .collect();
    registrations.sort_by_key(|r| r.name);
    registrations.iter().map(|r| (r.make)()).collect()
}

/// Failures of one subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SubscriberFailures {
    /// `handle` returned an error.
    pub errors: u64,
    /// `handle` panicked.
    pub panics: u64,
    /// `handle` ran past the timeout and was abandoned.
    pub timeouts: u64,
    /// Events dropped because the subscriber's queue was full.
    pub dropped: u64,
    /// Events handled successfully.
    pub delivered: u64,
}

#[derive(Default)]
struct Counters {
    errors: AtomicU64,
    panics: AtomicU64,
    timeouts: AtomicU64,
    dropped: AtomicU64,
    delivered: AtomicU64,
}

struct Slot {
    name: Cow<'static, str>,
    filter: EventFilter,
    queue: mpsc::Sender<Arc<Event>>,
    counters: Arc<Counters>,
}

/// Publishes events to subscribers and metrics. Cheap to clone.
#[derive(Clone)]
pub(crate) struct EventBus {
    slots: Arc<Vec<Slot>>,
    metrics: Arc<Metrics>,
}

impl EventBus {
    /// Starts one delivery task per subscriber.
    pub(crate) fn start(
        subscribers: Vec<Arc<dyn ErasedSubscriber>>,
        queue: usize,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let slots = subscribers
            .into_iter()
            .map(|subscriber| {
                let (tx, rx) = mpsc::channel(queue.max(1));
                let counters = Arc::new(Counters::default());
                let name = subscriber.erased_name();
                let filter = subscriber.erased_events();
                tokio::spawn(deliver(
                    subscriber,
                    name.clone(),
                    rx,
                    timeout,
                    Arc::clone(&counters),
                    Arc::clone(&metrics),
                ));
                Slot {
                    name,
                    filter,
                    queue: tx,
                    counters,
                }
            })
            .collect();
        EventBus {
            slots: Arc::new(slots),
            metrics,
        }
    }

    /// Records the event in the metrics and queues it for every subscriber
    /// that wants it. Never waits.
    pub(crate) fn publish(&self, event: Event) {
        self.metrics.record(&event);
        let event = Arc::new(event);
        for slot in self.slots.iter() {
            if !slot.filter.matches(&event.name) {
                continue;
            }
            if slot.queue.try_send(Arc::clone(&event)).is_err() {
                slot.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.metrics.subscriber_failure(&slot.name, "dropped");
                tracing::warn!(subscriber = %slot.name, event = %event.name, "subscriber queue full; event dropped");
            }
        }
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Failures per subscriber.
    pub(crate) fn failures(&self) -> HashMap<String, SubscriberFailures> {
        self.slots
            .iter()
            .map(|slot| {
                let c = &slot.counters;
                (
                    slot.name.to_string(),
                    SubscriberFailures {
                        errors: c.errors.load(Ordering::Relaxed),
                        panics: c.panics.load(Ordering::Relaxed),
                        timeouts: c.timeouts.load(Ordering::Relaxed),
                        dropped: c.dropped.load(Ordering::Relaxed),
                        delivered: c.delivered.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }
}

async fn deliver(
    subscriber: Arc<dyn ErasedSubscriber>,
    name: Cow<'static, str>,
    mut queue: mpsc::Receiver<Arc<Event>>,
    timeout: Duration,
    counters: Arc<Counters>,
    metrics: Arc<Metrics>,
) {
    while let Some(event) = queue.recv().await {
        let mut call = tokio::spawn(Arc::clone(&subscriber).erased_handle(Arc::clone(&event)));
        let (counter, kind) = match tokio::time::timeout(timeout, &mut call).await {
            Ok(Ok(Ok(()))) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Ok(Ok(Err(e))) => {
                tracing::warn!(subscriber = %name, event = %event.name, "subscriber failed: {e}");
                (&counters.errors, "error")
            }
            Ok(Err(e)) if e.is_panic() => {
                tracing::warn!(subscriber = %name, event = %event.name, "subscriber panicked");
                (&counters.panics, "panic")
            }
            Ok(Err(_)) => (&counters.errors, "error"),
            Err(_) => {
                call.abort();
                tracing::warn!(subscriber = %name, event = %event.name, ?timeout, "subscriber timed out");
                (&counters.timeouts, "timeout")
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics.subscriber_failure(&name, kind);
    }
}

/// What a step may publish, and where to; lives in its context.
#[doc(hidden)]
#[derive(Clone)]
pub struct StepEventSink {
    pub(crate) bus: EventSink,
    pub(crate) declared: &'static [&'static str],
    pub(crate) base: Event,
}

/// Where a step's custom events go: the engine's bus, or a runner's log.
#[derive(Clone)]
pub(crate) enum EventSink {
    Bus(EventBus),
    Log(Arc<Mutex<Vec<Event>>>),
}

impl std::fmt::Debug for StepEventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepEventSink")
            .field("declared", &self.declared)
            .finish()
    }
}

impl StepEventSink {
    pub(crate) fn publish(&self, name: &str, data: Value) -> Result<(), StepError> {
        let Some(name) = self.declared.iter().find(|d| **d == name) else {
            return Err(StepError::permanent(format!(
                "step `{}` published the event {name:?}, which it does not declare; add it to \
                 #[step(events = [...])] (declared: {:?})",
                self.base.step.as_deref().unwrap_or_default(),
                self.declared
            ))
            .with_class("UndeclaredEvent"));
        };
        let mut event = self.base.clone();
        event.name = Cow::Borrowed(name);
        event.at = Utc::now();
        event.data = Some(data);
        match &self.bus {
            EventSink::Bus(bus) => bus.publish(event),
            EventSink::Log(log) => log.lock().expect("event log").push(event),
        }
        Ok(())
    }
}

/// The events a set of handlers can publish: the built-ins and every custom
/// event their steps declare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    events: Vec<EventSpec>,
}

impl Catalog {
    /// The built-ins plus the custom events declared in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let mut events: Vec<EventSpec> = BUILT_IN.to_vec();
        let mut custom: HashMap<&'static str, Vec<String>> = HashMap::new();
        for handler in registry.handlers() {
            for step in handler.steps() {
                for event in step.events() {
                    custom.entry(event).or_default().push(format!(
                        "{} {}",
                        handler.key(),
                        step.name()
                    ));
                }
            }
        }
        let mut custom: Vec<_> = custom.into_iter().collect();
        custom.sort();
        for (name, declared_by) in custom {
            events.push(EventSpec {
                name: Cow::Borrowed(name),
                category: EventCategory::Custom,
                description: Cow::Owned(format!(
                    "Custom event declared by {}.",
                    declared_by.join(", ")
                )),
                fields: Cow::Borrowed(&[
                    "task_id",
                    "step_id",
                    "namespace",
                    "name",
                    "version",
                    "step",
                    "attempt",
                    "data",
                ]),
                declared_by,
            });
        }
        Catalog { events }
    }

    /// Every event.
    pub fn events(&self) -> &[EventSpec] {
        &self.events
    }

    /// Event names, in catalog order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.events.iter().map(|e| e.name.as_ref())
    }

    /// One event.
    pub fn get(&self, name: &str) -> Option<&EventSpec> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The events of one category.
    pub fn by_category(&self, category: EventCategory) -> impl Iterator<Item = &EventSpec> {
        self.events.iter().filter(move |e| e.category == category)
    }

    /// The catalog as a Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut out =
            String::from("| event | category | fields | description |\n|---|---|---|---|\n");
        for e in &self.events {
            let category = serde_json::to_value(e.category)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push_str(&format!(
                "| `{}` | {category} | {} | {} |\n",
                e.name,
                e.fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                e.description
            ));
        }
        out
    }
}
