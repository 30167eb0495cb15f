//! One published [`Event`].

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::ids::StepId;
use crate::ids::TaskId;
use crate::state::TaskState;

/// One published event. Fields an event does not use are `None`; the
/// catalog lists which each event sets.
///
/// The engine builds its events with the same builder a test can use to
/// hand a subscriber a synthetic one:
///
/// ```
/// use std::time::Duration;
/// use tasker::events::{names, Event};
/// use tasker::{StepId, TaskId};
///
/// let failed = Event::new(names::STEP_FAILED)
///     .with_task(TaskId(7))
///     .with_handler("payments", "process_order", "1.0.0")
///     .with_step(StepId(21), "charge")
///     .with_attempt(2)
///     .with_duration(Duration::from_millis(120))
///     .with_error("GatewayTimeout", "the gateway did not answer");
/// assert_eq!(failed.name(), "step.failed");
/// assert_eq!(failed.step_name(), Some("charge"));
/// assert_eq!(failed.error_class(), Some("GatewayTimeout"));
/// assert_eq!(failed.worker(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub(crate) name: Cow<'static, str>,
    pub(crate) at: DateTime<Utc>,
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
    pub(crate) step: Option<String>,
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
    pub(crate) data: Option<Value>,
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

    /// Sets the task.
    #[must_use]
    pub fn with_task(mut self, task_id: TaskId) -> Self {
        self.task_id = Some(task_id);
        self
    }

    /// Sets the handler: namespace, name and version.
    #[must_use]
    pub fn with_handler(mut self, namespace: &str, name: &str, version: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self.handler = Some(name.to_owned());
        self.version = Some(version.to_owned());
        self
    }

    /// Sets the step: its id and name.
    #[must_use]
    pub fn with_step(mut self, step_id: StepId, step: &str) -> Self {
        self.step_id = Some(step_id);
        self.step = Some(step.to_owned());
        self
    }

    /// Sets the step's name alone (an event about a step with no row yet).
    #[must_use]
    pub fn with_step_name(mut self, step: &str) -> Self {
        self.step = Some(step.to_owned());
        self
    }

    /// Sets the attempt number (1-based).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// Sets how long the attempt (or task) ran.
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Sets the delay before a retry.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sets the error's class and message.
    #[must_use]
    pub fn with_error(mut self, class: &str, message: &str) -> Self {
        self.error_class = Some(class.to_owned());
        self.error_message = Some(message.to_owned());
        self
    }

    /// Sets the message alone.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.error_message = Some(message.into());
        self
    }

    /// Sets the state a task reached.
    #[must_use]
    pub fn with_task_state(mut self, state: TaskState) -> Self {
        self.task_state = Some(state);
        self
    }

    /// Sets who acted (an operator, a worker).
    #[must_use]
    pub fn with_actor(mut self, actor: &str) -> Self {
        self.actor = Some(actor.to_owned());
        self
    }

    /// Sets the worker.
    #[must_use]
    pub fn with_worker(mut self, worker: &str) -> Self {
        self.worker = Some(worker.to_owned());
        self
    }

    /// Sets a count (steps, tasks, attempts: see the catalog).
    #[must_use]
    pub fn with_count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// The custom event `name` with `data`, stamped now, with this event's
    /// task, step and handler fields.
    pub(crate) fn custom(&self, name: &'static str, data: Value) -> Self {
        let mut event = self.clone();
        event.name = Cow::Borrowed(name);
        event.at = Utc::now();
        event.data = Some(data);
        event
    }

    /// Sets the event's data (a custom event's payload, a step's output).
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
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
