//! Operator actions and the rules of task finishing, written once for both
//! backends.
//!
//! [`apply`] holds the whole sequence of every operator action: what is
//! checked, the refusal messages, which rows change and what state the
//! task ends in. A backend supplies only the primitive statements
//! ([`Primitives`]). PostgreSQL implements them with diesel-async inside
//! its transaction; SQLite with sync diesel inside its immediate
//! transaction, driven by [`run_now`] (its futures never wait). Every task
//! transition the shared code makes is checked against
//! `TaskState::can_transition_to` in debug builds.

use std::future::Future;

use crate::fan_out::{FanOutPrimitives, Role};
use serde_json::Value;
use tasker::store::{ExpiredTask, OperatorAction, StoreError};
use tasker::{StepError, StepId, StepState, TaskId, TaskState};

/// An error inside a store transaction: the driver's, or ours.
pub(crate) enum TxError {
    Diesel(diesel::result::Error),
    Store(StoreError),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Diesel(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

impl TxError {
    #[cfg(feature = "postgres")]
    pub(crate) fn into_store(self, doing: &'static str) -> StoreError {
        match self {
            TxError::Diesel(e) => StoreError::database(doing, e),
            TxError::Store(e) => e,
        }
    }
}

pub(crate) type Tx<T> = Result<T, TxError>;

/// Refuses a change: `what` `id` is in `state`, and `rule` says what the
/// change needs.
fn conflict<T>(what: &'static str, id: i64, state: impl std::fmt::Display, rule: String) -> Tx<T> {
    Err(TxError::Store(StoreError::Conflict {
        what,
        id,
        state: state.to_string(),
        rule,
    }))
}

/// Counts of a task's steps that decide its state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepCounts {
    /// Steps not finished (the task's `unfinished_steps`).
    pub(crate) unfinished: i64,
    /// Steps cancelled.
    pub(crate) cancelled: i64,
    /// Steps in `error`.
    pub(crate) errors: i64,
}

/// The primitive statements of the operator actions. Each runs inside the
/// action's transaction; `lock_*` lock the row for the rest of it.
pub(crate) trait Primitives {
    /// Locks the task row; its state. `NotFound` when there is none.
    fn lock_task(&mut self, task_id: i64) -> impl Future<Output = Tx<TaskState>>;
    /// The task of a step. `NotFound` when there is none.
    fn task_of_step(&mut self, step_id: i64) -> impl Future<Output = Tx<i64>>;
    /// Locks the step row; its state.
    fn lock_step(&mut self, step_id: i64) -> impl Future<Output = Tx<StepState>>;
    /// `error` steps (of the task, or the one step) go back to `ready` with
    /// a new set of attempts, audited.
    fn retry_failed(
        &mut self,
        task_id: i64,
        step_id: Option<i64>,
        actor: &str,
    ) -> impl Future<Output = Tx<()>>;
    /// Every unfinished step of the task goes to `to`, audited; the task's
    /// unfinished count becomes 0.
    fn close_steps(
        &mut self,
        task_id: i64,
        to: StepState,
        actor: &str,
    ) -> impl Future<Output = Tx<()>>;
    /// The step and every unfinished step after it go to `cancelled`,
    /// audited, and are counted off the task's unfinished steps.
    fn cancel_from(&mut self, step_id: i64, actor: &str) -> impl Future<Output = Tx<()>>;
    /// The step goes from `from` to `resolved_manually` with `output`,
    /// audited; the children it completes are released; it is counted off
    /// the task's unfinished steps.
    fn resolve_step(
        &mut self,
        step_id: i64,
        from: StepState,
        output: &Value,
        actor: &str,
    ) -> impl Future<Output = Tx<()>>;
    /// The counts that decide the task's state.
    fn step_counts(&mut self, task_id: i64) -> impl Future<Output = Tx<StepCounts>>;
    /// Moves the task `from -> to` (if it is still `from`), audited.
    fn set_task_state(
        &mut self,
        task_id: i64,
        from: TaskState,
        to: TaskState,
        actor: &str,
    ) -> impl Future<Output = Tx<()>>;
    /// Removes the deadline of the task and its steps.
    fn lift_deadline(&mut self, task_id: i64) -> impl Future<Output = Tx<()>>;
    /// Up to `limit` tasks (id, handler id) past their deadline that are
    /// pending or in progress, or have a `ready` step past it.
    fn due_deadlines(&mut self, limit: u32) -> impl Future<Output = Tx<Vec<(i64, i64)>>>;
    /// Whether the (locked) task's deadline has passed.
    fn deadline_passed(&mut self, task_id: i64) -> impl Future<Output = Tx<bool>>;
    /// The task's `ready` steps past the deadline, except those another
    /// transaction holds (a claim that started in time), go to `error`
    /// with `error`, audited; their ids and names.
    fn stop_ready_steps(
        &mut self,
        task_id: i64,
        error: &StepError,
        actor: &str,
    ) -> impl Future<Output = Tx<Vec<(i64, String)>>>;
}

/// A child of a skipped step that has no dependency left to wait for.
#[derive(Debug, Clone)]
pub(crate) struct Unblocked {
    pub(crate) step_id: i64,
    pub(crate) name: String,
    /// Whether one of its dependencies completed (or was resolved): then
    /// it runs; otherwise all were skipped and it is skipped too.
    pub(crate) satisfied: bool,
}

/// The primitive statements of skipping a decision's unchosen branches
/// ([`crate::skip`]), inside the completion's transaction.
pub(crate) trait SkipPrimitives {
    /// The task's steps named `names`: (id, name), in declaration order.
    fn steps_named(
        &mut self,
        task_id: i64,
        names: &[&str],
    ) -> impl Future<Output = Tx<Vec<(i64, String)>>>;
    /// The step goes `pending -> skipped`, audited; `false` when it was
    /// not pending (then nothing changes).
    fn skip_step(
        &mut self,
        step_id: i64,
        task_id: i64,
        actor: &str,
    ) -> impl Future<Output = Tx<bool>>;
    /// The children of the skipped step wait for one dependency less;
    /// those still `pending` that wait for none now.
    fn unblock_children(&mut self, step_id: i64) -> impl Future<Output = Tx<Vec<Unblocked>>>;
    /// The step goes `pending -> ready`, audited, and workers are woken.
    fn release_step(
        &mut self,
        step_id: i64,
        task_id: i64,
        actor: &str,
    ) -> impl Future<Output = Tx<()>>;
    /// `n` steps of the task are counted off its unfinished steps.
    fn count_off_steps(&mut self, task_id: i64, n: usize) -> impl Future<Output = Tx<()>>;
}

/// The state a task ends in when its last unfinished step is done: a task
/// with a cancelled step ends `cancelled`, otherwise `complete`.
pub(crate) fn finished_state(cancelled_steps: i64) -> TaskState {
    if cancelled_steps > 0 {
        TaskState::Cancelled
    } else {
        TaskState::Complete
    }
}

/// What a task becomes after an operator changed one of its steps: finished
/// when nothing is left to run; back `in_progress` when it was in `error`
/// and no step is in `error` any more; otherwise unchanged (`None`).
pub(crate) fn task_after(task: TaskState, counts: StepCounts) -> Option<TaskState> {
    let to = if counts.unfinished == 0 {
        finished_state(counts.cancelled)
    } else if task == TaskState::Error && counts.errors == 0 {
        TaskState::InProgress
    } else {
        return None;
    };
    (to != task).then_some(to)
}

/// Checks a task transition in debug builds.
pub(crate) fn checked(from: TaskState, to: TaskState) -> (TaskState, TaskState) {
    debug_assert!(
        from.can_transition_to(to),
        "illegal task transition {from} -> {to}"
    );
    (from, to)
}

async fn settle<P: Primitives>(p: &mut P, task_id: i64, task: TaskState, actor: &str) -> Tx<()> {
    let counts = p.step_counts(task_id).await?;
    if let Some(to) = task_after(task, counts) {
        let (from, to) = checked(task, to);
        p.set_task_state(task_id, from, to, actor).await?;
    }
    Ok(())
}

/// Applies an operator action: the one implementation both stores run.
pub(crate) async fn apply<P: Primitives + FanOutPrimitives>(
    p: &mut P,
    action: &OperatorAction,
    actor: &str,
) -> Tx<()> {
    match action {
        OperatorAction::RetryTask(task_id) => {
            let state = p.lock_task(task_id.0).await?;
            if state != TaskState::Error {
                return conflict(
                    "task",
                    task_id.0,
                    state,
                    "only a task in `error` can be retried".to_owned(),
                );
            }
            p.lift_deadline(task_id.0).await?;
            p.retry_failed(task_id.0, None, actor).await?;
            let (from, to) = checked(state, TaskState::InProgress);
            p.set_task_state(task_id.0, from, to, actor).await?;
        }
        OperatorAction::CancelTask(task_id) => {
            close_task(p, task_id.0, TaskState::Cancelled, "cancelled", actor).await?;
        }
        OperatorAction::ResolveTask(task_id) => {
            close_task(p, task_id.0, TaskState::ResolvedManually, "resolved", actor).await?;
        }
        OperatorAction::RetryStep(step_id) => {
            let task_id = p.task_of_step(step_id.0).await?;
            let task = p.lock_task(task_id).await?;
            let step = p.lock_step(step_id.0).await?;
            if step != StepState::Error {
                return conflict(
                    "step",
                    step_id.0,
                    step,
                    "only a step in `error` can be retried".to_owned(),
                );
            }
            refuse_collected(p, step_id.0, step, "retried").await?;
            p.lift_deadline(task_id).await?;
            p.retry_failed(task_id, Some(step_id.0), actor).await?;
            settle(p, task_id, task, actor).await?;
        }
        OperatorAction::CancelStep(step_id) => {
            let (task_id, task, step) = lock_unfinished_step(p, step_id.0, "cancelled").await?;
            match p.role(step_id.0).await? {
                Role::Instance => {
                    return conflict(
                        "step",
                        step_id.0,
                        step,
                        "it is one item of a fan-out, whose step would wait for it for ever; \
                         cancel the fan-out step itself (its group row) or the task"
                            .to_owned(),
                    );
                }
                Role::Group => p.cancel_instances(step_id.0, actor).await?,
                Role::Plain => {}
            }
            p.cancel_from(step_id.0, actor).await?;
            settle(p, task_id, task, actor).await?;
        }
        OperatorAction::ResolveStep { step_id, output } => {
            let (task_id, task, step) = lock_unfinished_step(p, step_id.0, "resolved").await?;
            refuse_collected(p, step_id.0, step, "resolved").await?;
            let role = p.role(step_id.0).await?;
            if role == Role::Group {
                return conflict(
                    "step",
                    step_id.0,
                    step,
                    "it is a fan-out running its items; resolve its unfinished items (each \
                     with its output) or the task"
                        .to_owned(),
                );
            }
            p.resolve_step(step_id.0, step, output, actor).await?;
            if role == Role::Instance {
                // Counted off its group like a success: the next item is
                // released, and the last one completes the group.
                crate::fan_out::item_finished(p, step_id.0, actor).await?;
            }
            settle(p, task_id, task, actor).await?;
        }
    }
    Ok(())
}

/// Ends up to `limit` tasks past their deadline, each locked first: its
/// `ready` steps go to `error` with `error` (pending ones never become
/// runnable: they are stopped when released), and the task goes to
/// `error` when it was pending or in progress. The one implementation both
/// stores run; an operator retry lifts the deadline
/// ([`Primitives::lift_deadline`]), so a retried task runs to its end.
pub(crate) async fn expire_deadlines<P: Primitives>(
    p: &mut P,
    error: &StepError,
    actor: &str,
    limit: u32,
) -> Tx<Vec<ExpiredTask>> {
    let mut expired = Vec::new();
    for (task_id, handler_id) in p.due_deadlines(limit).await? {
        let state = p.lock_task(task_id).await?;
        if !p.deadline_passed(task_id).await? {
            continue; // lifted by an operator meanwhile
        }
        let steps = p.stop_ready_steps(task_id, error, actor).await?;
        let failed = matches!(state, TaskState::Pending | TaskState::InProgress);
        if failed {
            let (from, to) = checked(state, TaskState::Error);
            p.set_task_state(task_id, from, to, actor).await?;
        }
        if failed || !steps.is_empty() {
            expired.push(ExpiredTask {
                task_id: TaskId(task_id),
                handler_id,
                steps: steps
                    .into_iter()
                    .map(|(id, name)| (StepId(id), name))
                    .collect(),
                failed,
            });
        }
    }
    Ok(expired)
}

/// Refuses to change a collected item (`on_item_error = "collect"`): its
/// failure is its result, and its group counted it off already.
async fn refuse_collected<P: FanOutPrimitives>(
    p: &mut P,
    step_id: i64,
    state: StepState,
    verb: &str,
) -> Tx<()> {
    if state == StepState::Error && p.collected(step_id).await? {
        return conflict(
            "step",
            step_id,
            state,
            format!(
                "it is an item of a fan-out with `on_item_error = \"collect\"`, whose failure is \
                 its result (the steps after the fan-out receive it as an `Err`), so it cannot be \
                 {verb}; start a new task to run the item again"
            ),
        );
    }
    Ok(())
}

/// Locks a step and its task (task first, as every writer does) and checks
/// both are unfinished; `verb` names the action in refusals.
async fn lock_unfinished_step<P: Primitives>(
    p: &mut P,
    step_id: i64,
    verb: &str,
) -> Tx<(i64, TaskState, StepState)> {
    let task_id = p.task_of_step(step_id).await?;
    let task = p.lock_task(task_id).await?;
    if task.is_finished() {
        return conflict(
            "task",
            task_id,
            task,
            format!("its steps can no longer be {verb}"),
        );
    }
    let step = p.lock_step(step_id).await?;
    if step.is_finished() {
        return conflict(
            "step",
            step_id,
            step,
            format!("only an unfinished step can be {verb}"),
        );
    }
    Ok((task_id, task, step))
}

/// Ends an unfinished task by hand: its unfinished steps and the task go
/// to `to` (`cancelled` or `resolved_manually`).
async fn close_task<P: Primitives>(
    p: &mut P,
    task_id: i64,
    to: TaskState,
    verb: &str,
    actor: &str,
) -> Tx<()> {
    let state = p.lock_task(task_id).await?;
    if state.is_finished() {
        return conflict(
            "task",
            task_id,
            state,
            format!("only an unfinished task can be {verb}"),
        );
    }
    let step_state = match to {
        TaskState::Cancelled => StepState::Cancelled,
        _ => StepState::ResolvedManually,
    };
    p.close_steps(task_id, step_state, actor).await?;
    let (from, to) = checked(state, to);
    p.set_task_state(task_id, from, to, actor).await
}

/// Runs a future that never waits (the SQLite primitives are synchronous
/// calls behind `async fn`) to completion on the current thread.
#[cfg(feature = "sqlite")]
pub(crate) fn run_now<F: Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("synchronous store primitives never wait"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(unfinished: i64, cancelled: i64, errors: i64) -> StepCounts {
        StepCounts {
            unfinished,
            cancelled,
            errors,
        }
    }

    #[test]
    fn task_state_after_a_step_action() {
        use TaskState::*;
        assert_eq!(task_after(InProgress, counts(0, 0, 0)), Some(Complete));
        assert_eq!(task_after(InProgress, counts(0, 1, 0)), Some(Cancelled));
        assert_eq!(task_after(Error, counts(0, 0, 0)), Some(Complete));
        assert_eq!(task_after(Error, counts(2, 0, 0)), Some(InProgress));
        assert_eq!(task_after(Error, counts(2, 0, 1)), None);
        assert_eq!(task_after(InProgress, counts(2, 1, 0)), None);
        assert_eq!(task_after(Pending, counts(0, 1, 0)), Some(Cancelled));
        // Every result is a legal transition.
        for from in [Pending, InProgress, Error] {
            for c in [
                counts(0, 0, 0),
                counts(0, 1, 0),
                counts(1, 0, 0),
                counts(1, 0, 1),
            ] {
                if let Some(to) = task_after(from, c) {
                    assert!(from.can_transition_to(to), "{from} -> {to}");
                }
            }
        }
    }
}
