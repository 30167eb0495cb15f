//! What workers claim and record: [`ClaimRequest`] and the
//! [`ClaimedStep`]s it returns, an attempt's [`Completion`] and what
//! recording it did ([`Completed`]), and the tasks a deadline ended.

use std::time::Duration;

use serde_json::Value;

use crate::ids::{StepId, TaskId};
use crate::limit::ClaimLimit;
use crate::state::TaskState;
use crate::step::StepError;

/// What to claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// Only steps of tasks created from these handlers (the ones linked
    /// into this worker, with matching fingerprints).
    pub handler_ids: &'a [i64],
    /// At most this many steps.
    pub limit: u32,
    /// The lease: the claim expires this long from now unless renewed.
    pub lease: Duration,
    /// The claiming worker, for the audit trail.
    pub worker: &'a str,
    /// Limits held across all workers: a step one of them covers is
    /// claimed only under it (its lock taken, its running steps counted,
    /// [`ClaimLimit::admit`] asked); every other step as usual. Empty for
    /// a worker without limits, which then claims exactly as before.
    pub limits: &'a [ClaimLimit],
}

/// A step claimed by a worker, with everything needed to run it.
#[derive(Debug, Clone)]
pub struct ClaimedStep {
    /// The step.
    pub step_id: StepId,
    /// Its task.
    pub task_id: TaskId,
    /// The task's handler.
    pub handler_id: i64,
    /// The step's name.
    pub name: String,
    /// The step's index in declaration order.
    pub index: u32,
    /// Whether this claim started the task (pending -> in_progress).
    pub task_started: bool,
    /// This attempt's number (1-based); completions must quote it.
    pub attempt: u32,
    /// Attempts allowed in all.
    pub max_attempts: u32,
    /// The task context.
    pub context: Value,
    /// Outputs of the step's parents, by name.
    pub inputs: Vec<(String, Value)>,
    /// For an instance of a fan-out step (`#[step(for_each = ...)]`): its
    /// place among the items, 0-based. `None` for every other step,
    /// including the fan-out's group row.
    pub item_index: Option<u32>,
    /// For an instance of a fan-out step: its item (one element of the
    /// source step's output). `None` for every other step.
    pub item: Option<Value>,
    /// Why the stored context or inputs could not be read, when they could
    /// not (then `context` is `null` and `inputs` empty). The engine fails
    /// such a step permanently, with this message, without running it;
    /// the other steps of the claim are unaffected.
    pub unreadable: Option<String>,
}

/// How an attempt ended, as the engine decided.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done, with its output.
    Complete(Value),
    /// Failed; run again after `delay`.
    Retry {
        /// The error.
        error: StepError,
        /// The backoff delay.
        delay: Duration,
    },
    /// Failed for good: the step goes to `error` and its task too.
    Fail(StepError),
    /// A fan-out step's group row (`#[step(for_each = source)]`), claimed
    /// once its parents were done: insert one instance per item, the first
    /// `concurrency` of them ready and each of the others released when an
    /// instance finishes. The group stays `in_progress` without a lease;
    /// the last instance's completion completes it with the instances'
    /// outputs in item order (see [`Completed::group_completed`]). Never
    /// empty: a fan-out over no items completes with `[]` instead.
    FanOut {
        /// The source step; the instances depend on the group's other
        /// parents, and receive their item instead of its output.
        source: &'static str,
        /// The items, in order.
        items: Vec<Value>,
        /// Instances released at once (at least 1).
        concurrency: u32,
        /// What an instance failing for good does: fail the task, or
        /// become the instance's result (kept with the group, so every
        /// later failure of its instances follows it).
        on_item_error: crate::fan_out::OnItemError,
    },
}

/// The end of one attempt, to record.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The step.
    pub step_id: StepId,
    /// The attempt that ended; a completion for an older attempt (the lease
    /// expired and another worker took over) is refused.
    pub attempt: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// The worker, for the audit trail.
    pub worker: String,
    /// How long the attempt ran.
    pub duration: Duration,
    /// For a successful attempt: claim one of the children it releases for
    /// the same worker, under this lease, and return it in
    /// [`Completed::next`] (so a chain costs one round trip per step).
    pub take_next: Option<Duration>,
    /// For a successful attempt: the annotations its step recorded, written
    /// with the result (in the same transaction) when it is applied, never
    /// otherwise. Empty for failures.
    pub annotations: Vec<crate::Annotation>,
    /// For a successful decision step: its branches that its output did not
    /// choose. When the completion is applied they go `pending -> skipped`
    /// in the same transaction (before the step's children are released),
    /// and so does every step whose dependencies all end skipped; a step
    /// with a dependency that ran is released as usual. Empty otherwise.
    pub skip: Vec<&'static str>,
    /// For an instance of a fan-out step: its place among the items
    /// ([`ClaimedStep::item_index`]). Its success then also counts it off
    /// its group, releases the group's next pending instance and, for the
    /// last one, completes the group, all in the same transaction; so
    /// does its [`Outcome::Fail`] when its group collects item errors
    /// (the step ends `error` with `{"Err": error}` as its result, and the
    /// task is not failed; see [`Completed::collected`]).
    pub item_index: Option<u32>,
}

/// What recording a completion did.
#[derive(Debug, Clone, Default)]
pub struct Completed {
    /// `false` when the completion was refused (stale attempt, or the step
    /// was cancelled or resolved meanwhile).
    pub applied: bool,
    /// Children that became ready.
    pub released: u32,
    /// The task's new state, when this completion changed it.
    pub task_state: Option<TaskState>,
    /// When this completion finished the task: how long since it was
    /// created, by the store's clock.
    pub task_duration: Option<Duration>,
    /// A released child claimed for the same worker (see
    /// [`Completion::take_next`]), already `in_progress` under its lease.
    pub next: Option<ClaimedStep>,
    /// The steps this completion skipped ([`Completion::skip`] and the
    /// steps after them that were skipped with them), in the order they
    /// were skipped.
    pub skipped: Vec<(StepId, String)>,
    /// The fan-out group this instance's completion completed (it was
    /// the group's last unfinished instance) and the group's attempt, if
    /// any.
    pub group_completed: Option<(StepId, u32)>,
    /// The failure of an instance whose group collects item errors
    /// (`on_item_error = "collect"`): recorded as the item's result, the
    /// task not failed.
    pub collected: bool,
}

/// A task that passed its deadline, as [`Store::expire_deadlines`](super::Store::expire_deadlines)
/// ended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredTask {
    /// The task.
    pub task_id: TaskId,
    /// Its handler's store id.
    pub handler_id: i64,
    /// Its steps that had not started and are now in `error`.
    pub steps: Vec<(StepId, String)>,
    /// Whether the task itself moved to `error` now (it was pending or in
    /// progress; a task already in `error` only had steps stopped).
    pub failed: bool,
}

/// The error recorded on a step that its task's deadline stopped.
pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
