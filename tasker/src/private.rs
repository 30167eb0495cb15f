//! Items the macros' generated code refers to. Not public API: no
//! stability guarantees.

use serde_json::Value;

pub use crate::decode::{check_context, decode_config, decode_context, type_id_of};
pub use crate::events::SubscriberRegistration;
pub use crate::fan_out::OnItemError;
pub use crate::handler::{
    ConfigType, HandlerDefinition, StepDefaultsFn, StepDefinition, StepFuture, TaskHandler,
    ValidateFn,
};
pub use crate::input::{StepInput, StepReturn};
pub use crate::registry::Registration;
pub use crate::step::StepError;
pub use crate::step_defaults::StepDefaults;
pub use crate::validation::Violations;
pub use crate::ContextError;
pub use inventory;
pub use serde_json;

/// Type check: a step parameter's type is its dependency's output type.
pub fn assert_input_type<Param: SameOutput<Output>, Output>() {}

/// `Param: SameOutput<Output>` holds exactly when the types are equal.
#[diagnostic::on_unimplemented(
    message = "this step parameter is `{Self}`, but the dependency it is named after outputs `{Output}`",
    label = "change this type to `{Output}`",
    note = "a parameter named after a dependency receives that dependency's output, so the types must be equal"
)]
pub trait SameOutput<Output> {}

impl<T> SameOutput<T> for T {}

/// Type check: a parameter reading a dependency that may be skipped (while
/// the step still runs) is `Option` of the dependency's output.
pub fn assert_optional_input<Param: MaySkip<Output>, Output>() {}

/// `Param: MaySkip<Output>` holds exactly when `Param` is `Option<Output>`.
#[diagnostic::on_unimplemented(
    message = "this step parameter is `{Self}`, but the dependency it is named after may be skipped",
    label = "take it as `Option<{Output}>`",
    note = "the dependency is a branch of a decision (or runs only after steps that may be skipped), and this step also runs when it was skipped: it then receives `None`"
)]
pub trait MaySkip<Output> {}

impl<T> MaySkip<T> for Option<T> {}

/// Type check: a fan-out's item parameter is one element of its source's
/// output list.
pub fn assert_item_type<Param: ItemOf<Output>, Output>() {}

/// `Param: ItemOf<Output>` holds exactly when `Output` is `Vec<Param>`.
#[diagnostic::on_unimplemented(
    message = "this step runs once per item of a dependency that outputs `{Output}`, so its parameter `{Self}` must be one item of it",
    label = "the item type: `T` where the dependency outputs `Vec<T>`",
    note = "`for_each = source` needs `source` to output a `Vec<T>`; the parameter named after it receives one `T`"
)]
pub trait ItemOf<Output> {}

impl<T> ItemOf<Vec<T>> for T {}

/// Type check: a step's context parameter uses the handler's context.
pub fn assert_context_type<Param: SameContext<Handler>, Handler>() {}

/// `Param: SameContext<Handler>` holds exactly when the types are equal.
#[diagnostic::on_unimplemented(
    message = "this step takes `&StepContext<{Self}>`, but the handler's context type is `{Handler}`",
    label = "change this to `&StepContext<{Handler}>`",
    note = "every step of a handler receives the handler's `context = ...` type"
)]
pub trait SameContext<Handler> {}

impl<T> SameContext<T> for T {}

/// Serializes a step's output.
pub fn encode_output<R: StepReturn>(result: R) -> Result<Value, StepError> {
    let output = result.into_result()?;
    serde_json::to_value(output).map_err(|e| {
        StepError::permanent(format!("could not serialize the step's output: {e}"))
            .with_class("OutputSerialization")
    })
}

/// The dispatch arm for an index the handler does not have.
pub fn no_such_step(index: usize, input: StepInput) -> StepFuture {
    Box::pin(std::future::ready(Err(StepError::permanent(format!(
        "this handler has no step number {index} (asked to run `{}`); the binary's handler \
         does not match the task",
        input.step_name
    ))
    .with_class("UnknownStep"))))
}

/// `F: StepDefaultsFor<C>` holds for functions `fn(&C, &mut StepDefaults)`.
#[diagnostic::on_unimplemented(
    message = "`step_defaults` must name a function `fn(&{C}, &mut tasker::StepDefaults)`",
    label = "this is not `fn(&{C}, &mut tasker::StepDefaults)`",
    note = "it receives the task's context (the handler's `context` type) and the steps' settings, and returns nothing"
)]
pub trait StepDefaultsFor<C> {
    /// Calls the function.
    fn call(&self, context: &C, steps: &mut StepDefaults);
}

impl<C, F: Fn(&C, &mut StepDefaults)> StepDefaultsFor<C> for F {
    fn call(&self, context: &C, steps: &mut StepDefaults) {
        self(context, steps)
    }
}

/// `F: ValidateFor<C>` holds for functions `fn(&C, &mut Violations)`.
#[diagnostic::on_unimplemented(
    message = "`validate` must name a function `fn(&{C}, &mut tasker::Violations)`",
    label = "this is not `fn(&{C}, &mut tasker::Violations)`",
    note = "it receives the task's context (the handler's `context` type) and records what is wrong with `Violations::at`"
)]
pub trait ValidateFor<C> {
    /// Calls the function.
    fn call(&self, context: &C, violations: &mut Violations);
}

impl<C, F: Fn(&C, &mut Violations)> ValidateFor<C> for F {
    fn call(&self, context: &C, violations: &mut Violations) {
        self(context, violations)
    }
}
