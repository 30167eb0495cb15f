//! Errors of the `tasker` crate.

use std::fmt;

/// Everything that can go wrong in `tasker` outside a step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The handlers linked into the binary do not form a valid registry.
    #[error(transparent)]
    Registry(#[from] RegistryErrors),
    /// The configuration is invalid: every problem, each with its file,
    /// line, key and what is allowed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigErrors),
    /// A handler lookup found nothing.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// A task context does not match the handler's context type.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// A handler definition is invalid.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// A step name that the handler does not have.
    #[error("handler {handler} has no step `{step}`; its steps are {steps}")]
    UnknownStep {
        /// `namespace/name@version`.
        handler: String,
        /// The name asked for.
        step: String,
        /// The handler's steps, comma separated.
        steps: String,
    },
    /// A step that has no output to read (it did not complete).
    #[error("step `{step}` has no output: it {state}")]
    NoOutput {
        /// The step.
        step: String,
        /// What happened to it instead.
        state: String,
    },
    /// A step output that does not deserialize into the requested type.
    #[error("the output of step `{step}` is not a `{type_name}`: {message}")]
    OutputType {
        /// The step.
        step: String,
        /// The requested type.
        type_name: &'static str,
        /// The deserialization error with its field path.
        message: String,
    },
    /// A task request body that is not valid JSON of the expected shape.
    #[error("malformed task request: {0}; send a JSON object with `namespace`, `name`, optional `version` and `context`")]
    InvalidRequest(String),
    /// A well-formed task request with a value out of range.
    #[error("invalid task request: `{field}` {problem}")]
    RequestValue {
        /// The request field, as named in JSON.
        field: &'static str,
        /// What is wrong and what to give instead.
        problem: String,
    },
    /// A handler's `step_defaults` or `validate` function failed (it
    /// panicked, or `step_defaults` named a step the handler does not
    /// have): a bug in the handler.
    #[error("the {hook} function of handler {handler} {problem}")]
    HandlerHook {
        /// `namespace/name@version`.
        handler: String,
        /// `step_defaults` or `validate`.
        hook: &'static str,
        /// What went wrong.
        problem: String,
    },
    /// The handler's `validate` function found values out of bounds in
    /// the task context; each violation names its field path.
    #[error("the task context is invalid: {violations}")]
    InvalidContext {
        /// `namespace/name@version`.
        handler: String,
        /// What is wrong, where.
        violations: crate::Violations,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The handler exists but is not run by this worker (see the start-up
    /// report).
    #[error("task handler {0} is registered but not served by this worker")]
    HandlerNotServed(String),
    /// Waiting for a task took too long.
    #[error("task {task_id} did not finish within {waited:?}; it is {state}")]
    Timeout {
        /// The task.
        task_id: crate::TaskId,
        /// How long we waited.
        waited: std::time::Duration,
        /// Its state when we gave up.
        state: crate::TaskState,
    },
    /// A value tasker refuses to store (too deeply nested, or holding a NUL
    /// character); names the field.
    #[error("cannot store this value: {0}")]
    Payload(#[from] crate::payload::PayloadError),
    /// A value that could not be serialized to JSON.
    #[error("could not serialize the {what} to JSON: {source}")]
    Serialize {
        /// What was being serialized.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a non-string panic payload)")
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A task context that does not deserialize into the handler's context
/// type. Names the failing field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the task context does not match the context type `{context_type}`: {detail}; send a JSON object with the fields of `{context_type}`")]
pub struct ContextError {
    /// The handler's context type.
    pub context_type: &'static str,
    /// The failing field path (`.` for the whole context).
    pub path: String,
    /// What is wrong there, with the path.
    pub detail: String,
}

/// A handler definition that cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid task handler {handler} declared by {source_location}: {problem}")]
pub struct DefinitionError {
    /// `namespace/name@version`.
    pub handler: String,
    /// The Rust type and where it is declared.
    pub source_location: String,
    /// What is wrong.
    pub problem: String,
}

/// A problem with one handler registration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two handlers with the same namespace, name and version.
    #[error(
        "task handler {key} is registered twice: by {first} and by {second}; \
         give one of them another version or name"
    )]
    Duplicate {
        /// `namespace/name@version`.
        key: String,
        /// The first registration's type and location.
        first: String,
        /// The second registration's type and location.
        second: String,
    },
    /// An invalid definition.
    #[error(transparent)]
    Invalid(#[from] DefinitionError),
}

/// Every problem found while building a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryErrors(pub Vec<RegistryError>);

impl fmt::Display for RegistryErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => one.fmt(f),
            many => {
                write!(
                    f,
                    "{} problems with the registered task handlers:",
                    many.len()
                )?;
                for problem in many {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for RegistryErrors {}

/// A handler lookup that found nothing. The message lists what exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No handler is registered in the namespace.
    #[error(
        "unknown namespace {namespace:?}; the registered namespaces are {}",
        list(known)
    )]
    UnknownNamespace {
        /// The namespace asked for.
        namespace: String,
        /// The registered namespaces.
        known: Vec<String>,
    },
    /// The namespace has no handler of that name.
    #[error(
        "no task handler {name:?} in namespace {namespace:?}; its handlers are {}",
        list(known)
    )]
    UnknownHandler {
        /// The namespace.
        namespace: String,
        /// The name asked for.
        name: String,
        /// The handlers of the namespace.
        known: Vec<String>,
    },
    /// No registered version satisfies the selector.
    #[error(
        "no version of {namespace}/{name} matches {selector}; the registered versions are {}{hint}",
        list(available)
    )]
    NoMatchingVersion {
        /// The namespace.
        namespace: String,
        /// The handler name.
        name: String,
        /// The selector as given.
        selector: String,
        /// The registered versions.
        available: Vec<String>,
        /// Extra advice, empty or starting with `; `.
        hint: String,
    },
    /// The version selector does not parse.
    #[error("invalid version {input:?}: {message}; give an exact version (\"2.1.0\"), a requirement (\"^2\", \">=1.2, <2\") or \"latest\"")]
    InvalidVersion {
        /// The selector as given.
        input: String,
        /// The parser's complaint.
        message: String,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(|item| format!("{item:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
