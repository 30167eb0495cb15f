//! Run a whole task in-process, without a database: for testing a
//! workflow's logic end to end.
//!
//! [`TaskRunner`] runs the steps of one task one at a time in topological
//! order, passes each step's output to the steps that read it, and applies
//! the step settings a worker applies: retries up to `retry_limit` (at once,
//! without backoff delays, so tests stay fast), `retryable = false`,
//! permanent errors, timeouts, and panics (a failed, retryable attempt).
//! When a step fails for good, the steps after it do not run and the task
//! ends in [`TaskState::Error`].
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tasker::prelude::*;
//! use tasker::testing::TaskRunner;
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Numbers { pub values: Vec<i64> }
//!
//! pub struct Stats;
//!
//! #[task_handler(namespace = "docs_testing", context = Numbers)]
//! impl Stats {
//!     #[step]
//!     async fn sum(ctx: &StepContext<Numbers>) -> StepResult<i64> {
//!         Ok(ctx.context().values.iter().sum())
//!     }
//!
//!     #[step]
//!     async fn count(ctx: &StepContext<Numbers>) -> StepResult<i64> {
//!         Ok(ctx.context().values.len() as i64)
//!     }
//!
//!     #[step(depends_on = [sum, count])]
//!     async fn mean(sum: i64, count: i64) -> StepResult<f64> {
//!         if count == 0 {
//!             return Err(StepError::permanent("no values"));
//!         }
//!         Ok(sum as f64 / count as f64)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let run = TaskRunner::new().run::<Stats>(Numbers { values: vec![1, 2, 6] }).await.unwrap();
//! assert!(run.is_complete());
//! assert_eq!(run.output::<f64>("mean").unwrap(), 3.0);
//!
//! let run = TaskRunner::new().run::<Stats>(Numbers { values: vec![] }).await.unwrap();
//! assert_eq!(run.state(), tasker::TaskState::Error);
//! assert_eq!(run.failure().unwrap().0, "mean");
//! # });
//! ```

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

mod attempts;

use attempts::{Attempts, Log};

use crate::binding::GivenConfig;
use crate::config::Config;
use crate::decode::decode;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::handler::{Handler, TaskHandler};
use crate::ids::TaskId;
use crate::state::{StepState, TaskState};
use crate::step::{Resources, StepConfig, StepError};
use crate::sync::lock;

/// Runs tasks in-process, one step at a time. See the [module
/// docs](self).
#[derive(Clone, Default)]
pub struct TaskRunner {
    resources: Resources,
    defaults: StepConfig,
    settings: Config,
    configs: Vec<GivenConfig>,
}

