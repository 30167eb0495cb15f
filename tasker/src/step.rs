//! What a step sees and returns: [`StepContext`], [`StepResult`] and
//! [`StepError`].

use std::any::type_name;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::annotation::{Annotation, Annotations};
use crate::ids::TaskId;
pub use crate::resources::{ConfigValue, HandlerConfigs, Resources};
use crate::transaction::{SharedTransaction, TransactionGuard};

/// What a step returns: its output, or why it failed.
///
/// The output must be `Serialize + DeserializeOwned`: it is stored, and the
/// steps that depend on this one receive it deserialized.
pub type StepResult<T> = Result<T, StepError>;

/// Why a step attempt failed, and whether trying again can help.
///
/// * [`StepError::retryable`]: a transient failure (timeout, 503, lock
///   conflict). The step runs again after a backoff delay, while it has
///   retries left.
/// * [`StepError::permanent`]: retrying cannot help (invalid data, a
///   declined card). The step fails at once and its task goes to `error`.
/// * `?` on any other error type converts it into a retryable `StepError`
///   whose class is the error's type name.
///
/// `StepError` does not implement [`std::error::Error`] itself, so that the
/// blanket `From` conversion can exist (as with `anyhow::Error`).
///
/// ```
/// use std::time::Duration;
/// use tasker::prelude::*;
///
/// fn charge(amount_cents: i64) -> StepResult<String> {
///     if amount_cents <= 0 {
///         return Err(StepError::permanent("amount must be positive"));
///     }
///     // The payment provider asked us to come back in a minute.
///     Err(StepError::retryable("provider is rate limiting").with_retry_after(Duration::from_secs(60)))
/// }
///
/// let error = charge(-5).unwrap_err();
/// assert!(!error.is_retryable());
/// let error = charge(100).unwrap_err();
/// assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
///
/// // `?` on any other error: retryable, classed by its type.
/// fn parse(input: &str) -> StepResult<i64> {
///     Ok(input.parse::<i64>()?)
/// }
/// let error = parse("x").unwrap_err();
/// assert!(error.is_retryable());
/// assert_eq!(error.class(), "core::num::error::ParseIntError");
/// ```
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    kind: StepErrorKind,
    message: String,
    class: Cow<'static, str>,
}

/// Whether a failed attempt may be retried.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepErrorKind {
    /// Worth another attempt, after the backoff delay or `after` when given.
    Retryable {
        /// Overrides the computed backoff delay.
        after: Option<Duration>,
    },
    /// Another attempt cannot succeed.
    Permanent,
}

impl StepError {
    const DEFAULT_CLASS: &'static str = "StepError";

    /// A transient failure: the step is attempted again while it has retries
    /// left.
    pub fn retryable(message: impl Into<String>) -> Self {
        StepError {
            kind: StepErrorKind::Retryable { after: None },
            message: message.into(),
            class: Cow::Borrowed(Self::DEFAULT_CLASS),
        }
    }

    /// A failure another attempt cannot fix: the step fails now.
    pub fn permanent(message: impl Into<String>) -> Self {
        StepError {
            kind: StepErrorKind::Permanent,
            message: message.into(),
            class: Cow::Borrowed(Self::DEFAULT_CLASS),
        }
    }

