//! Code-first durable workflows for Rust.
//!
//! A workflow — a *task handler* — is a graph of *steps*, each an `async fn`.
//! `#[task_handler]` on an `impl` block and `#[step]` on its functions turn
//! it into a registered, versioned handler whose graph the compiler checks:
//! an unknown or cyclic dependency, or a step reading another step's output
//! as the wrong type, is a compile error.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tasker::prelude::*;
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! pub struct Order { pub order_id: i64, pub amount_cents: i64 }
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! pub struct Receipt { pub charged_cents: i64 }
//!
//! pub struct ProcessOrder;
//!
//! /// Charges and ships an order.
//! #[task_handler(namespace = "payments", version = "2.1.0", context = Order)]
//! impl ProcessOrder {
//!     /// Checks the order is payable.
//!     #[step]
//!     async fn validate_order(ctx: &StepContext<Order>) -> StepResult<i64> {
//!         match ctx.context().amount_cents {
//!             cents if cents > 0 => Ok(cents),
//!             _ => Err(StepError::permanent("nothing to charge")),
//!         }
//!     }
//!
//!     /// Charges the card.
//!     #[step(depends_on = validate_order, retry_limit = 5, timeout = "30s")]
//!     async fn charge(validate_order: i64) -> StepResult<Receipt> {
//!         Ok(Receipt { charged_cents: validate_order })
//!     }
//!
//!     /// Ships the goods once paid.
//!     #[step(depends_on = [validate_order, charge])]
//!     async fn ship(ctx: &StepContext<Order>, charge: Receipt) -> StepResult<String> {
//!         Ok(format!("order {} shipped, {} cents", ctx.context().order_id, charge.charged_cents))
//!     }
//! }
//!
//! let handler = ProcessOrder::handler();
//! assert_eq!(handler.key(), "payments/process_order@2.1.0");
//! assert_eq!(handler.graph().critical_path(), ["validate_order", "charge", "ship"]);
//! ```
//!
//! Run a task in-process with [`testing::TaskRunner`]. The guide in the
//! repository's `docs/` folder covers every macro key and every compile
//! error.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod analysis;
#[cfg(feature = "http")]
pub mod api;
mod engine;
mod error;
pub mod events;
mod graph;
mod handler;
#[cfg(feature = "http")]
pub mod http;
pub mod metrics;
pub mod payload;
mod registry;
mod request;
mod state;
mod step;
pub mod store;
pub mod telemetry;
pub mod testing;
mod worker;

pub use engine::{
    Backoff, CoordinationMode, EngineConfig, RefusedHandler, StartupReport, Tasker, TaskerBuilder,
};
pub use error::{
    ContextError, DefinitionError, Error, LookupError, RegistryError, RegistryErrors, Result,
};
pub use graph::{Graph, GraphError};
pub use handler::{Handler, HandlerDefinition, StepDefinition, StepReturn, TaskHandler};
pub use registry::{Registry, VersionSelector};
pub use request::TaskRequest;
pub use semver::{Version, VersionReq};
pub use state::{StepState, TaskState, UnknownState};
pub use step::{
    Resources, StepConfig, StepContext, StepError, StepErrorKind, StepResult, StepResultExt, TaskId,
};
pub use store::{StepId, Store, StoreError};
pub use worker::{Worker, WorkerCounts, WorkerStats};

#[cfg(feature = "macros")]
pub use tasker_macros::{step, task_handler};

/// The names most handlers need: `use tasker::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "macros")]
    pub use crate::{step, task_handler};
    pub use crate::{StepContext, StepError, StepResult, StepResultExt, TaskHandler, TaskRequest};
}

/// Items the macros' generated code refers to. Not public API: no
/// stability guarantees.
#[doc(hidden)]
pub mod __private {
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    pub use crate::events::SubscriberRegistration;
    pub use crate::handler::{
        HandlerDefinition, StepDefinition, StepFuture, StepInput, StepReturn, TaskHandler,
    };
    pub use crate::step::StepError;
    pub use inventory;
    pub use serde_json;

    use crate::error::ContextError;

    /// One `#[task_handler]`, collected by `inventory`.
    pub struct Registration(pub &'static HandlerDefinition);

    inventory::collect!(Registration);

    pub(crate) fn registrations() -> impl Iterator<Item = &'static HandlerDefinition> {
        inventory::iter::<Registration>.into_iter().map(|r| r.0)
    }

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

    /// Checks a JSON context against the context type `C`.
    pub fn check_context<C: DeserializeOwned>(context: &Value) -> Result<(), ContextError> {
        crate::handler::decode::<C>(context)
            .map(drop)
            .map_err(|e| ContextError {
                context_type: std::any::type_name::<C>(),
                path: e.path.clone(),
                detail: e.to_string(),
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
}

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
