//! What one step attempt receives, type-erased ([`StepInput`]), and what it
//! may return ([`StepReturn`]): the two ends of the glue `#[step]` generates.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::context::{StepContext, StepEvents};
use crate::decode::decode;
use crate::ids::TaskId;
use crate::step::{HandlerConfigs, Resources, StepConfig, StepError};

/// Everything one step attempt needs, type-erased; the generated glue turns
/// it into a typed [`StepContext`] and typed dependency outputs.
#[derive(Debug, Clone)]
pub struct StepInput {
    /// The task.
    pub task_id: TaskId,
    /// The step's name.
    pub step_name: &'static str,
    /// 1-based attempt number.
    pub attempt: u32,
    /// The task context as JSON.
    pub context: Arc<Value>,
    /// Outputs of the step's dependencies, by step name.
    pub dependencies: Vec<(String, Value)>,
    /// The step's resolved settings.
    pub config: StepConfig,
    /// Shared resources.
    pub resources: Resources,
    /// Where the step's custom events go (none: they are discarded).
    pub events: Option<StepEvents>,
    /// The attempt's transaction, for a `#[step(transactional)]` step.
    pub transaction: Option<crate::transaction::SharedTransaction>,
    /// The step's and its handler's configuration values.
    pub configs: HandlerConfigs,
    /// Where the step's annotations go.
    pub annotations: crate::annotation::Annotations,
    /// Where the step's checkpoint is kept.
    pub checkpoints: crate::checkpoint::Checkpoints,
    /// For one item of a fan-out (`#[step(for_each = source)]`): the item.
    pub item: Option<Value>,
}

impl StepInput {
    /// Deserializes the task context into the handler's context type.
    pub fn context<C: DeserializeOwned>(&self) -> Result<StepContext<C>, StepError> {
        let context = decode::<C>(&self.context).map_err(|e| {
            StepError::permanent(format!(
                "the task context does not match the handler's context type `{}`: {e}",
                std::any::type_name::<C>()
            ))
            .with_class("ContextMismatch")
        })?;
        Ok(StepContext::new(context)
            .with_task_id(self.task_id)
            .with_step_name(self.step_name)
            .with_attempt(self.attempt)
            .with_config(self.config)
            .with_resources(self.resources.clone())
            .with_events(self.events.clone())
            .with_transaction(self.transaction.clone())
            .with_configs(self.configs.clone())
            .with_annotations(self.annotations.clone())
            .with_checkpoints(self.checkpoints.clone()))
    }

    /// Deserializes the output of dependency `name`.
    pub fn dependency<T: DeserializeOwned>(&self, name: &str) -> Result<T, StepError> {
        let value = self
            .dependencies
            .iter()
            .find(|(dep, _)| dep == name)
            .map(|(_, value)| value)
            .ok_or_else(|| {
                StepError::permanent(format!(
                    "the output of dependency `{name}` is missing; was it resolved by hand \
                     without an output?"
                ))
                .with_class("MissingDependencyOutput")
            })?;
        decode::<T>(value).map_err(|e| {
            StepError::permanent(format!(
                "the stored output of `{name}` does not match `{}`: {e}",
                std::any::type_name::<T>()
            ))
            .with_class("OutputMismatch")
        })
    }
}

impl StepInput {
    /// Deserializes the item this attempt of a fan-out step runs on: one
    /// element of the list `source` returned.
    pub fn item<T: DeserializeOwned>(&self, source: &str) -> Result<T, StepError> {
        let value = self.item.as_ref().ok_or_else(|| {
            StepError::permanent(format!(
                "step `{}` runs once per item of `{source}`, but this attempt was given no item",
                self.step_name
            ))
            .with_class("MissingItem")
        })?;
        decode::<T>(value).map_err(|e| {
            StepError::permanent(format!(
                "an item of `{source}` does not match `{}`: {e}",
                std::any::type_name::<T>()
            ))
            .with_class("OutputMismatch")
        })
    }

    /// Deserializes the output of dependency `name`, which may have been
    /// skipped: then (no output) the value is read from `null`, so an
    /// `Option` parameter receives `None`.
    pub fn optional_dependency<T: DeserializeOwned>(&self, name: &str) -> Result<T, StepError> {
        if self.dependencies.iter().any(|(dep, _)| dep == name) {
            self.dependency(name)
        } else {
            decode::<T>(&Value::Null).map_err(|e| {
                StepError::permanent(format!(
                    "dependency `{name}` was skipped and `{}` cannot be empty: {e}",
                    std::any::type_name::<T>()
                ))
                .with_class("OutputMismatch")
            })
        }
    }
}

/// Implemented by the return types a step may have: `StepResult<T>`.
#[diagnostic::on_unimplemented(
    message = "a step must return `StepResult<T>`, not `{Self}`",
    label = "return `StepResult<T>` here, with `T: Serialize + DeserializeOwned + Send`",
    note = "`StepResult<T>` is `Result<T, StepError>`; a step with nothing to pass on returns `StepResult<()>`"
)]
pub trait StepReturn {
    /// The output type `T`.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Splits into output or error.
    fn into_result(self) -> Result<Self::Output, StepError>;
}

impl<T: Serialize + DeserializeOwned + Send + 'static> StepReturn for Result<T, StepError> {
    type Output = T;
    fn into_result(self) -> Result<T, StepError> {
        self
    }
}
