//! A step attempt's checkpoints, kept in the engine's store: reads go to
//! the store each time, saves are fenced by the attempt and announced as
//! `step.checkpointed`.

use serde_json::Value;

use super::Tasker;
use crate::checkpoint::{lost, CheckpointPort, PortFuture};
use crate::events::{names, Event};
use crate::ids::StepId;
use crate::step::StepError;
use crate::store::Store;

/// The checkpoint port of one attempt.
pub(super) struct StorePort<S: Store> {
    pub(super) tasker: Tasker<S>,
    pub(super) step_id: StepId,
    pub(super) step_name: &'static str,
    pub(super) attempt: u32,
    /// The task, step, handler and attempt fields of `step.checkpointed`.
    pub(super) base: Event,
}

impl<S: Store> CheckpointPort for StorePort<S> {
    fn load(&self) -> PortFuture<'_, Option<Value>> {
        Box::pin(async move {
            let stored = self
                .tasker
                .store()
                .checkpoint(self.step_id)
                .await
                .map_err(|e| {
                    StepError::retryable(format!(
                        "reading the checkpoint of step `{}` failed: {e}",
                        self.step_name
                    ))
                    .with_class("CheckpointUnavailable")
                })?;
            Ok(stored.map(|c| c.value))
        })
    }

    fn save(&self, value: Value) -> PortFuture<'_, ()> {
        Box::pin(async move {
            let bytes = serde_json::to_vec(&value).map_or(0, |b| b.len());
            let saved = self
                .tasker
                .store()
                .save_checkpoint(self.step_id, self.attempt, &value)
                .await
                .map_err(|e| {
                    StepError::retryable(format!(
                        "saving the checkpoint of step `{}` failed: {e}",
                        self.step_name
                    ))
                    .with_class("CheckpointUnavailable")
                })?;
            if !saved {
                return Err(lost(self.step_name, self.attempt));
            }
            self.tasker.publish(self.base.custom(
                names::STEP_CHECKPOINTED,
                serde_json::json!({ "bytes": bytes }),
            ));
            Ok(())
        })
    }
}
