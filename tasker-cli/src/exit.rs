//! Errors of a command and the exit codes scripts can rely on.

use std::fmt;
use std::process::ExitCode;

use tasker::StoreError;

/// What a command's exit code says. The numbers are stable.
///
/// | code | meaning |
/// |---|---|
/// | 0 | success |
/// | 1 | failure: the database or the engine failed |
/// | 2 | usage: bad arguments or input (unknown option, malformed JSON, bad state name) |
/// | 3 | not found: no such task, step or handler |
/// | 4 | conflict: the action is not legal in the current state |
/// | 5 | unavailable: no database at that path, unreachable, in use, not migrated |
/// | 6 | check failed: `check` found tasks this binary cannot run; `migrate --status` found pending migrations |
/// | 7 | timed out: `task wait` gave up |
/// | 8 | the task ended without completing (`task wait`: `error`, `cancelled`) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// 0.
    Success = 0,
    /// 1.
    Failure = 1,
    /// 2.
    Usage = 2,
    /// 3.
    NotFound = 3,
    /// 4.
    Conflict = 4,
    /// 5.
    Unavailable = 5,
    /// 6.
    CheckFailed = 6,
    /// 7.
    TimedOut = 7,
    /// 8.
    TaskFailed = 8,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A command's failure: the message for people and the exit code for
/// scripts.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong, and what to do.
    pub message: String,
}

impl CliError {
    /// A failure with `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
        }
    }

    /// Bad arguments or input.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new(Exit::Usage, message)
    }

    /// Anything else that failed.
    pub fn failure(message: impl Into<String>) -> Self {
        CliError::new(Exit::Failure, message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let exit = match &e {
            StoreError::NotFound { .. } => Exit::NotFound,
            StoreError::Conflict { .. } => Exit::Conflict,
            StoreError::Unavailable(_) => Exit::Unavailable,
            StoreError::Invalid(_) => Exit::Usage,
            _ => Exit::Failure,
        };
        CliError::new(exit, e.to_string())
    }
}

impl From<tasker::Error> for CliError {
    fn from(e: tasker::Error) -> Self {
        use tasker::Error;
        let exit = match &e {
            Error::Store(StoreError::NotFound { .. }) => Exit::NotFound,
            Error::Store(StoreError::Conflict { .. }) => Exit::Conflict,
            Error::Store(StoreError::Unavailable(_)) => Exit::Unavailable,
            Error::Store(StoreError::Invalid(_)) => Exit::Usage,
            Error::Lookup(_) | Error::UnknownStep { .. } => Exit::NotFound,
            Error::Context(_)
            | Error::Payload(_)
            | Error::InvalidRequest(_)
            | Error::RequestValue { .. }
            | Error::Config(_) => Exit::Usage,
            Error::Timeout { .. } => Exit::TimedOut,
            _ => Exit::Failure,
        };
        CliError::new(exit, e.to_string())
    }
}

impl From<tasker::LookupError> for CliError {
    fn from(e: tasker::LookupError) -> Self {
        CliError::new(Exit::NotFound, e.to_string())
    }
}