impl std::fmt::Debug for TaskRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRunner")
            .field("resources", &self.resources)
            .field("defaults", &self.defaults)
            .field("settings", &self.settings.file())
            .field(
                "configs",
                &self.configs.iter().map(|c| c.1).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// One step attempt, in the order the runner made them.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The step.
    pub step: &'static str,
    /// 1-based attempt number.
    pub attempt: u32,
    /// `None` when the attempt succeeded.
    pub error: Option<StepError>,
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRun {
    /// The step.
    pub name: &'static str,
    /// `complete`, `error`, or `pending` if it never ran because a step
    /// before it failed.
    pub state: StepState,
    /// Attempts made.
    pub attempts: u32,
    /// The output, when complete.
    pub output: Option<Value>,
    /// The error of each failed attempt, oldest first.
    pub errors: Vec<StepError>,
}

/// The outcome of one in-process task run.
#[derive(Debug, Clone)]
pub struct TaskRun {
    handler: Handler,
    task_id: TaskId,
    state: TaskState,
    steps: Vec<StepRun>,
    attempts: Vec<Attempt>,
    events: Vec<Event>,
    annotations: Vec<(&'static str, crate::Annotation)>,
}

static NEXT_TASK_ID: AtomicI64 = AtomicI64::new(1);

impl TaskRunner {
    /// A runner with default step settings and no resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a shared resource that steps reach with
    /// `ctx.resource::<T>()`.
    #[must_use]
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources = self.resources.with(value);
        self
    }

    /// Step settings for steps whose attribute does not set them.
    #[must_use]
    pub fn step_defaults(mut self, defaults: StepConfig) -> Self {
        self.defaults = defaults;
        self
    }

    /// Applies a configuration's `handlers:` section (retry limits,
    /// timeouts, typed `handler_config`) as the engine would; the
    /// `engine.step_defaults` section replaces [`step_defaults`](Self::step_defaults).
    #[must_use]
    pub fn settings(mut self, config: Config) -> Self {
        let mut engine = crate::EngineConfig {
            step_defaults: self.defaults,
            ..crate::EngineConfig::default()
        };
        config.apply_engine(&mut engine);
        self.defaults = engine.step_defaults;
        self.settings = config;
        self
    }

    /// The configuration value of type `T` for every handler or step that
    /// declares `config = T`, instead of reading it from a file.
    ///
    /// ```
    /// use serde::Deserialize;
    /// use tasker::prelude::*;
    /// use tasker::testing::TaskRunner;
    ///
    /// #[derive(Deserialize)]
    /// pub struct Greeting { word: String }
    ///
    /// pub struct Greet;
    ///
    /// #[task_handler(config = Greeting)]
    /// impl Greet {
    ///     #[step]
    ///     async fn hello(ctx: &StepContext) -> StepResult<String> {
    ///         Ok(ctx.handler_config::<Greeting>()?.word.clone())
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let run = TaskRunner::new()
    ///     .handler_config(Greeting { word: "hej".into() })
    ///     .run::<Greet>(serde_json::json!({}))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(run.output::<String>("hello").unwrap(), "hej");
    /// # });
    /// ```
    #[must_use]
    pub fn handler_config<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        let id = std::any::TypeId::of::<T>();
        self.configs.retain(|(given, _, _)| *given != id);
        self.configs
            .push((id, std::any::type_name::<T>(), Arc::new(value)));
        self
    }

    /// Runs one task of handler `H` with a typed context.
    pub async fn run<H: TaskHandler>(&self, context: H::Context) -> Result<TaskRun> {
        let context = serde_json::to_value(&context).map_err(|source| Error::Serialize {
            what: "task context",
            source,
        })?;
        self.run_handler(&H::handler(), context).await
    }

    /// Runs one task of `handler` with a JSON context, checked against the
    /// handler's context type first.
    pub async fn run_handler(&self, handler: &Handler, context: Value) -> Result<TaskRun> {
        handler.validate_context(&context)?;
        // Limits are checked (a `limit:` naming no limit is an error here
        // too) but not held: one task in one process runs its steps as
        // the graph allows.
        let resolved = crate::binding::resolve(
            &self.settings,
            handler,
            &self.defaults,
            &self.settings.settings().engine.limits,
            &self.configs,
        )?;
        // The handler's per-task settings, as the engine applies them.
        let per_task = handler.step_defaults(&context)?;
        let task_id = TaskId(NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed));
        let context = Arc::new(context);
        let definitions = handler.steps();
        let mut steps: Vec<StepRun> = definitions
            .iter()
            .map(|d| StepRun {
                name: d.name(),
                state: StepState::Pending,
                attempts: 0,
                output: None,
                errors: Vec::new(),
            })
            .collect();
        let mut attempts = Vec::new();
        let mut annotations = Vec::new();
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));

        let graph = handler.graph();
        let mut unchosen: Vec<&'static str> = Vec::new();
        for name in graph.topological_order() {
            let index = graph
                .index_of(name)
                .expect("graph steps are the handler's steps");
            let definition = &definitions[index];
            let parent_states: Vec<StepState> = definition
                .depends_on()
                .iter()
                .filter_map(|dep| steps.iter().find(|s| s.name == *dep).map(|s| s.state))
                .collect();
            // As the stores do: a branch its decision did not choose, and a
            // step after only skipped steps, are skipped.
            if unchosen.contains(&name)
                || (!parent_states.is_empty()
                    && parent_states.iter().all(|s| *s == StepState::Skipped))
            {
                steps[index].state = StepState::Skipped;
                continue;
            }
            let parents_done = parent_states
                .iter()
                .all(|s| s.satisfies_dependents() || *s == StepState::Skipped);
            if !parents_done {
                continue;
            }
            let dependencies: Vec<(String, Value)> = definition
                .depends_on()
                .iter()
                .filter_map(|dep| {
                    let run = steps.iter().find(|s| s.name == *dep)?;
                    Some(((*dep).to_owned(), run.output.clone()?))
                })
                .collect();
            let config = per_task.at(index).apply(resolved[index].config);
            let step = Attempts {
                handler,
                index,
                task_id,
                context: &context,
                dependencies: &dependencies,
                config,
                resources: &self.resources,
                events: &events,
                configs: &resolved[index].configs,
            };
            let run = &mut steps[index];
            let mut log = Log {
                attempts: &mut attempts,
                annotations: &mut annotations,
            };
            match definition.for_each() {
                None => match step.run(None, run, &mut log).await {
                    Some((output, skip)) => {
                        unchosen.extend(skip);
                        run.state = StepState::Complete;
                        run.output = Some(output);
                    }
                    None => run.state = StepState::Error,
                },
                Some(source) => step.fan_out(source, run, &mut log).await,
            }
        }
        let state = if steps
            .iter()
            .all(|s| s.state.satisfies_dependents() || s.state == StepState::Skipped)
        {
            TaskState::Complete
        } else {
            TaskState::Error
        };
        Ok(TaskRun {
            handler: handler.clone(),
            task_id,
            state,
            steps,
            attempts,
            events: take_events(&events),
            annotations,
        })
    }
}