    /// Makes the error retryable no sooner than `delay` from now, instead of
    /// the computed backoff (an HTTP `Retry-After`, say).
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.kind = StepErrorKind::Retryable { after: Some(delay) };
        self
    }

    /// Sets the error class shown in events and the API (defaults to
    /// `StepError`, or the source error's type name for `?`).
    #[must_use]
    pub fn with_class(mut self, class: impl Into<Cow<'static, str>>) -> Self {
        self.class = class.into();
        self
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, StepErrorKind::Retryable { .. })
    }

    /// Whether this failure of attempt `attempt` (1-based) of a step that
    /// may make `max_attempts` in all is followed by another attempt: the
    /// one retry rule of the engine and the test runner.
    pub(crate) fn retries_after(&self, attempt: u32, max_attempts: u32) -> bool {
        self.is_retryable() && attempt < max_attempts
    }

    /// The delay the step asked for before its next attempt, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            StepErrorKind::Retryable { after } => after,
            StepErrorKind::Permanent => None,
        }
    }

    /// Retryable or permanent.
    pub fn kind(&self) -> StepErrorKind {
        self.kind
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A short classification of the error, usually a type name.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// Longest message stored; longer ones are cut (at a character
    /// boundary) and marked.
    pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

    /// The error as it can always be stored: NUL characters replaced, the
    /// message cut to [`Self::MAX_MESSAGE_BYTES`].
    pub(crate) fn storable(mut self) -> Self {
        use crate::payload::sanitize_text;
        if let Cow::Owned(clean) = sanitize_text(&self.message) {
            self.message = clean;
        }
        if let Cow::Owned(clean) = sanitize_text(&self.class) {
            self.class = Cow::Owned(clean);
        }
        if self.message.len() > Self::MAX_MESSAGE_BYTES {
            let mut end = Self::MAX_MESSAGE_BYTES;
            while !self.message.is_char_boundary(end) {
                end -= 1;
            }
            self.message.truncate(end);
            self.message.push_str(" [truncated]");
        }
        self
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_retryable() {
            "retryable"
        } else {
            "permanent"
        };
        write!(f, "{} ({kind}): {}", self.class, self.message)
    }
}

impl<E> From<E> for StepError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        StepError {
            kind: StepErrorKind::Retryable { after: None },
            message,
            class: Cow::Borrowed(type_name::<E>()),
        }
    }
}

/// Converts any `Result` into a [`StepResult`] with the failure kind stated.
///
/// ```
/// use tasker::prelude::*;
///
/// fn validate(input: &str) -> StepResult<u32> {
///     // Bad input will not get better by retrying.
///     input.parse::<u32>().permanent()
/// }
/// assert!(!validate("x").unwrap_err().is_retryable());
/// ```
pub trait StepResultExt<T> {
    /// Any error is permanent.
    fn permanent(self) -> StepResult<T>;
    /// Any error is retryable.
    fn retryable(self) -> StepResult<T>;
}

impl<T, E: fmt::Display> StepResultExt<T> for Result<T, E> {
    fn permanent(self) -> StepResult<T> {
        self.map_err(|e| StepError::permanent(e.to_string()).with_class(class_of::<E>()))
    }

    fn retryable(self) -> StepResult<T> {
        self.map_err(|e| StepError::retryable(e.to_string()).with_class(class_of::<E>()))
    }
}

/// The class recorded for an error of type `E`: its type name, except for
/// plain messages (`String`, `&str`, ...), whose type says nothing about the
/// failure: they get the default class, `StepError`.
fn class_of<E: ?Sized>() -> &'static str {
    match type_name::<E>() {
        "alloc::string::String"
        | "&str"
        | "str"
        | "&alloc::string::String"
        | "alloc::boxed::Box<str>"
        | "alloc::borrow::Cow<str>" => StepError::DEFAULT_CLASS,
        name => name,
    }
}

/// Settings of a step, resolved from its `#[step(...)]` attribute and the
/// worker's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepConfig {
    /// Retries after the first attempt: `retry_limit = 3` allows 4 attempts.
    pub retry_limit: u32,
    /// Whether a retryable error may be retried at all.
    pub retryable: bool,
    /// How long one attempt may run before it is failed as timed out.
    pub timeout: Option<Duration>,
}

impl StepConfig {
    /// Retries allowed when neither the step nor the worker says otherwise.
    pub const DEFAULT_RETRY_LIMIT: u32 = 3;

    /// Attempts the step may make in all: the first and `retry_limit`
    /// retries, or only the first when it is not retryable.
    pub fn max_attempts(&self) -> u32 {
        if self.retryable {
            self.retry_limit.saturating_add(1)
        } else {
            1
        }
    }

