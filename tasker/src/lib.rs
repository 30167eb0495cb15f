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
pub mod annotation;
#[cfg(feature = "http")]
pub mod api;
#[cfg(feature = "api-step")]
pub mod api_step;
pub mod batch;
mod binding;
pub mod checkpoint;
pub mod config;
mod context;
pub mod decision;
mod decode;
mod engine;
mod error;
pub mod events;
pub mod fan_out;
mod graph;
mod handler;
mod hooks;
mod ids;
mod input;
mod limit;
pub mod metrics;
pub mod payload;
mod priority;
mod registry;
mod request;
mod resources;
mod state;
mod step;
mod step_defaults;
pub mod store;
mod sync;
pub mod telemetry;
pub mod testing;
mod transaction;
mod validation;

pub use annotation::{Annotation, TaskAnnotation};
pub use context::StepContext;
pub use engine::{
    Backoff, CoordinationMode, EngineConfig, RefusedHandler, RetentionPolicy, RetentionRule,
    StartupReport, Tasker, TaskerBuilder, Worker, WorkerCounts, WorkerStats,
};
pub use error::{
    ContextError, DefinitionError, Error, LookupError, RegistryError, RegistryErrors, Result,
};
pub use graph::{Graph, GraphError};
pub use handler::{ConfigType, Handler, HandlerDefinition, StepDefinition, TaskHandler};
pub use ids::{StepId, TaskId};
pub use input::StepReturn;
pub use limit::{Admission, Bucket, ClaimLimit, Limit, MAX_PER_SECOND};
pub use priority::{ClaimOrder, HeadStart, Priority, PriorityAging, QueuedStep};
pub use registry::{Registry, VersionSelector};
pub use request::TaskRequest;
pub use semver::{Version, VersionReq};
pub use state::{StepState, TaskState, UnknownState};
pub use step::{
    ConfigValue, HandlerConfigs, Resources, StepConfig, StepError, StepErrorKind, StepResult,
    StepResultExt,
};
pub use step_defaults::{StepDefaults, StepSettings};
pub use store::{Store, StoreError};
pub use transaction::{SharedTransaction, StepTransaction, TransactionGuard};
pub use validation::{Violation, Violations, MAX_VIOLATIONS};

#[cfg(feature = "macros")]
pub use tasker_macros::{step, task_handler};

/// The names most handlers need: `use tasker::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "macros")]
    pub use crate::{step, task_handler};
    pub use crate::{
        StepContext, StepDefaults, StepError, StepResult, StepResultExt, TaskHandler, TaskRequest,
        Violations,
    };
}

/// Items the macros' generated code refers to. Not public API: no
/// stability guarantees.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
