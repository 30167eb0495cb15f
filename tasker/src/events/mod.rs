//! Lifecycle events: the catalog, the [`Event`] payload, and
//! [`Subscriber`]s.
//!
//! The engine publishes an event at every step of a task's life
//! (`task.started`, `step.completed`, `workflow.task_finalized`, ...; see
//! [`BUILT_IN`]). Steps publish the custom events they declare with
//! `#[step(events = ["payment.processed"])]` through
//! [`StepContext::publish`](crate::StepContext::publish).
//!
//! Delivery is in-process, asynchronous and **at most once**: each
//! subscriber has its own bounded queue and task; an event for a full queue
//! is dropped and counted; each call to [`Subscriber::handle`] runs under a
//! timeout on its own task, so a subscriber that errors, panics or hangs is
//! counted and logged and never fails, stalls or slows a workflow step.
//! Events are not persisted: a process that dies loses what it had not
//! delivered. One subscriber sees one worker's events in the order they
//! were published; with several steps running at once, events of different
//! steps interleave. `task.created` is published by the creating engine
//! after the write, so a worker that starts the task at once may publish
//! `task.started` before it.
//!
//! ```
//! use tasker::events::{Event, EventFilter, Subscriber, SubscriberError};
//!
//! /// Pages someone when a task fails.
//! #[derive(Default)]
//! struct PageOnFailure;
//!
//! impl Subscriber for PageOnFailure {
//!     fn events(&self) -> EventFilter {
//!         EventFilter::only(["task.failed", "step.max_retries_reached"])
//!     }
//!
//!     async fn handle(&self, event: &Event) -> Result<(), SubscriberError> {
//!         let task = event.task_id().map(|id| id.to_string()).unwrap_or_default();
//!         println!("PAGE: {} on task {task}: {}", event.name(), event.error_message().unwrap_or(""));
//!         Ok(())
//!     }
//! }
//!
//! // Registered for every engine in the binary:
//! tasker::register_subscriber!(PageOnFailure);
//! ```

mod bus;
mod catalog;
mod event;
mod subscriber;

pub(crate) use bus::{EventBus, Observer};
pub use catalog::{names, Catalog, EventCategory, EventSpec, BUILT_IN};
pub use event::Event;
pub(crate) use subscriber::registered_subscribers;
pub use subscriber::{
    ErasedSubscriber, EventFilter, Subscriber, SubscriberError, SubscriberFailures,
    SubscriberRegistration,
};
