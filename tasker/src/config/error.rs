//! Configuration errors: where (file and line, or variable), which key,
//! and what is allowed.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Not set by any layer: the built-in default.
    Default,
    /// A YAML file, at a 1-based line and column.
    File {
        /// The file as it was named.
        path: Arc<PathBuf>,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
    },
    /// An environment variable (`TASKER__ENGINE__LEASE`).
    Env(String),
    /// Set by the program (a command-line flag, or code).
    Program(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in default"),
            Origin::File { path, line, column } => {
                write!(f, "{}:{line}:{column}", path.display())
            }
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Program(what) => f.write_str(what),
        }
    }
}

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
