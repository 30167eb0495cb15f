//! Task and step states, and the one place that says which transitions are
//! legal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! states {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every state.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The state's name as stored and shown (`in_progress`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;

            fn from_str(text: &str) -> Result<Self, UnknownState> {
                match text {
                    $($text => Ok($name::$variant),)*
                    _ => Err(UnknownState {
                        kind: stringify!($name),
                        text: text.to_owned(),
                        expected: &[$($text,)*],
                    }),
                }
            }
        }
    };
}

states! {
    /// The state of a task.
    TaskState {
        /// Created; no step has started.
        Pending = "pending",
        /// At least one step has started and the task is not finished.
        InProgress = "in_progress",
        /// Every step is complete or resolved by hand.
        Complete = "complete",
        /// A step failed permanently or ran out of retries.
        Error = "error",
        /// Cancelled by an operator.
        Cancelled = "cancelled",
        /// Marked done by an operator.
        ResolvedManually = "resolved_manually",
    }
}

states! {
    /// The state of one step of a task.
    StepState {
        /// Waiting for its dependencies.
        Pending = "pending",
        /// Its dependencies are done; waiting for a worker (or for its retry
        /// time).
        Ready = "ready",
        /// Claimed by a worker and running.
        InProgress = "in_progress",
        /// Finished with an output.
        Complete = "complete",
        /// Failed permanently or ran out of retries.
        Error = "error",
        /// Cancelled with its task.
        Cancelled = "cancelled",
        /// Marked done by an operator.
        ResolvedManually = "resolved_manually",
        /// Not run: a decision chose other branches, or every step it
        /// depends on was skipped.
        Skipped = "skipped",
    }
}

/// A state name that is not one of the known states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {text:?}; expected one of {expected:?}")]
pub struct UnknownState {
    kind: &'static str,
    text: String,
    expected: &'static [&'static str],
}

impl TaskState {
    /// Whether the task can never run again without an operator.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Complete | TaskState::Cancelled | TaskState::ResolvedManually
        )
    }

    /// Whether `self -> to` is a legal transition.
    ///
    /// ```
    /// use tasker::TaskState::*;
    /// assert!(Pending.can_transition_to(InProgress));
    /// assert!(Error.can_transition_to(InProgress)); // operator retry
    /// assert!(!Complete.can_transition_to(InProgress));
    /// ```
    pub fn can_transition_to(self, to: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, to),
            (
                Pending,
                InProgress | Complete | Error | Cancelled | ResolvedManually
            ) | (InProgress, Complete | Error | Cancelled | ResolvedManually)
                | (Error, InProgress | Complete | Cancelled | ResolvedManually)
        )
    }
}

impl StepState {
    /// Whether the step's dependents may run (`complete` or
    /// `resolved_manually`).
    pub fn satisfies_dependents(self) -> bool {
        matches!(self, StepState::Complete | StepState::ResolvedManually)
    }

    /// Whether the step will not change again without an operator.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            StepState::Complete
                | StepState::Cancelled
                | StepState::ResolvedManually
                | StepState::Skipped
        )
    }

    /// Whether `self -> to` is a legal transition.
    ///
    /// `in_progress -> ready` is a retry after a failed attempt or a
    /// reclaim after an expired lease; `error -> ready` is an operator retry;
    /// `pending -> skipped` is a branch a decision did not choose (or a step
    /// after only skipped steps).
    ///
    /// ```
    /// use tasker::StepState::*;
    /// assert!(Ready.can_transition_to(InProgress));
    /// assert!(InProgress.can_transition_to(Ready));
    /// assert!(!Complete.can_transition_to(Ready));
    /// assert!(!Pending.can_transition_to(InProgress));
    /// assert!(Pending.can_transition_to(Skipped));
    /// assert!(!Skipped.can_transition_to(Ready));
    /// ```
    pub fn can_transition_to(self, to: StepState) -> bool {
        use StepState::*;
        matches!(
            (self, to),
            (Pending, Ready | Cancelled | ResolvedManually | Skipped)
                | (Ready, InProgress | Error | Cancelled | ResolvedManually)
                | (
                    InProgress,
                    Complete | Error | Ready | Cancelled | ResolvedManually
                )
                | (Error, Ready | Cancelled | ResolvedManually)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in TaskState::ALL {
            assert_eq!(state.as_str().parse::<TaskState>().unwrap(), *state);
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::String(state.to_string())
            );
        }
        for state in StepState::ALL {
            assert_eq!(state.as_str().parse::<StepState>().unwrap(), *state);
        }
        let err = "done".parse::<StepState>().unwrap_err();
        assert!(
            err.to_string().starts_with("unknown StepState \"done\""),
            "{err}"
        );
    }

    #[test]
    fn finished_states_have_no_way_out_but_error_does() {
        for from in StepState::ALL.iter().filter(|s| s.is_finished()) {
            assert!(
                StepState::ALL.iter().all(|to| !from.can_transition_to(*to)),
                "{from}"
            );
        }
        for from in TaskState::ALL.iter().filter(|s| s.is_finished()) {
            assert!(
                TaskState::ALL.iter().all(|to| !from.can_transition_to(*to)),
                "{from}"
            );
        }
        assert!(StepState::Error.can_transition_to(StepState::Ready));
        assert!(TaskState::Error.can_transition_to(TaskState::InProgress));
    }

    #[test]
    fn no_state_transitions_to_itself() {
        assert!(StepState::ALL.iter().all(|s| !s.can_transition_to(*s)));
        assert!(TaskState::ALL.iter().all(|s| !s.can_transition_to(*s)));
    }
}
