//! What the engine has done lately, for the dashboard's overview: steps
//! finished and failed per minute, and the workers that claimed steps.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Steps finished and the workers seen since a time ([`Store::activity`](super::Store::activity)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// One entry per minute with a step finished or failed, oldest first
    /// (minutes with neither are left out).
    pub minutes: Vec<ActivityMinute>,
    /// The workers that claimed a step, most recent claim first (at most
    /// [`MAX_WORKERS_SEEN`]).
    pub workers: Vec<WorkerSeen>,
}

/// The workers [`Activity`] lists at most.
pub const MAX_WORKERS_SEEN: usize = 100;

/// Steps finished in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityMinute {
    /// The minute's start.
    pub minute: DateTime<Utc>,
    /// Attempts that completed their step.
    pub completed: i64,
    /// Attempts that failed (retried or not).
    pub failed: i64,
}

/// A worker that claimed steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerSeen {
    /// Its `worker_id`.
    pub worker_id: String,
    /// When it last claimed a step.
    pub last_claim: DateTime<Utc>,
    /// Steps it claimed in the period.
    pub claims: i64,
}

impl Activity {
    /// Attempts completed in all minutes.
    pub fn completed(&self) -> i64 {
        self.minutes.iter().map(|m| m.completed).sum()
    }

    /// Attempts failed in all minutes.
    pub fn failed(&self) -> i64 {
        self.minutes.iter().map(|m| m.failed).sum()
    }
}

/// Tasks in one state, as the dashboard's overview shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StateCount {
    /// The state.
    pub state: crate::TaskState,
    /// How many tasks are in it.
    pub count: i64,
    /// Counted (`true`), or estimated from the database's statistics.
    pub exact: bool,
}

/// Tables with fewer rows than this are always counted exactly by
/// [`Store::task_counts_at_a_glance`](super::Store::task_counts_at_a_glance).
pub const ESTIMATE_ABOVE_ROWS: i64 = 200_000;
