//! Configuration errors: where (file and line, or variable), which key,
//! and what is allowed.

use std::fmt;

use super::tree::Origin;

/// One problem with the configuration.
///
/// Displayed as `tasker.yaml:12:5: engine.lease: <problem>`: the place
/// (file and position, or the environment variable), the key path, and
/// what is wrong with what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the offending value (or its nearest enclosing key) was set.
    pub origin: Origin,
    /// The key path, dotted (`handlers.payments/process_order.steps.charge`);
    /// empty for the whole file.
    pub key: String,
    /// What is wrong, and what to write instead.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.problem)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.key, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid configuration: {one}"),
            many => {
                write!(f, "invalid configuration ({} problems):", many.len())?;
                for error in many {
                    write!(f, "\n  {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}
