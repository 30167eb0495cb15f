//! What a step returns ([`StepResult`], [`StepError`]) and the settings it
//! runs under ([`StepConfig`]). What it sees is [`StepContext`](crate::StepContext).

use std::any::type_name;
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::resources::{ConfigValue, HandlerConfigs, Resources};

/// What a step returns: its output, or why it failed.
///
/// The output must be `Serialize + DeserializeOwned`: it is stored, and the
/// steps that depend on this one receive it deserialized.
pub type StepResult<T> = Result<T, StepError>;

/// Why a step attempt failed, and whether trying again can help.
///
/// * [`StepError::retryable`]: a transient failure (timeout, 503, lock
///   conflict). The step runs again after a backoff delay, while it has
///   retries left.
/// * [`StepError::permanent`]: retrying cannot help (invalid data, a
///   declined card). The step fails at once and its task goes to `error`.
/// * `?` on any other error type converts it into a retryable `StepError`
///   whose class is the error's type name.
///
/// `StepError` does not implement [`std::error::Error`] itself, so that the
/// blanket `From` conversion can exist (as with `anyhow::Error`).
///
/// ```
/// use std::time::Duration;
/// use tasker::prelude::*;
///
/// fn charge(amount_cents: i64) -> StepResult<String> {
///     if amount_cents <= 0 {
///         return Err(StepError::permanent("amount must be positive"));
///     }
///     // The payment provider asked us to come back in a minute.
///     Err(StepError::retryable("provider is rate limiting").with_retry_after(Duration::from_secs(60)))
/// }
///
/// let error = charge(-5).unwrap_err();
/// assert!(!error.is_retryable());
/// let error = charge(100).unwrap_err();
/// assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
///
/// // `?` on any other error: retryable, classed by its type.
/// fn parse(input: &str) -> StepResult<i64> {
///     Ok(input.parse::<i64>()?)
/// }
/// let error = parse("x").unwrap_err();
/// assert!(error.is_retryable());
/// assert_eq!(error.class(), "core::num::error::ParseIntError");
/// ```
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    kind: StepErrorKind,
    message: String,
    class: Cow<'static, str>,
}

/// Whether a failed attempt may be retried.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepErrorKind {
    /// Worth another attempt, after the backoff delay or `after` when given.
    Retryable {
        /// Overrides the computed backoff delay.
        after: Option<Duration>,
    },
    /// Another attempt cannot succeed.
    Permanent,
}

impl StepError {
    const DEFAULT_CLASS: &'static str = "StepError";

    /// A transient failure: the step is attempted again while it has retries
    /// left.
    pub fn retryable(message: impl Into<String>) -> Self {
        StepError {
            kind: StepErrorKind::Retryable { after: None },
            message: message.into(),
            class: Cow::Borrowed(Self::DEFAULT_CLASS),
        }
    }

    /// A failure another attempt cannot fix: the step fails now.
    pub fn permanent(message: impl Into<String>) -> Self {
        StepError {
            kind: StepErrorKind::Permanent,
            message: message.into(),
            class: Cow::Borrowed(Self::DEFAULT_CLASS),
        }
    }

    /// Makes the error retryable no sooner than `delay` from now, instead of
    /// the computed backoff (an HTTP `Retry-After`, say).
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.kind = StepErrorKind::Retryable { after: Some(delay) };
        self
    }

    /// Sets the error class shown in events and the API (defaults to
    /// `StepError`, or the source error's type name for `?`).
    #[must_use]
    pub fn with_class(mut self, class: impl Into<Cow<'static, str>>) -> Self {
        self.class = class.into();
        self
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, StepErrorKind::Retryable { .. })
    }

    /// Whether this failure of attempt `attempt` (1-based) of a step that
    /// may make `max_attempts` in all is followed by another attempt: the
    /// one retry rule of the engine and the test runner.
    pub(crate) fn retries_after(&self, attempt: u32, max_attempts: u32) -> bool {
        self.is_retryable() && attempt < max_attempts
    }

    /// The delay the step asked for before its next attempt, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            StepErrorKind::Retryable { after } => after,
            StepErrorKind::Permanent => None,
        }
    }

    /// Retryable or permanent.
    pub fn kind(&self) -> StepErrorKind {
        self.kind
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A short classification of the error, usually a type name.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// Longest message stored; longer ones are cut (at a character
    /// boundary) and marked.
    pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

    /// The error as it can always be stored: NUL characters replaced, the
    /// message cut to [`Self::MAX_MESSAGE_BYTES`].
    pub(crate) fn storable(mut self) -> Self {
        use crate::payload::sanitize_text;
        if let Cow::Owned(clean) = sanitize_text(&self.message) {
            self.message = clean;
        }
        if let Cow::Owned(clean) = sanitize_text(&self.class) {
            self.class = Cow::Owned(clean);
        }
        if self.message.len() > Self::MAX_MESSAGE_BYTES {
            let mut end = Self::MAX_MESSAGE_BYTES;
            while !self.message.is_char_boundary(end) {
                end -= 1;
            }
            self.message.truncate(end);
            self.message.push_str(" [truncated]");
        }
        self
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_retryable() {
            "retryable"
        } else {
            "permanent"
        };
        write!(f, "{} ({kind}): {}", self.class, self.message)
    }
}

