//! Delivery: the engine's bus (a bounded queue and task per subscriber) and
//! the sink a step publishes its custom events through.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::{ErasedSubscriber, Event, EventFilter, SubscriberFailures};

#[derive(Default)]
struct Counters {
    errors: AtomicU64,
    panics: AtomicU64,
    timeouts: AtomicU64,
    dropped: AtomicU64,
    delivered: AtomicU64,
}

struct Slot {
    name: Cow<'static, str>,
    filter: EventFilter,
    queue: mpsc::Sender<Arc<Event>>,
    counters: Arc<Counters>,
}

/// Sees every event published and every delivery failure: the engine's
/// metrics.
pub(crate) trait Observer: Send + Sync + 'static {
    /// One event was published.
    fn record(&self, event: &Event);

    /// A subscriber failed to take or handle an event (`kind`: `error`,
    /// `panic`, `timeout` or `dropped`).
    fn subscriber_failure(&self, subscriber: &str, kind: &str);
}

/// Publishes events to subscribers and metrics. Cheap to clone.
#[derive(Clone)]
pub(crate) struct EventBus {
    slots: Arc<Vec<Slot>>,
    metrics: Arc<dyn Observer>,
    /// Every event, for live views in this process (the dashboard); sent
    /// only while someone listens.
    live: broadcast::Sender<Arc<Event>>,
}

/// Events a live view may fall behind by before it misses some.
const LIVE_EVENTS: usize = 1024;

impl EventBus {
    /// Starts one delivery task per subscriber.
    pub(crate) fn start(
        subscribers: Vec<Arc<dyn ErasedSubscriber>>,
        queue: usize,
        timeout: Duration,
        metrics: Arc<dyn Observer>,
    ) -> Self {
        let slots = subscribers
            .into_iter()
            .map(|subscriber| {
                let (tx, rx) = mpsc::channel(queue.max(1));
                let counters = Arc::new(Counters::default());
                let name = subscriber.erased_name();
                let filter = subscriber.erased_events();
                tokio::spawn(deliver(
                    subscriber,
                    name.clone(),
                    rx,
                    timeout,
                    Arc::clone(&counters),
                    Arc::clone(&metrics),
                ));
                Slot {
                    name,
                    filter,
                    queue: tx,
                    counters,
                }
            })
            .collect();
        EventBus {
            slots: Arc::new(slots),
            metrics,
            live: broadcast::channel(LIVE_EVENTS).0,
        }
    }

    /// Records the event in the metrics and queues it for every subscriber
    /// that wants it. Never waits.
    pub(crate) fn publish(&self, event: Event) {
        self.metrics.record(&event);
        let event = Arc::new(event);
        if self.live.receiver_count() > 0 {
            // Only fails when the last receiver left meanwhile.
            let _ = self.live.send(Arc::clone(&event));
        }
        for slot in self.slots.iter() {
            if !slot.filter.matches(&event.name) {
                continue;
            }
            if slot.queue.try_send(Arc::clone(&event)).is_err() {
                slot.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.metrics.subscriber_failure(&slot.name, "dropped");
                tracing::warn!(subscriber = %slot.name, event = %event.name, "subscriber queue full; event dropped");
            }
        }
    }

    /// A receiver of every event published from now on.
    pub(crate) fn listen(&self) -> broadcast::Receiver<Arc<Event>> {
        self.live.subscribe()
    }

    /// Failures per subscriber.
    pub(crate) fn failures(&self) -> HashMap<String, SubscriberFailures> {
        self.slots
            .iter()
            .map(|slot| {
                let c = &slot.counters;
                (
                    slot.name.to_string(),
                    SubscriberFailures {
                        errors: c.errors.load(Ordering::Relaxed),
                        panics: c.panics.load(Ordering::Relaxed),
                        timeouts: c.timeouts.load(Ordering::Relaxed),
                        dropped: c.dropped.load(Ordering::Relaxed),
                        delivered: c.delivered.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }
}

async fn deliver(
    subscriber: Arc<dyn ErasedSubscriber>,
    name: Cow<'static, str>,
    mut queue: mpsc::Receiver<Arc<Event>>,
    timeout: Duration,
    counters: Arc<Counters>,
    metrics: Arc<dyn Observer>,
) {
    while let Some(event) = queue.recv().await {
        let mut call = tokio::spawn(Arc::clone(&subscriber).erased_handle(Arc::clone(&event)));
        let (counter, kind) = match tokio::time::timeout(timeout, &mut call).await {
            Ok(Ok(Ok(()))) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Ok(Ok(Err(e))) => {
                tracing::warn!(subscriber = %name, event = %event.name, "subscriber failed: {e}");
                (&counters.errors, "error")
            }
            Ok(Err(e)) if e.is_panic() => {
                tracing::warn!(subscriber = %name, event = %event.name, "subscriber panicked");
                (&counters.panics, "panic")
            }
            Ok(Err(_)) => (&counters.errors, "error"),
            Err(_) => {
                call.abort();
                tracing::warn!(subscriber = %name, event = %event.name, ?timeout, "subscriber timed out");
                (&counters.timeouts, "timeout")
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics.subscriber_failure(&name, kind);
    }
}
