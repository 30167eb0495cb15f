//! Checkpoints: what a long step records as it goes (a cursor and a partial
//! result), so that the next attempt after a crash, a timeout or a retry
//! resumes there instead of at the start.
//!
//! A step reads and writes its checkpoint through
//! [`StepContext::checkpoint`](crate::StepContext::checkpoint) and
//! [`StepContext::save_checkpoint`](crate::StepContext::save_checkpoint);
//! where the value goes is a `CheckpointPort`: the engine's store (durable,
//! fenced by the attempt), the test runner's memory, or, for a context built
//! by hand, the context itself.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::step::StepError;
use crate::sync::lock;

/// The largest checkpoint, serialized, in bytes (1 MiB). A checkpoint is
/// rewritten at every save: keep it to a cursor and a running summary, and
/// put bulky partial results in your own storage.
pub const MAX_CHECKPOINT_BYTES: usize = 1 << 20;

/// The future a [`CheckpointPort`] returns.
pub(crate) type PortFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StepError>> + Send + 'a>>;

/// Where a step's checkpoint is kept. The model knows only this trait; the
/// engine and the test runner implement it.
pub(crate) trait CheckpointPort: Send + Sync + 'static {
    /// The last checkpoint saved for this step by any attempt.
    fn load(&self) -> PortFuture<'_, Option<Value>>;
    /// Saves `value` as this step's checkpoint, for this attempt only: an
    /// attempt that no longer holds the step is refused.
    fn save(&self, value: Value) -> PortFuture<'_, ()>;
}

/// A step attempt's checkpoint port, shared by the clones of its context.
#[doc(hidden)]
#[derive(Clone)]
pub struct Checkpoints {
    port: Arc<dyn CheckpointPort>,
}

impl fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoints").finish_non_exhaustive()
    }
}

impl Default for Checkpoints {
    /// Kept in memory, starting empty: a context built by hand.
    fn default() -> Self {
        Checkpoints::new(MemoryCheckpoint::default())
    }
}

impl Checkpoints {
    pub(crate) fn new(port: impl CheckpointPort) -> Self {
        Checkpoints {
            port: Arc::new(port),
        }
    }

    pub(crate) fn port(&self) -> &dyn CheckpointPort {
        self.port.as_ref()
    }
}

/// A checkpoint kept in memory: for a context built by hand, and, one per
/// step, for the test runner (so its retries resume too).
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryCheckpoint {
    value: Arc<Mutex<Option<Value>>>,
}

impl MemoryCheckpoint {
    /// Starting from `value`, as if an earlier attempt had saved it.
    pub(crate) fn holding(value: Value) -> Self {
        MemoryCheckpoint {
            value: Arc::new(Mutex::new(Some(value))),
        }
    }
}

impl CheckpointPort for MemoryCheckpoint {
    fn load(&self) -> PortFuture<'_, Option<Value>> {
        let value = lock(&self.value).clone();
        Box::pin(std::future::ready(Ok(value)))
    }

    fn save(&self, value: Value) -> PortFuture<'_, ()> {
        *lock(&self.value) = Some(value);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Checks a checkpoint about to be saved: the payload limits and
/// [`MAX_CHECKPOINT_BYTES`]. Refusals are permanent: the same value would
/// be refused again.
pub(crate) fn check(step: &str, value: &Value) -> Result<(), StepError> {
    crate::payload::check(value, "checkpoint").map_err(|e| {
        StepError::permanent(format!(
            "step `{step}` saved a checkpoint it cannot keep: {e}"
        ))
        .with_class("InvalidCheckpoint")
    })?;
    let size = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_CHECKPOINT_BYTES {
        return Err(StepError::permanent(format!(
            "step `{step}` saved a checkpoint of {size} bytes, over the limit of \
             {MAX_CHECKPOINT_BYTES}; keep a cursor and a running summary in it and write bulky \
             partial results to your own storage"
        ))
        .with_class("InvalidCheckpoint"));
    }
    Ok(())
}

/// The error of a save refused because the attempt no longer holds its
/// step (its lease expired and the step was taken over, or an operator
/// cancelled or resolved it): the step should stop; its result would be
/// refused too.
pub(crate) fn lost(step: &str, attempt: u32) -> StepError {
    StepError::retryable(format!(
        "attempt {attempt} of step `{step}` no longer holds the step (its lease expired or an \
         operator ended it), so its checkpoint was not saved; stop: the attempt that holds the \
         step resumes from the last checkpoint"
    ))
    .with_class("CheckpointRefused")
}