fn take_events(log: &std::sync::Mutex<Vec<Event>>) -> Vec<Event> {
    std::mem::take(&mut *lock(log))
}

impl TaskRun {
    /// The handler that ran.
    pub fn handler(&self) -> &Handler {
        &self.handler
    }

    /// The task id the runner gave this run.
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }

    /// `complete` when every step completed, otherwise `error`.
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// Whether every step completed.
    pub fn is_complete(&self) -> bool {
        self.state == TaskState::Complete
    }

    /// Every step, in declaration order.
    pub fn steps(&self) -> &[StepRun] {
        &self.steps
    }

    /// One step.
    pub fn step(&self, name: &str) -> Result<&StepRun> {
        self.steps
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::UnknownStep {
                handler: self.handler.key(),
                step: name.to_owned(),
                steps: self
                    .steps
                    .iter()
                    .map(|s| format!("`{}`", s.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The annotations the steps recorded (by successful attempts only, as
    /// the engine stores them), with the step that recorded each, in order.
    pub fn annotations(&self) -> &[(&'static str, crate::Annotation)] {
        &self.annotations
    }

    /// The custom events the steps published, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Every attempt, in the order made.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The steps in the order they completed.
    pub fn completion_order(&self) -> Vec<&'static str> {
        self.attempts
            .iter()
            .filter(|a| a.error.is_none())
            .map(|a| a.step)
            .collect()
    }

    /// The first step that failed for good, and its last error.
    pub fn failure(&self) -> Option<(&'static str, &StepError)> {
        self.attempts.iter().find_map(|a| {
            let step = self
                .steps
                .iter()
                .find(|s| s.name == a.step && s.state == StepState::Error)?;
            Some((step.name, step.errors.last()?))
        })
    }

    /// The output of step `name`, deserialized.
    pub fn output<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let step = self.step(name)?;
        let output = step.output.as_ref().ok_or_else(|| Error::NoOutput {
            step: name.to_owned(),
            state: match step.state {
                StepState::Error => format!(
                    "failed after {} attempt(s): {}",
                    step.attempts,
                    step.errors
                        .last()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
                _ => "did not run because a step before it failed".to_owned(),
            },
        })?;
        decode(output).map_err(|e| Error::OutputType {
            step: name.to_owned(),
            type_name: std::any::type_name::<T>(),
            message: e.to_string(),
        })
    }
}
