//! Fan-out steps: a step declared with `#[step(for_each = source)]` runs
//! once per item of `source`'s output, each run an **instance** with its
//! own attempts, and the steps after it receive the instances' outputs as
//! a `Vec` in item order.
//!
//! The engine and the [`TaskRunner`](crate::testing::TaskRunner) both read
//! the source's output through [`items`]: it must be a JSON array (the
//! macros check at compile time that `source` returns a `Vec` of the item
//! type); anything else fails the mapped step permanently with class
//! [`INVALID_FAN_OUT`]. In a store, the mapped step's own row is the
//! group: claimed once its dependencies are done, it becomes one instance
//! per item (the first `concurrency` ready, each finished instance
//! releasing the next), and it completes when its last instance does.

use serde_json::Value;

use crate::step::StepError;

/// The class of the error a fan-out step fails with when its source's
/// output is not a list.
pub const INVALID_FAN_OUT: &str = "InvalidFanOut";

/// The items of fan-out step `step` over `source`, from `source`'s output
/// (`None` when the step did not receive it). Anything but a JSON array
/// is a permanent error naming what was found.
///
/// ```
/// use serde_json::json;
/// use tasker::fan_out::{items, INVALID_FAN_OUT};
///
/// assert_eq!(items("charge", "orders", Some(json!([1, 2]))).unwrap(), vec![json!(1), json!(2)]);
/// let error = items("charge", "orders", Some(json!({"id": 1}))).unwrap_err();
/// assert_eq!(error.class(), INVALID_FAN_OUT);
/// ```
pub fn items(step: &str, source: &str, output: Option<Value>) -> Result<Vec<Value>, StepError> {
    match output {
        Some(Value::Array(items)) => Ok(items),
        other => {
            let got = other.map_or_else(|| "nothing".to_owned(), |v| v.to_string());
            let shown: String = got.chars().take(200).collect();
            Err(StepError::permanent(format!(
                "step `{step}` runs once per item of `{source}`, but `{source}` returned {shown}, \
                 not a list; it must return a `Vec` of the items"
            ))
            .with_class(INVALID_FAN_OUT))
        }
    }
}
