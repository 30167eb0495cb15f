//! Tracing set-up: spans, structured logs, and OpenTelemetry export.
//!
//! Workers run every step attempt inside a `task` span (fields `task_id`,
//! `correlation_id`, `namespace`, `handler`, `version`) with a `step` span
//! inside it (the same plus `step` and `attempt`). Any `tracing` subscriber
//! sees them; with the `telemetry` feature, [`init`] installs one that
//! writes text or JSON logs, and with the `otel` feature it also exports
//! spans over OTLP/HTTP. With `otel`, every attempt's `task` span is a child
//! of a remote parent derived from the task id, so all attempts of one task,
//! on any worker, share one trace id.

use crate::ids::TaskId;

/// Makes `span` a child of the task's synthetic trace root (with `otel`).
#[cfg(feature = "otel")]
pub(crate) fn link_to_task(span: &tracing::Span, task_id: TaskId) {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use sha2::{Digest, Sha256};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let digest = Sha256::digest(format!("tasker-task:{task_id}").as_bytes());
    let mut trace = [0u8; 16];
    trace.copy_from_slice(&digest[..16]);
    let mut root = [0u8; 8];
    root.copy_from_slice(&digest[16..24]);
    let parent = SpanContext::new(
        TraceId::from_bytes(trace),
        SpanId::from_bytes(root),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
}

/// Without `otel` there is no trace to link to.
#[cfg(not(feature = "otel"))]
pub(crate) fn link_to_task(_span: &tracing::Span, _task_id: TaskId) {}

/// How to set up tracing (feature `telemetry`).
#[cfg(feature = "telemetry")]
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` of exported spans.
    pub service_name: String,
    /// Write logs as JSON lines instead of text.
    pub json_logs: bool,
    /// `RUST_LOG`-style filter of the logs (`info`, `tasker=debug`, ...).
    pub filter: String,
    /// Filter of the spans exported over OTLP, independent of the logs'
    /// (default `info`: the engine's `task` and `step` spans), so quiet
    /// logs do not silence tracing.
    pub span_filter: String,
    /// OTLP/HTTP collector base URL, e.g. `http://127.0.0.1:4318` (feature
    /// `otel`); `None` exports nothing.
    pub otlp_endpoint: Option<String>,
}

#[cfg(feature = "telemetry")]
impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            service_name: "tasker".to_owned(),
            json_logs: false,
            filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            span_filter: "info".to_owned(),
            otlp_endpoint: None,
        }
    }
}

/// Flushes and stops span export when dropped.
#[cfg(feature = "telemetry")]
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

#[cfg(feature = "telemetry")]
impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("tasker: flushing spans failed: {e}");
            }
        }
    }
}

/// Why [`init`] could not set up logging or span export.
#[cfg(feature = "telemetry")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid log filter {filter:?}: {reason}; write one such as \"info,tasker=debug\"")]
    InvalidFilter {
        /// The filter as given.
        filter: String,
        /// What the parser said.
        reason: String,
    },
    /// A global tracing subscriber was set before.
    #[error("a global tracing subscriber is already set ({0}); call telemetry::init once, before any other subscriber")]
    AlreadySet(String),
    /// An OTLP endpoint was given to a build without the `otel` feature.
    #[error("span export to {endpoint} needs tasker's `otel` feature")]
    OtelDisabled {
        /// The endpoint asked for.
        endpoint: String,
    },
    /// The OTLP exporter could not be built.
    #[error("cannot set up OTLP export to {endpoint}: {reason}")]
    Exporter {
        /// The endpoint asked for.
        endpoint: String,
        /// What the exporter said.
        reason: String,
    },
}

/// Installs the global tracing subscriber: logs (text or JSON) filtered by
/// `filter`, plus OTLP span export when an endpoint is given. Call once, at
/// start-up; keep the guard alive.
///
/// ```no_run
/// let _telemetry = tasker::telemetry::init(tasker::telemetry::TelemetryConfig {
///     json_logs: true,
///     ..Default::default()
/// })
/// .expect("telemetry");
/// ```
#[cfg(feature = "telemetry")]
pub fn init(config: TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, EnvFilter, Layer};

    let parse = |filter: &str| {
        EnvFilter::try_new(filter).map_err(|e| TelemetryError::InvalidFilter {
            filter: filter.to_owned(),
            reason: e.to_string(),
        })
    };
    // Each layer has its own filter: the log filter must not decide which
    // spans are exported.
    // Logs go to stderr: stdout belongs to the program's output (a CLI's
    // `--json`). Colour only on a terminal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = if config.json_logs {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .boxed()
    }
    .with_filter(parse(&config.filter)?);
    #[cfg(feature = "otel")]
    let span_filter = parse(&config.span_filter)?;

    #[cfg(feature = "otel")]
    let (otel, provider) = match &config.otlp_endpoint {
        Some(endpoint) => {
            let (layer, provider) = otlp_layer(endpoint, &config.service_name)?;
            (Some(layer.with_filter(span_filter)), Some(provider))
        }
        None => (None, None),
    };
    #[cfg(not(feature = "otel"))]
    if let Some(endpoint) = &config.otlp_endpoint {
        return Err(TelemetryError::OtelDisabled {
            endpoint: endpoint.clone(),
        });
    }

    let registry = tracing_subscriber::registry().with(logs);
    #[cfg(feature = "otel")]
    let registry = registry.with(otel);
    registry
        .try_init()
        .map_err(|e| TelemetryError::AlreadySet(e.to_string()))?;
    Ok(TelemetryGuard {
        #[cfg(feature = "otel")]
        provider,
    })
}

#[cfg(feature = "otel")]
fn otlp_layer<S>(
    endpoint: &str,
    service_name: &str,
) -> Result<
    (
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>,
        opentelemetry_sdk::trace::SdkTracerProvider,
    ),
    TelemetryError,
>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig};

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            reason: e.to_string(),
        })?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer("tasker");
    Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
}
