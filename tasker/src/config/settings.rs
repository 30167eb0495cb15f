//! The typed schema of a configuration file. Every field is optional: what
//! a layer leaves out keeps the value of the layer below (in the end, the
//! built-in default). Unknown keys are errors.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::limit::Limit;
use crate::priority::Priority;
use crate::state::TaskState;

/// The whole configuration: one section per part of tasker.
///
/// ```
/// use tasker::config::Config;
///
/// let config = Config::from_yaml_str(
///     "engine:\n  concurrency: 8\n  lease: 45s\n",
///     "inline.yaml",
///     |_| None,
/// )
/// .unwrap();
/// assert_eq!(config.settings().engine.concurrency, Some(8));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Settings {
    /// Where the tasks are stored.
    pub database: DatabaseSettings,
    /// How workers claim and run steps.
    pub engine: EngineSettings,
    /// The HTTP API (`serve`).
    pub api: ApiSettings,
    /// Logs and span export.
    pub telemetry: TelemetrySettings,
    /// Per-handler settings, keyed `namespace/name` (every version) or
    /// `namespace/name@version` (that version; wins over the former).
    pub handlers: BTreeMap<String, HandlerSettings>,
}

/// `database:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DatabaseSettings {
    /// `postgres://...` or a SQLite file (`sqlite://tasker.sqlite`). Put
    /// the password in an environment variable: `${DATABASE_URL}`.
    pub url: Option<String>,
    /// Connections in the pool (PostgreSQL).
    pub pool_size: Option<u32>,
    /// The schema holding tasker's tables (PostgreSQL).
    pub schema: Option<String>,
    /// Whether step results wait for their WAL flush (PostgreSQL; default
    /// `true`).
    pub synchronous_commit: Option<bool>,
}

/// `engine:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EngineSettings {
    /// Steps one worker runs at once (default 16).
    pub concurrency: Option<usize>,
    /// Steps claimed per round trip (default 16).
    pub claim_batch: Option<u32>,
    /// How long a claim lasts without renewal (default `30s`).
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub lease: Option<Duration>,
    /// Idle workers look for work at least this often (default `1s`).
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<Duration>,
    /// This process's name in the audit trail (default `host:pid:random`).
    pub worker_id: Option<String>,
    /// How long one subscriber call may run (default `5s`).
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub subscriber_timeout: Option<Duration>,
    /// Events queued per subscriber before new ones are dropped (default 1024).
    pub subscriber_queue: Option<usize>,
    /// Retry delays.
    pub backoff: BackoffSettings,
    /// Head start per priority level in the claim queue (`30s`; see
    /// `tasker::PriorityAging`).
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub priority_aging: Option<Duration>,
    /// Step settings where neither the code nor `handlers:` say otherwise.
    pub step_defaults: StepSettings,
    /// Finished tasks workers delete in the background (default: none).
    pub retention: Option<RetentionSettings>,
    /// Named limits held across every worker of the database
    /// (`payments-api: {concurrency: 2, per_second: 5}`), for `limit:` in
    /// `handlers:` to name.
    pub limits: BTreeMap<String, Limit>,
}

/// `limit:` of a handler or a step: the name of an `engine.limits` entry,
/// or a limit of its own (`{concurrency: 2}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LimitSetting {
    /// An `engine.limits` entry, shared with whatever else names it.
    Named(String),
    /// A limit of this handler (all its steps together) or step alone.
    Own(Limit),
}

/// `engine.backoff:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BackoffSettings {
    /// Delay before the first retry (default `1s`).
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub base: Option<Duration>,
    /// No delay exceeds this (default `5m`).
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub cap: Option<Duration>,
    /// Spread delays over `[d/2, d]` (default `true`).
    pub jitter: Option<bool>,
}

/// `engine.retention:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetentionSettings {
    /// What to delete: `[{states: [complete], older_than: 7d}, ...]`.
    pub rules: Vec<RetentionRuleSettings>,
    /// How often to look (default `10m`).
    #[serde(default, with = "duration", skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// Tasks per batch (default 500).
    #[serde(default)]
    pub batch: Option<u32>,
}

/// One rule of `engine.retention.rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetentionRuleSettings {
    /// Finished states (`complete`, `cancelled`, `resolved_manually`) or `error`.
    pub states: Vec<TaskState>,
    /// Minimum age since the task's last change (`7d`).
    #[serde(with = "duration::required")]
    pub older_than: Duration,
}

/// Settings of steps: `engine.step_defaults`, a handler's, or one step's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct StepSettings {
    /// Retries after the first attempt.
    pub retry_limit: Option<u32>,
    /// Whether a retryable error may be retried at all.
    pub retryable: Option<bool>,
    /// How long one attempt may run (`30s`).
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// One entry of `handlers:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct HandlerSettings {
    /// Retries after the first attempt, for every step of the handler.
    pub retry_limit: Option<u32>,
    /// Whether the handler's steps retry at all.
    pub retryable: Option<bool>,
    /// Attempt timeout for every step of the handler.
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// The handler's own configuration, read into the type its
    /// `#[task_handler(config = T)]` declares.
    pub handler_config: Option<Value>,
    /// Priority of the handler's tasks when a request names none.
    pub priority: Option<Priority>,
    /// Deadline of the handler's tasks, from creation (`5m`), when a
    /// request names none.
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub max_execution_time: Option<Duration>,
    /// A limit on the handler's steps together, across all workers.
    pub limit: Option<LimitSetting>,
    /// Per-step settings, keyed by step name.
    pub steps: BTreeMap<String, StepOverride>,
}

