//! Subscribers: what they want ([`EventFilter`]), how they are called
//! ([`Subscriber`]) and registered ([`register_subscriber!`](crate::register_subscriber)).

use std::any::type_name;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use super::Event;

/// Which events a subscriber wants.
///
/// ```
/// use tasker::events::EventFilter;
///
/// let filter = EventFilter::only(["task.*", "step.failed"]);
/// assert!(filter.matches("task.completed"));
/// assert!(filter.matches("step.failed"));
/// assert!(!filter.matches("step.completed"));
/// assert!(EventFilter::all().matches("payment.processed"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    patterns: Vec<String>,
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        EventFilter {
            patterns: vec!["*".to_owned()],
        }
    }

    /// Events named in `patterns`: exact names, `prefix.*`, or `*`.
    pub fn only<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EventFilter {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the event named `name` passes.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| {
            p == "*"
                || p == name
                || p.strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with('.') && name.starts_with(prefix))
        })
    }
}

/// The error a subscriber may return.
pub type SubscriberError = Box<dyn std::error::Error + Send + Sync>;

/// Receives events. See the [module docs](crate::events) for delivery guarantees.
pub trait Subscriber: Send + Sync + 'static {
    /// A name for logs and metrics (the type name by default).
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(type_name::<Self>())
    }

    /// The events wanted.
    fn events(&self) -> EventFilter;

    /// Handles one event.
    fn handle(&self, event: &Event) -> impl Future<Output = Result<(), SubscriberError>> + Send;
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), SubscriberError>> + Send>>;

/// Object-safe form of [`Subscriber`].
#[doc(hidden)]
pub trait ErasedSubscriber: Send + Sync + 'static {
    fn erased_name(&self) -> Cow<'static, str>;
    fn erased_events(&self) -> EventFilter;
    fn erased_handle(self: Arc<Self>, event: Arc<Event>) -> BoxFuture;
}

impl<S: Subscriber> ErasedSubscriber for S {
    fn erased_name(&self) -> Cow<'static, str> {
        self.name()
    }

    fn erased_events(&self) -> EventFilter {
        self.events()
    }

    fn erased_handle(self: Arc<Self>, event: Arc<Event>) -> BoxFuture {
        Box::pin(async move { self.handle(&event).await })
    }
}

/// A subscriber registered with [`register_subscriber!`](crate::register_subscriber).
#[doc(hidden)]
pub struct SubscriberRegistration {
    pub name: &'static str,
    pub make: fn() -> Arc<dyn ErasedSubscriber>,
}

inventory::collect!(SubscriberRegistration);

/// Registers a subscriber type (`Default`) for every engine in the binary,
/// through `inventory`.
#[macro_export]
macro_rules! register_subscriber {
    ($ty:ty) => {
        $crate::__private::inventory::submit! {
            $crate::__private::SubscriberRegistration {
                name: ::core::stringify!($ty),
                make: || ::std::sync::Arc::new(<$ty as ::core::default::Default>::default()),
            }
        }
    };
}

pub(crate) fn registered_subscribers() -> Vec<Arc<dyn ErasedSubscriber>> {
    let mut registrations: Vec<&SubscriberRegistration> = inventory::iter::<SubscriberRegistration>
        .into_iter()
        .collect();
    registrations.sort_by_key(|r| r.name);
    registrations.iter().map(|r| (r.make)()).collect()
}

/// Failures of one subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SubscriberFailures {
    /// `handle` returned an error.
    pub errors: u64,
    /// `handle` panicked.
    pub panics: u64,
    /// `handle` ran past the timeout and was abandoned.
    pub timeouts: u64,
    /// Events dropped because the subscriber's queue was full.
    pub dropped: u64,
    /// Events handled successfully.
    pub delivered: u64,
}
