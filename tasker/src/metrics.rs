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

    /// The metrics in the OpenMetrics text format (1.0.0).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = lock(&self.registry);
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The metrics in `format`: OpenMetrics, or the Prometheus text format
    /// 0.0.4 that tools without OpenMetrics support read (`promtool`,
    /// older scrapers).
    pub fn encode_as(&self, format: Exposition) -> String {
        match format {
            Exposition::OpenMetrics => self.encode(),
            Exposition::Text => openmetrics_to_text(&self.encode()),
        }
    }
}

/// A text exposition format of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// OpenMetrics 1.0.0 (`application/openmetrics-text`).
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (`text/plain`).
    Text,
}

impl Exposition {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The format a scraper asks for in its `Accept` header: OpenMetrics
    /// when it ranks `application/openmetrics-text` above `text/plain`
    /// (as Prometheus does), the text format otherwise (also when the
    /// header is missing, as for `curl`).
    ///
    /// ```
    /// use tasker::metrics::Exposition;
    ///
    /// let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Exposition::negotiate(Some(prometheus)), Exposition::OpenMetrics);
    /// assert_eq!(Exposition::negotiate(Some("text/plain")), Exposition::Text);
    /// assert_eq!(Exposition::negotiate(None), Exposition::Text);
    /// ```
    pub fn negotiate(accept: Option<&str>) -> Self {
        let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics > text {
            Exposition::OpenMetrics
        } else {
            Exposition::Text
        }
    }
}

/// Rewrites OpenMetrics text as the Prometheus text format 0.0.4: counter
/// families are named with their `_total` suffix in `HELP`/`TYPE` (so every
/// sample has its help text), `UNIT` lines, `_created` samples and the
/// `# EOF` marker are dropped.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut counters: Vec<&str> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.push(name);
            }
        }
    }
    let counter_name = |name: &str| counters.contains(&name) && !name.ends_with("_total");
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find(|prefix| line.starts_with(prefix));
        if let Some(prefix) = meta {
            let rest = &line[prefix.len()..];
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if counter_name(name) {
                out.push_str(&format!("{prefix}{name}_total {tail}\n"));
                continue;
            }
        } else {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            if let Some(family) = name.strip_suffix("_created") {
                if counters.contains(&family) {
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::names;

    #[test]
    fn the_text_format_names_counters_with_their_total_suffix() {
        let metrics = Metrics::new();
        metrics.record(&Event::new(names::TASK_CREATED).with_handler("ns", "h", "1.0.0"));
        let open = metrics.encode_as(Exposition::OpenMetrics);
        assert!(
            open.contains("# TYPE tasker_tasks_created counter\n"),
            "{open}"
        );
        assert!(open.ends_with("# EOF\n"), "{open}");
        let text = metrics.encode_as(Exposition::Text);
        assert!(
            text.contains("# HELP tasker_tasks_created_total Tasks created"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tasker_tasks_created_total counter\n"),
            "{text}"
        );
        assert!(text.contains("tasker_tasks_created_total{"), "{text}");
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        // Every sample's family has HELP and TYPE lines.
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{family} lacks HELP:\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} lacks TYPE:\n{text}"
            );
        }
    }
}