/// One entry of `handlers.<handler>.steps:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct StepOverride {
    /// Retries after the first attempt.
    pub retry_limit: Option<u32>,
    /// Whether the step retries at all.
    pub retryable: Option<bool>,
    /// Attempt timeout.
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// The step's own configuration, read into the type its
    /// `#[step(config = T)]` declares.
    pub handler_config: Option<Value>,
    /// The step's priority, in place of its task's.
    pub priority: Option<Priority>,
    /// A limit on the step, across all workers, in place of its handler's.
    pub limit: Option<LimitSetting>,
}

/// `api:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ApiSettings {
    /// Address to listen on (default `127.0.0.1:8080`).
    pub addr: Option<std::net::SocketAddr>,
    /// Path prefix of every route (default `/tasker`).
    pub prefix: Option<String>,
    /// Who may call.
    pub auth: AuthSettings,
    /// Bounds on time, size and cost of requests.
    pub limits: ApiLimitSettings,
}

/// How `serve` authenticates callers (`api.auth:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Static API tokens (`tokens` or `tokens_file`).
    Tokens,
    /// HS256 JWTs (`jwt`).
    Jwt,
    /// Every request is allowed (local use only).
    None,
}

/// `api.auth:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AuthSettings {
    /// `tokens`, `jwt` or `none`; when left out, chosen from what is set.
    pub mode: Option<AuthMode>,
    /// `name:token:perm,perm;name2:token2:*`; write `${TASKER_API_TOKENS}`.
    pub tokens: Option<Secret>,
    /// A file with one `name:token:perms` per line.
    pub tokens_file: Option<std::path::PathBuf>,
    /// HS256 JWTs.
    pub jwt: Option<JwtSettings>,
}

/// `api.auth.jwt:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JwtSettings {
    /// At least 32 bytes; write `${TASKER_JWT_SECRET}`.
    pub secret: Secret,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry.
    pub audience: String,
}

/// `api.limits:` (see `tasker::api::ApiLimits` for the defaults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
#[allow(missing_docs)]
pub struct ApiLimitSettings {
    /// Largest request body, in bytes.
    pub body_limit: Option<usize>,
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub body_timeout: Option<Duration>,
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub header_read_timeout: Option<Duration>,
    pub max_connections: Option<usize>,
    pub max_concurrent_requests: Option<usize>,
    #[serde(with = "duration", skip_serializing_if = "Option::is_none")]
    pub queue_timeout: Option<Duration>,
    pub max_headers: Option<usize>,
    pub max_header_bytes: Option<usize>,
    pub max_rows_per_request: Option<usize>,
    pub max_complexity: Option<usize>,
    pub max_depth: Option<usize>,
}

/// `telemetry:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TelemetrySettings {
    /// Log filter, `RUST_LOG` syntax (default `warn`).
    pub log: Option<String>,
    /// Logs as JSON lines (default `false`).
    pub json_logs: Option<bool>,
    /// Export spans to this OTLP/HTTP collector.
    pub otlp_endpoint: Option<String>,
}

/// A value that must not be shown: its `Debug` and `Serialize` print
/// `<redacted>`. Read it with [`Secret::expose`].
///
/// ```
/// use tasker::config::Secret;
///
/// let secret = Secret::new("hunter2-hunter2-hunter2");
/// assert_eq!(format!("{secret:?}"), "<redacted>");
/// assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
/// assert_eq!(secret.expose(), "hunter2-hunter2-hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

/// Durations as humans write them: `30s`, `5m`, `1h 30m`, `250ms`.
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text).map_err(|e| {
            format!("invalid duration {text:?} ({e}); write e.g. `30s`, `5m`, `1h 30m`, `250ms`")
        })
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Number(serde_json::Number),
    }

    fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        match Written::deserialize(deserializer)? {
            Written::Text(text) => parse(&text).map_err(serde::de::Error::custom),
            Written::Number(n) => Err(serde::de::Error::custom(format!(
                "a duration needs a unit: write `{n}s` or `{n}ms`, not `{n}`"
            ))),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(deserialize_with = "read")] Duration);
        Ok(Option::<Wrap>::deserialize(deserializer)?.map(|w| w.0))
    }

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_str(&humantime::format_duration(*d).to_string()),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) mod required {
        use std::time::Duration;

        use serde::{Deserializer, Serializer};

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Duration, D::Error> {
            super::read(deserializer)
        }

        pub(crate) fn serialize<S: Serializer>(
            value: &Duration,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(&humantime::format_duration(*value).to_string())
        }
    }
}