    /// Whether a failure of attempt number `attempt` (1-based) may be
    /// followed by another attempt.
    pub fn allows_retry_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts()
    }
}

impl Default for StepConfig {
    fn default() -> Self {
        StepConfig {
            retry_limit: Self::DEFAULT_RETRY_LIMIT,
            retryable: true,
            timeout: None,
        }
    }
}

/// What a step receives: the task's typed context and facts about this
/// attempt.
///
/// The engine builds it for each attempt. To unit-test a step, build one
/// yourself and call the step as an ordinary function:
///
/// ```
/// use tasker::prelude::*;
///
/// struct Greeting(&'static str);
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ctx = StepContext::new(serde_json::json!({"name": "Ada"}))
///     .with_attempt(2)
///     .with_resource(Greeting("Hello"));
/// assert_eq!(ctx.attempt(), 2);
/// let greeting = ctx.resource::<Greeting>().unwrap().0;
/// assert_eq!(format!("{greeting}, {}", ctx.context()["name"].as_str().unwrap()), "Hello, Ada");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct StepContext<C = serde_json::Value> {
    context: C,
    task_id: TaskId,
    step_name: &'static str,
    attempt: u32,
    config: StepConfig,
    resources: Resources,
    events: Option<StepEvents>,
    transaction: Option<SharedTransaction>,
    configs: HandlerConfigs,
    annotations: Annotations,
}

impl<C> StepContext<C> {
    /// A context for attempt 1 of a step of task 0, with default settings
    /// and no resources; adjust with the `with_*` methods.
    pub fn new(context: C) -> Self {
        StepContext {
            context,
            task_id: TaskId(0),
            step_name: "",
            attempt: 1,
            config: StepConfig::default(),
            resources: Resources::new(),
            events: None,
            transaction: None,
            configs: HandlerConfigs::default(),
            annotations: Annotations::default(),
        }
    }

    pub(crate) fn with_annotations(mut self, annotations: Annotations) -> Self {
        self.annotations = annotations;
        self
    }

    pub(crate) fn with_configs(mut self, configs: HandlerConfigs) -> Self {
        self.configs = configs;
        self
    }

