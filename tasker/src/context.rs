//! What a step sees: [`StepContext`], the task's typed context and facts
//! about this attempt, and the ports through which its events leave.

use std::any::type_name;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::annotation::{Annotation, Annotations};
use crate::checkpoint::{Checkpoints, MemoryCheckpoint};
use crate::ids::TaskId;
use crate::resources::{HandlerConfigs, Resources};
use crate::step::{StepConfig, StepError, StepResult};
use crate::transaction::{SharedTransaction, TransactionGuard};

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
    checkpoints: Checkpoints,
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
            checkpoints: Checkpoints::default(),
        }
    }

    pub(crate) fn with_checkpoints(mut self, checkpoints: Checkpoints) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Starts from `checkpoint` as if an earlier attempt had saved it, for
    /// unit tests of a step that resumes: [`checkpoint`](Self::checkpoint)
    /// returns it until the step saves another.
    ///
    /// # Panics
    ///
    /// When `checkpoint` cannot be serialized to JSON (a map with
    /// non-string keys, say): it is test set-up, so the mistake is the
    /// test's.
    #[must_use]
    pub fn with_checkpoint(mut self, checkpoint: impl Serialize) -> Self {
        let value = serde_json::to_value(checkpoint).expect("a checkpoint serializable to JSON");
        self.checkpoints = Checkpoints::new(MemoryCheckpoint::holding(value));
        self
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
                "step `{}` asked for configuration of type `{}`, but {declared}; declare it with \
                 `#[step(config = T)]` or `#[task_handler(config = T)]`",
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

    /// The last checkpoint this step saved, in this attempt or an earlier
    /// one, read into `T`; `None` when it has saved none (a fresh start).
    ///
    /// A step that works through a large input in chunks reads it first
    /// and starts from its cursor, so an attempt after a crash, a timeout
    /// or a retry does not begin again at the start. With the engine the
    /// checkpoint is read from the store (each call reads it anew); a
    /// stored value that does not read into `T` is a permanent error.
    ///
    /// ```
    /// use tasker::prelude::*;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Default, Serialize, Deserialize)]
    /// struct Progress { next_row: u64, total_cents: i64 }
    ///
    /// async fn import(ctx: &StepContext, rows: &[i64]) -> StepResult<i64> {
    ///     let mut progress: Progress = ctx.checkpoint().await?.unwrap_or_default();
    ///     while let Some(chunk) = rows.get(progress.next_row as usize..).filter(|r| !r.is_empty()) {
    ///         let chunk = &chunk[..chunk.len().min(2)];
    ///         progress.total_cents += chunk.iter().sum::<i64>();
    ///         progress.next_row += chunk.len() as u64;
    ///         ctx.save_checkpoint(&progress).await?;
    ///     }
    ///     Ok(progress.total_cents)
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// // An earlier attempt got through rows 0..4: only 50 and 60 are added now.
    /// let ctx = StepContext::new(serde_json::Value::Null)
    ///     .with_checkpoint(Progress { next_row: 4, total_cents: 100 });
    /// assert_eq!(import(&ctx, &[10, 20, 30, 40, 50, 60]).await.unwrap(), 210);
    /// let saved: Progress = ctx.checkpoint().await.unwrap().unwrap();
    /// assert_eq!(saved.next_row, 6);
    /// # });
    /// ```
    pub async fn checkpoint<T: DeserializeOwned>(&self) -> StepResult<Option<T>> {
        let Some(value) = self.checkpoints.port().load().await? else {
            return Ok(None);
        };
        crate::decode::decode::<T>(&value).map(Some).map_err(|e| {
            StepError::permanent(format!(
                "the checkpoint of step `{}` does not read into `{}`: {e}; did the checkpoint \
                 type change while a task was running?",
                self.step_name,
                type_name::<T>()
            ))
            .with_class("CheckpointMismatch")
        })
    }

    /// Saves `checkpoint` as this step's progress, durably (with the
    /// engine: one write to the store, before this returns), replacing the
    /// one before.
    ///
    /// Save after the chunk's work is done: an attempt that crashes
    /// between the work and the save redoes that one chunk. The save is
    /// fenced: an attempt that no longer holds its step (its lease expired
    /// and another worker took the step over) gets a retryable
    /// `CheckpointRefused` error and should stop. A checkpoint that cannot
    /// be stored (over [`MAX_CHECKPOINT_BYTES`](crate::checkpoint::MAX_CHECKPOINT_BYTES),
    /// too deep, a NUL character) is a permanent `InvalidCheckpoint`
    /// error. Each save publishes `step.checkpointed`.
    pub async fn save_checkpoint(&self, checkpoint: &impl Serialize) -> StepResult<()> {
        let value = serde_json::to_value(checkpoint).map_err(|e| {
            StepError::permanent(format!(
                "the checkpoint of step `{}` could not be serialized: {e}",
                self.step_name
            ))
            .with_class("InvalidCheckpoint")
        })?;
        crate::checkpoint::check(self.step_name, &value)?;
        self.checkpoints.port().save(value).await
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
