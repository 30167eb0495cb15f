//! [`TaskRequest`]: what to run, with which context.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::MAX_EXECUTION_TIME_LIMIT;
use crate::error::{Error, Result};
use crate::handler::TaskHandler;
use crate::payload;
use crate::priority::Priority;

/// A request to create a task: the handler (namespace, name, version) and
/// its context, plus optional idempotency key and metadata.
///
/// Typed, from a handler (the exact version linked into the binary):
///
/// ```
/// # use tasker::prelude::*;
/// # #[derive(serde::Serialize, serde::Deserialize)] pub struct Order { pub order_id: i64 }
/// # pub struct ProcessOrder;
/// # #[task_handler(namespace = "payments", version = "2.1.0", context = Order)]
/// # impl ProcessOrder { #[step] async fn a() -> StepResult<()> { Ok(()) } }
/// let request = ProcessOrder::request(Order { order_id: 7 }).identity_key("order-7");
/// assert_eq!(request.namespace(), "payments");
/// assert_eq!(request.version(), Some("2.1.0"));
/// ```
///
/// Untyped, for APIs: by name with a JSON context, checked against the
/// handler's context type when the task is created.
///
/// ```
/// use tasker::TaskRequest;
///
/// let request = TaskRequest::from_json(r#"{
///     "namespace": "payments", "name": "process_order", "version": "^2",
///     "context": {"order_id": 7}
/// }"#).unwrap();
/// assert_eq!(request.name(), "process_order");
///
/// let err = TaskRequest::from_json(r#"{"namespace": "payments""#).unwrap_err();
/// assert!(err.to_string().starts_with("malformed task request"), "{err}");
/// ```
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    #[serde(default = "default_namespace")]
    namespace: String,
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    context: Value,
    #[serde(default)]
    identity_key: Option<String>,
    #[serde(default)]
    initiator: Option<String>,
    #[serde(default)]
    source_system: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// `low`, `normal` (default), `high` or `critical`.
    #[serde(default)]
    priority: Option<Priority>,
    /// How long the task may run, from its creation (`"5m"`, `"2h"`):
    /// after it, steps not yet started never start and the task ends in
    /// `error`.
    #[serde(default, with = "crate::config::duration")]
    #[cfg_attr(feature = "http", schemars(with = "Option<String>"))]
    max_execution_time: Option<Duration>,
    #[serde(skip)]
    context_error: Option<String>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