    /// Sets the configuration value [`handler_config`](Self::handler_config)
    /// returns, for unit tests that call a step directly.
    #[must_use]
    pub fn with_handler_config<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.configs.set_step(value);
        self
    }

    /// The step's configuration of type `T`: the value its `#[step(config =
    /// T)]` declares, or its handler's `#[task_handler(config = T)]`, read
    /// from the configuration file's `handler_config` once at start-up (no
    /// parsing per attempt).
    ///
    /// Asking for a type neither declares is a permanent error naming the
    /// types that are declared.
    ///
    /// ```
    /// use tasker::prelude::*;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Gateway { base_url: String }
    ///
    /// let ctx = StepContext::new(()).with_handler_config(Gateway { base_url: "https://pay.test".into() });
    /// assert_eq!(ctx.handler_config::<Gateway>().unwrap().base_url, "https://pay.test");
    /// assert!(ctx.handler_config::<String>().is_err());
    /// ```
    pub fn handler_config<T: Send + Sync + 'static>(&self) -> StepResult<&T> {
        self.configs.get::<T>().ok_or_else(|| {
            let declared = self.configs.declared();
            let declared = if declared.is_empty() {
                "it declares none".to_owned()
            } else {
                format!("it has {}", declared.join(" and "))
            };
            StepError::permanent(format!(
                "step `{}` asked for configuration of type `{}`, but {declared}; declare it with                  `#[step(config = T)]` or `#[task_handler(config = T)]`",
                self.step_name,
                type_name::<T>()
            ))
            .with_class("MissingConfig")
        })
    }

    pub(crate) fn with_transaction(mut self, transaction: Option<SharedTransaction>) -> Self {
        self.transaction = transaction;
        self
    }

    /// The database connection of this attempt's transaction, for a step
    /// declared `#[step(transactional)]`: what the step writes through it
    /// commits together with the step's completion, or not at all (a
    /// failure, a timeout, a crash or a lost lease rolls it back). `T` is
    /// the store's connection type; with `tasker-diesel`'s PostgreSQL store
    /// it is `diesel_async::AsyncPgConnection` (`tasker_diesel::StepDb`
    /// names it for you: `ctx.db().await?`).
    ///
    /// A step that is not transactional, or runs where there is no
    /// database (`TaskRunner`), gets a permanent error saying so.
    pub async fn transaction<T: Send + 'static>(
        &self,
    ) -> Result<TransactionGuard<'_, T>, StepError> {
        let Some(shared) = &self.transaction else {
            return Err(StepError::permanent(format!(
                "step `{}` has no database transaction: declare it `#[step(transactional)]` and \
                 run it on a store that supports it (PostgreSQL)",
                self.step_name
            ))
            .with_class("NoTransaction"));
        };
        let guard = shared.lock().await;
        tokio::sync::MutexGuard::try_map(guard, |slot| {
            slot.as_mut()
                .and_then(|tx| tx.connection().downcast_mut::<T>())
        })
        .map_err(|_| {
            StepError::permanent(format!(
                "the transaction of step `{}` is not on a `{}` connection (or has ended)",
                self.step_name,
                std::any::type_name::<T>()
            ))
            .with_class("NoTransaction")
        })
    }

    pub(crate) fn with_events(mut self, events: Option<StepEvents>) -> Self {
        self.events = events;
        self
    }

    /// Sets the task id.
    #[must_use]
    pub fn with_task_id(mut self, task_id: TaskId) -> Self {
        self.task_id = task_id;
        self
    }

    /// Sets the step name.
    #[must_use]
    pub fn with_step_name(mut self, step_name: &'static str) -> Self {
        self.step_name = step_name;
        self
    }

    /// Sets the attempt number (1 for the first attempt).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Sets the step's settings.
    #[must_use]
    pub fn with_config(mut self, config: StepConfig) -> Self {
        self.config = config;
        self
    }

    /// Adds a shared resource.
    #[must_use]
    pub fn with_resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources = self.resources.with(value);
        self
    }

    /// Replaces all shared resources.
    #[must_use]
    pub fn with_resources(mut self, resources: Resources) -> Self {
        self.resources = resources;
        self
    }

    /// The task's context, as given when the task was created.
    pub fn context(&self) -> &C {
        &self.context
    }

    /// The task this step belongs to.
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }

    /// This step's name.
    pub fn step_name(&self) -> &str {
        self.step_name
    }

    /// The attempt number, 1 for the first attempt.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether this is the last attempt the step's settings allow.
    pub fn is_last_attempt(&self) -> bool {
        !self.config.allows_retry_after(self.attempt)
    }

    /// The step's resolved settings (retry limit, timeout, ...).
    pub fn config(&self) -> &StepConfig {
        &self.config
    }

    /// The shared resource of type `T`.
    ///
    /// A missing resource is a permanent error naming the type, so `?`
    /// fails the step with a message that says what to register.
    pub fn resource<T: Send + Sync + 'static>(&self) -> StepResult<&T> {
        self.resources.get::<T>().ok_or_else(|| {
            StepError::permanent(format!(
                "no resource of type `{}` is registered; add it with `.resource(...)` on the \
                 worker or runner",
                type_name::<T>()
            ))
            .with_class("MissingResource")
        })
    }

    /// All shared resources.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Publishes a custom event the step declares in
    /// `#[step(events = [...])]`, with `data` as its payload; subscribers
    /// receive it with the task, step and attempt filled in.
    ///
    /// Publishing an event the step does not declare is a permanent error
    /// naming it, so `?` fails the step and the mistake shows at once. A
    /// context built with [`StepContext::new`] (a unit test calling the step
    /// directly) has nowhere to publish to: events are discarded there.
    pub fn publish(&self, name: &str, data: impl Serialize) -> StepResult<()> {
        let Some(events) = &self.events else {
            return Ok(());
        };
        let data = serde_json::to_value(data).map_err(|e| {
            StepError::permanent(format!(
                "the payload of event {name:?} does not serialize: {e}"
            ))
        })?;
        events.publish(name, data)
    }

    /// Records an annotation on the task: `annotation_type` (1 to 64 ASCII
    /// letters, digits, `_`, `.`, `-`) and a JSON value, written with this
    /// attempt's success (in the same transaction) and shown with the task
    /// by the API and the CLI, which can also find tasks by it. An attempt
    /// that fails leaves no annotation behind.
    ///
    /// A bad type, a value that cannot be stored (over
    /// [`MAX_ANNOTATION_BYTES`](crate::annotation::MAX_ANNOTATION_BYTES) as
    /// JSON, or NUL characters) or more than
    /// [`MAX_ANNOTATIONS_PER_STEP`](crate::annotation::MAX_ANNOTATIONS_PER_STEP)
    /// in one attempt is a permanent error (`AnnotationRefused`).
    ///
    /// ```
    /// use tasker::StepContext;
    ///
    /// let ctx = StepContext::new(());
    /// ctx.annotate("payment_provider", "stripe").unwrap();
    /// assert_eq!(ctx.annotations()[0].annotation, "stripe");
    /// assert!(ctx.annotate("no spaces here", 1).is_err());
    /// ```
    pub fn annotate(&self, annotation_type: &str, value: impl Serialize) -> StepResult<()> {
        let value = serde_json::to_value(value).map_err(|e| {
            StepError::permanent(format!(
                "the annotation {annotation_type:?} does not serialize: {e}"
            ))
            .with_class("AnnotationRefused")
        })?;
        self.annotations.add(annotation_type, value)
    }

    /// The annotations this attempt has recorded so far, in order.
    pub fn annotations(&self) -> Vec<Annotation> {
        self.annotations.snapshot()
    }
}

