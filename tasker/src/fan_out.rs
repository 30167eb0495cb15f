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
//!
//! An item that fails for good puts the task in `error` by default
//! ([`OnItemError::Fail`]). With `on_item_error = "collect"`
//! ([`OnItemError::Collect`]) the failure is the item's result instead:
//! the item ends `error`, the other items go on, and the steps after the
//! fan-out receive a `Vec<Result<T, StepError>>` in item order, in serde's
//! form of a `Result` ([`collected_ok`], [`collected_err`]).

use serde_json::{Map, Value};

use crate::step::StepError;

/// What a fan-out does when one of its items fails for good (no attempts
/// left, or a permanent error): `#[step(for_each = s, on_item_error = "...")]`.
///
/// ```
/// use tasker::fan_out::OnItemError;
///
/// assert_eq!(OnItemError::default(), OnItemError::Fail);
/// assert_eq!(OnItemError::parse("collect"), Some(OnItemError::Collect));
/// assert_eq!(OnItemError::Collect.as_str(), "collect");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnItemError {
    /// `"fail"` (the default): the item ends `error` and so does its task,
    /// until an operator retries or resolves the item; the steps after the
    /// fan-out receive `Vec<T>`.
    #[default]
    Fail,
    /// `"collect"`: the item ends `error` with its error as its result, the
    /// task goes on, and the steps after the fan-out receive
    /// `Vec<Result<T, StepError>>`, one entry per item in item order.
    Collect,
}

impl OnItemError {
    /// The attribute's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnItemError::Fail => "fail",
            OnItemError::Collect => "collect",
        }
    }

    /// The policy spelled `text`, if any.
    pub fn parse(text: &str) -> Option<OnItemError> {
        match text {
            "fail" => Some(OnItemError::Fail),
            "collect" => Some(OnItemError::Collect),
            _ => None,
        }
    }
}

/// A successful item's entry in a collecting fan-out's output: `{"Ok":
/// output}`, which deserializes as `Ok(output)`.
///
/// ```
/// use serde_json::json;
/// use tasker::fan_out::collected_ok;
///
/// let entry: Result<u32, tasker::StepError> = serde_json::from_value(collected_ok(json!(7))).unwrap();
/// assert_eq!(entry, Ok(7));
/// ```
pub fn collected_ok(output: Value) -> Value {
    Value::Object(Map::from_iter([("Ok".to_owned(), output)]))
}

/// A failed item's entry in a collecting fan-out's output: `{"Err":
/// error}`, which deserializes as `Err(error)`. The stores keep it as the
/// failed item's result.
///
/// ```
/// use tasker::fan_out::collected_err;
/// use tasker::StepError;
///
/// let error = StepError::permanent("account closed");
/// let entry: Result<u32, StepError> = serde_json::from_value(collected_err(&error)).unwrap();
/// assert_eq!(entry, Err(error));
/// ```
pub fn collected_err(error: &StepError) -> Value {
    let error = serde_json::to_value(error).expect("step errors serialize");
    Value::Object(Map::from_iter([("Err".to_owned(), error)]))
}

/// The class of the error a fan-out step fails with when its source's
/// output is not a list, or a list of more than [`MAX_ITEMS`].
pub const INVALID_FAN_OUT: &str = "InvalidFanOut";

/// The most items one fan-out runs over: each is a step row, written in the
/// transaction that expands the fan-out. For more, fan out over partitions
/// of the input ([`crate::batch`]) and let each item work through its
/// share.
pub const MAX_ITEMS: usize = 100_000;

/// The items of fan-out step `step` over `source`, from `source`'s output
/// (`None` when the step did not receive it). Anything but a JSON array,
/// or an array of more than [`MAX_ITEMS`], is a permanent error naming
/// what was found.
///
/// ```
/// use serde_json::json;
/// use tasker::fan_out::{items, INVALID_FAN_OUT, MAX_ITEMS};
///
/// assert_eq!(items("charge", "orders", Some(json!([1, 2]))).unwrap(), vec![json!(1), json!(2)]);
/// let error = items("charge", "orders", Some(json!({"id": 1}))).unwrap_err();
/// assert_eq!(error.class(), INVALID_FAN_OUT);
/// let too_many = json!(vec![0; MAX_ITEMS + 1]);
/// assert!(items("charge", "orders", Some(too_many)).unwrap_err().message().contains("at most 100000"));
/// ```
pub fn items(step: &str, source: &str, output: Option<Value>) -> Result<Vec<Value>, StepError> {
    match output {
        Some(Value::Array(items)) if items.len() > MAX_ITEMS => Err(StepError::permanent(format!(
            "step `{step}` runs once per item of `{source}`, but `{source}` returned {} items; \
             a fan-out runs over at most {MAX_ITEMS}: return partitions of the input instead \
             (`tasker::batch::partitions`) and let each item work through its share",
            items.len()
        ))
        .with_class(INVALID_FAN_OUT)),
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
