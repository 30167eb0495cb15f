//! Prometheus metrics of the engine. Label values are bounded: namespace,
//! handler, step, outcome, event and subscriber names; never ids.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::events::{names, Event, Observer};
use crate::sync::lock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerLabels {
    namespace: String,
    handler: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskOutcomeLabels {
    namespace: String,
    handler: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    namespace: String,
    handler: String,
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepOutcomeLabels {
    namespace: String,
    handler: String,
    step: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubscriberLabels {
    subscriber: String,
    kind: String,
}

/// The engine's metrics, in a Prometheus registry. Every engine has one
/// ([`Tasker::metrics`](crate::Tasker::metrics)).
pub struct Metrics {
    registry: Mutex<Registry>,
    tasks_created: Family<HandlerLabels, Counter>,
    tasks_finished: Family<TaskOutcomeLabels, Counter>,
    steps_started: Family<StepLabels, Counter>,
    steps_finished: Family<StepOutcomeLabels, Counter>,
    step_retries: Family<StepLabels, Counter>,
    step_duration: Family<StepOutcomeLabels, Histogram>,
    claim_duration: Histogram,
    claim_batch: Histogram,
    ready_steps: Gauge,
    events: Family<EventLabels, Counter>,
    subscriber_failures: Family<SubscriberLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn step_duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, registered under the `tasker_` prefix.
    pub fn new() -> Self {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("tasker")),
            tasks_created: Family::default(),
            tasks_finished: Family::default(),
            steps_started: Family::default(),
            steps_finished: Family::default(),
            step_retries: Family::default(),
            step_duration: Family::new_with_constructor(step_duration_histogram),
            claim_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            claim_batch: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            ready_steps: Gauge::default(),
            events: Family::default(),
            subscriber_failures: Family::default(),
        };
        {
            let mut r = lock(&metrics.registry);
            r.register(
                "tasks_created",
                "Tasks created",
                metrics.tasks_created.clone(),
            );
            r.register(
                "tasks_finished",
                "Tasks that reached complete, error or cancelled, by outcome",
                metrics.tasks_finished.clone(),
            );
            r.register(
                "steps_started",
                "Step attempts started",
                metrics.steps_started.clone(),
            );
            r.register(
                "steps_finished",
                "Step attempts finished, by outcome (completed, failed, discarded)",
                metrics.steps_finished.clone(),
            );
            r.register(
                "step_retries",
                "Failed attempts scheduled for retry",
                metrics.step_retries.clone(),
            );
            r.register(
                "step_duration_seconds",
                "Duration of step attempts, by outcome",
                metrics.step_duration.clone(),
            );
            r.register(
                "claim_duration_seconds",
                "Latency of one claim round trip",
                metrics.claim_duration.clone(),
            );
            r.register(
                "claim_batch_size",
                "Steps returned by one claim",
                metrics.claim_batch.clone(),
            );
            r.register(
                "ready_steps",
                "Steps ready to run now (the ready queue's depth), sampled by workers",
                metrics.ready_steps.clone(),
            );
            r.register(
                "events",
                "Events published, by name",
                metrics.events.clone(),
            );
            r.register(
                "subscriber_failures",
                "Subscriber deliveries that failed, by kind (error, panic, timeout, dropped)",
                metrics.subscriber_failures.clone(),
            );
        }
        metrics
    }

    pub(crate) fn claimed(&self, latency: Duration, batch: usize) {
        self.claim_duration.observe(latency.as_secs_f64());
        self.claim_batch.observe(batch as f64);
    }

    pub(crate) fn ready_steps(&self, count: i64) {
        self.ready_steps.set(count);
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = lock(&self.registry);
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Observer for Metrics {
    /// Updates the metrics an event stands for.
    fn record(&self, event: &Event) {
        self.events
            .get_or_create(&EventLabels {
                event: event.name().to_owned(),
            })
            .inc();
        let namespace = event.namespace().unwrap_or_default().to_owned();
        let handler = event.handler_name().unwrap_or_default().to_owned();
        let step = || event.step_name().unwrap_or_default().to_owned();
        let task_outcome = |outcome: &str| TaskOutcomeLabels {
            namespace: namespace.clone(),
            handler: handler.clone(),
            outcome: outcome.to_owned(),
        };
        let step_outcome = |outcome: &str| StepOutcomeLabels {
            namespace: namespace.clone(),
            handler: handler.clone(),
            step: step(),
            outcome: outcome.to_owned(),
        };
        match event.name() {
            names::TASK_CREATED => {
                self.tasks_created
                    .get_or_create(&HandlerLabels {
                        namespace: namespace.clone(),
                        handler: handler.clone(),
                    })
                    .inc();
            }
            names::TASK_COMPLETED => {
                self.tasks_finished
                    .get_or_create(&task_outcome("complete"))
                    .inc();
            }
            names::TASK_FAILED => {
                self.tasks_finished
                    .get_or_create(&task_outcome("error"))
                    .inc();
            }
            names::TASK_CANCELLED => {
                self.tasks_finished
                    .get_or_create(&task_outcome("cancelled"))
                    .inc();
            }
            names::STEP_EXECUTION_REQUESTED => {
                self.steps_started
                    .get_or_create(&StepLabels {
                        namespace: namespace.clone(),
                        handler: handler.clone(),
                        step: step(),
                    })
                    .inc();
            }
            names::STEP_COMPLETED | names::STEP_FAILED | names::STEP_RESULT_DISCARDED => {
                let outcome = match event.name() {
                    names::STEP_COMPLETED => "completed",
                    names::STEP_FAILED => "failed",
                    _ => "discarded",
                };
                self.steps_finished
                    .get_or_create(&step_outcome(outcome))
                    .inc();
                if let Some(duration) = event.duration() {
                    self.step_duration
                        .get_or_create(&step_outcome(outcome))
                        .observe(duration.as_secs_f64());
                }
            }
            names::STEP_BACKOFF => {
                self.step_retries
                    .get_or_create(&StepLabels {
                        namespace: namespace.clone(),
                        handler: handler.clone(),
                        step: step(),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    fn subscriber_failure(&self, subscriber: &str, kind: &str) {
        self.subscriber_failures
            .get_or_create(&SubscriberLabels {
                subscriber: subscriber.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }
}