/// Where a step's custom events go: the engine's event bus, or a test
/// runner's log. The model knows only this trait; the engine implements it.
pub(crate) trait EventPort: Send + Sync + 'static {
    /// Publishes the custom event `name` (declared by the step) with `data`.
    fn publish(&self, name: &'static str, data: serde_json::Value);
}

/// The custom events a step may publish, and the port they go to.
#[doc(hidden)]
#[derive(Clone)]
pub struct StepEvents {
    step: &'static str,
    declared: &'static [&'static str],
    port: Arc<dyn EventPort>,
}

impl std::fmt::Debug for StepEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepEvents")
            .field("step", &self.step)
            .field("declared", &self.declared)
            .finish()
    }
}

impl StepEvents {
    pub(crate) fn new(
        step: &'static str,
        declared: &'static [&'static str],
        port: impl EventPort,
    ) -> Self {
        StepEvents {
            step,
            declared,
            port: Arc::new(port),
        }
    }

    /// Publishes `name` if the step declares it; a permanent error naming
    /// the event otherwise.
    fn publish(&self, name: &str, data: serde_json::Value) -> Result<(), StepError> {
        let Some(name) = self.declared.iter().find(|d| **d == name) else {
            return Err(StepError::permanent(format!(
                "step `{}` published the event {name:?}, which it does not declare; add it to \
                 #[step(events = [...])] (declared: {:?})",
                self.step, self.declared
            ))
            .with_class("UndeclaredEvent"));
        };
        self.port.publish(name, data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message_gets_the_default_class_and_a_typed_error_its_name() {
        let error = Err::<(), String>("only 0 in stock".to_owned())
            .permanent()
            .unwrap_err();
        assert_eq!(error.class(), "StepError");
        assert_eq!(error.to_string(), "StepError (permanent): only 0 in stock");
        let error = Err::<(), &str>("busy").retryable().unwrap_err();
        assert_eq!(error.class(), "StepError");
        let error = "x".parse::<i32>().permanent().unwrap_err();
        assert_eq!(error.class(), "core::num::error::ParseIntError");
    }
}
