//! One attempt of a step: on its own tokio task, so a panic is caught, under
//! the step's timeout.

use std::any::Any;

use serde_json::Value;

use crate::handler::{Handler, StepInput};
use crate::step::StepError;

/// Runs one attempt on its own tokio task, so a panic is caught, under the
/// step's timeout.
pub(crate) async fn run_attempt(
    handler: &Handler,
    index: usize,
    input: StepInput,
    timeout: Option<std::time::Duration>,
) -> Result<Value, StepError> {
    let mut task = tokio::spawn(handler.run_step(index, input));
    let joined = match timeout {
        None => (&mut task).await,
        Some(limit) => match tokio::time::timeout(limit, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                task.abort();
                return Err(StepError::retryable(format!(
                    "the step did not finish within its timeout of {limit:?}"
                ))
                .with_class("Timeout"));
            }
        },
    };
    match joined {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => Err(StepError::retryable(format!(
            "the step panicked: {}",
            panic_message(&*e.into_panic())
        ))
        .with_class("Panic")),
        Err(e) => {
            Err(StepError::retryable(format!("the step was cancelled: {e}"))
                .with_class("Cancelled"))
        }
    }
}

pub(super) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a non-string panic payload)")
}