impl TaskRequest {
    /// A request for the latest stable version of `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, context: Value) -> Self {
        TaskRequest {
            namespace: namespace.into(),
            name: name.into(),
            version: None,
            context,
            identity_key: None,
            initiator: None,
            source_system: None,
            reason: None,
            tags: Vec::new(),
            priority: None,
            max_execution_time: None,
            context_error: None,
        }
    }

    /// A request for exactly handler `H`, with a typed context.
    pub fn for_handler<H: TaskHandler>(context: &H::Context) -> Self {
        let definition = H::descriptor();
        let (context, context_error) = match serde_json::to_value(context) {
            Ok(value) => (value, None),
            Err(e) => (Value::Null, Some(e.to_string())),
        };
        TaskRequest {
            version: Some(definition.version.to_owned()),
            context_error,
            ..TaskRequest::new(definition.namespace, definition.name, context)
        }
    }

    /// Parses a JSON request body: `namespace` (default `"default"`),
    /// `name`, `version` (exact, requirement, or omitted for the latest),
    /// `context`, and optional `identity_key`, `initiator`,
    /// `source_system`, `reason`, `tags`, `priority` (`low`, `normal`,
    /// `high`, `critical`) and `max_execution_time` (`"5m"`).
    pub fn from_json(body: &str) -> Result<Self> {
        serde_json::from_str(body).map_err(|e| Error::InvalidRequest(e.to_string()))
    }

    /// Asks for a version: exact (`"2.1.0"`), a requirement (`"^2"`), or
    /// `"latest"`.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sets the idempotency key: creating a second task with the same key
    /// returns the first.
    #[must_use]
    pub fn identity_key(mut self, key: impl Into<String>) -> Self {
        self.identity_key = Some(key.into());
        self
    }

    /// Records who asked.
    #[must_use]
    pub fn initiator(mut self, initiator: impl Into<String>) -> Self {
        self.initiator = Some(initiator.into());
        self
    }

    /// Records the system the request came from.
    #[must_use]
    pub fn source_system(mut self, source: impl Into<String>) -> Self {
        self.source_system = Some(source.into());
        self
    }

    /// Records why.
    #[must_use]
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets the task's priority (default: the handler's configured one,
    /// else `normal`). See [`Priority`] for how claiming honours it.
    #[must_use]
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Gives the task a deadline `limit` after its creation (the guide's
    /// `max_execution_time`; default: the handler's configured one, else
    /// none). Past it, steps not yet started are failed with
    /// `DeadlineExceeded` instead of run, and the task ends in `error`.
    /// At most [`MAX_EXECUTION_TIME_LIMIT`](crate::config::MAX_EXECUTION_TIME_LIMIT).
    #[must_use]
    pub fn max_execution_time(mut self, limit: Duration) -> Self {
        self.max_execution_time = Some(limit);
        self
    }

    /// Whether no initiator was given.
    pub fn initiator_is_unset(&self) -> bool {
        self.initiator.is_none()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The handler name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version asked for, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The context.
    pub fn context(&self) -> &Value {
        &self.context
    }

    /// Drops the request without recursion (its context may be too deep
    /// for the ordinary `Drop`).
    pub(crate) fn discard(self) {
        crate::payload::drop_deep(self.context);
    }

    /// Checks the request against the storage limits (see
    /// [`crate::payload`]) and takes it apart. A refused context is dropped
    /// without recursion.
    pub(crate) fn into_parts(self) -> Result<RequestParts> {
        if let Some(message) = self.context_error {
            return Err(Error::Serialize {
                what: "task context",
                source: serde::ser::Error::custom(message),
            });
        }
        let texts = [
            ("namespace", Some(&self.namespace)),
            ("name", Some(&self.name)),
            ("version", self.version.as_ref()),
            ("identity_key", self.identity_key.as_ref()),
            ("initiator", self.initiator.as_ref()),
            ("source_system", self.source_system.as_ref()),
            ("reason", self.reason.as_ref()),
        ];
        let checked = texts
            .iter()
            .filter_map(|(field, text)| text.map(|t| (field, t)))
            .try_for_each(|(field, text)| payload::check_text(text, field))
            .and_then(|()| {
                self.tags
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, tag)| payload::check_text(tag, &format!("tags[{i}]")))
            });
        if let Err(e) = checked {
            self.discard();
            return Err(e.into());
        }
        if let Some(limit) = self.max_execution_time {
            if limit.is_zero() || limit > MAX_EXECUTION_TIME_LIMIT {
                self.discard();
                return Err(Error::RequestValue {
                    field: "max_execution_time",
                    problem: format!(
                        "is {}, out of range: give between 1ms and {} days",
                        humantime::format_duration(limit),
                        MAX_EXECUTION_TIME_LIMIT.as_secs() / 86_400
                    ),
                });
            }
        }
        let context = payload::check_owned(self.context, "context")?;
        Ok(RequestParts {
            namespace: self.namespace,
            name: self.name,
            version: self.version,
            context,
            identity_key: self.identity_key,
            initiator: self.initiator,
            source_system: self.source_system,
            reason: self.reason,
            tags: self.tags,
            priority: self.priority,
            max_execution_time: self.max_execution_time,
        })
    }
}

pub(crate) struct RequestParts {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) version: Option<String>,
    pub(crate) context: Value,
    pub(crate) identity_key: Option<String>,
    pub(crate) initiator: Option<String>,
    pub(crate) source_system: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) priority: Option<Priority>,
    pub(crate) max_execution_time: Option<Duration>,
}
