//! The audit trail: a task's and its steps' state changes, and which of
//! them a read returns.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{StepId, TaskId};

/// One audited state change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// The task, or the task of the step.
    pub task_id: TaskId,
    /// The step, for a step transition.
    pub step_id: Option<StepId>,
    /// Previous state (`None` at creation).
    pub from_state: Option<String>,
    /// New state.
    pub to_state: String,
    /// Attempt number, for step transitions.
    pub attempt: Option<u32>,
    /// Worker or operator.
    pub actor: Option<String>,
    /// Error message, when the change came from a failure.
    pub error: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// The audit row's id: increasing in the order rows were written, within
    /// task transitions and within step transitions.
    pub seq: i64,
}

/// Which of a task's transitions a read of its audit trail returns
/// ([`Store::transitions_window`](super::Store::transitions_window)).
///
/// A fan-out of many items writes several transitions per item, so a
/// task's whole trail grows with its items: pages that show a task read
/// its own and its steps' transitions ([`STEPS`](Self::STEPS)), or the
/// newest few.
///
/// ```
/// use tasker::store::TransitionWindow;
///
/// assert!(TransitionWindow::ALL.items && TransitionWindow::ALL.newest.is_none());
/// let recent = TransitionWindow::STEPS.newest(500);
/// assert!(!recent.items);
/// assert_eq!(recent.newest, Some(500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionWindow {
    /// Whether the transitions of fan-out items are included (a group's
    /// own transitions always are).
    pub items: bool,
    /// At most this many, the newest; `None`: all of them.
    pub newest: Option<u32>,
}

impl TransitionWindow {
    /// Every transition: the task's, its steps' and its items'.
    pub const ALL: TransitionWindow = TransitionWindow {
        items: true,
        newest: None,
    };
    /// The task's and its steps' transitions (fan-out groups included),
    /// without those of the items: a read bounded by the handler's steps
    /// and their attempts, not by the task's data.
    pub const STEPS: TransitionWindow = TransitionWindow {
        items: false,
        newest: None,
    };

    /// The same window, keeping only the newest `limit` transitions.
    pub const fn newest(self, limit: u32) -> TransitionWindow {
        TransitionWindow {
            newest: Some(limit),
            ..self
        }
    }
}
