//! Cross-crate integration tests for tasker live in this package's test
//! targets. This library only compiles the guide's examples as doctests, so
//! the documentation cannot drift from the code.

/// `docs/getting-started.md`, compiled and run.
#[cfg(doctest)]
#[doc = include_str!("../docs/getting-started.md")]
pub struct GettingStarted;