impl<E> From<E> for StepError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        StepError {
            kind: StepErrorKind::Retryable { after: None },
            message,
            class: Cow::Borrowed(type_name::<E>()),
        }
    }
}

/// Converts any `Result` into a [`StepResult`] with the failure kind stated.
///
/// ```
/// use tasker::prelude::*;
///
/// fn validate(input: &str) -> StepResult<u32> {
///     // Bad input will not get better by retrying.
///     input.parse::<u32>().permanent()
/// }
/// assert!(!validate("x").unwrap_err().is_retryable());
/// ```
pub trait StepResultExt<T> {
    /// Any error is permanent.
    fn permanent(self) -> StepResult<T>;
    /// Any error is retryable.
    fn retryable(self) -> StepResult<T>;
}

impl<T, E: fmt::Display> StepResultExt<T> for Result<T, E> {
    fn permanent(self) -> StepResult<T> {
        self.map_err(|e| StepError::permanent(e.to_string()).with_class(class_of::<E>()))
    }

    fn retryable(self) -> StepResult<T> {
        self.map_err(|e| StepError::retryable(e.to_string()).with_class(class_of::<E>()))
    }
}

/// The class recorded for an error of type `E`: its type name, except for
/// plain messages (`String`, `&str`, ...), whose type says nothing about the
/// failure: they get the default class, `StepError`.
fn class_of<E: ?Sized>() -> &'static str {
    match type_name::<E>() {
        "alloc::string::String"
        | "&str"
        | "str"
        | "&alloc::string::String"
        | "alloc::boxed::Box<str>"
        | "alloc::borrow::Cow<str>" => StepError::DEFAULT_CLASS,
        name => name,
    }
}

/// Settings of a step, resolved from its `#[step(...)]` attribute and the
/// worker's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepConfig {
    /// Retries after the first attempt: `retry_limit = 3` allows 4 attempts.
    pub retry_limit: u32,
    /// Whether a retryable error may be retried at all.
    pub retryable: bool,
    /// How long one attempt may run before it is failed as timed out.
    pub timeout: Option<Duration>,
}

impl StepConfig {
    /// Retries allowed when neither the step nor the worker says otherwise.
    pub const DEFAULT_RETRY_LIMIT: u32 = 3;

    /// Attempts the step may make in all: the first and `retry_limit`
    /// retries, or only the first when it is not retryable.
    pub fn max_attempts(&self) -> u32 {
        if self.retryable {
            self.retry_limit.saturating_add(1)
        } else {
            1
        }
    }

    /// Whether a failure of attempt number `attempt` (1-based) may be
    /// followed by another attempt.
    pub fn allows_retry_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts()
    }
}

impl Default for StepConfig {
    fn default() -> Self {
        StepConfig {
            retry_limit: Self::DEFAULT_RETRY_LIMIT,
            retryable: true,
            timeout: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message_gets_the_default_class_and_a_typed_error_its_name() {
        let error = Err::<(), String>("only 0 in stock".to_owned())
            .permanent()
            .unwrap_err();
        assert_eq!(error.class(), "StepError");
        assert_eq!(error.to_string(), "StepError (permanent): only 0 in stock");
        let error = Err::<(), &str>("busy").retryable().unwrap_err();
        assert_eq!(error.class(), "StepError");
        let error = "x".parse::<i32>().permanent().unwrap_err();
        assert_eq!(error.class(), "core::num::error::ParseIntError");
    }
}
