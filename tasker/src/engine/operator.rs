//! Operator actions on tasks and steps (retry, cancel, resolve) and the
//! events they publish.

use super::Tasker;
use crate::error::Result;
use crate::events::{names, Event};
use crate::ids::{StepId, TaskId};
use crate::state::{StepState, TaskState};
use crate::step::StepError;
use crate::store::{
    ExpiredTask, OperatorAction, PurgeFilter, Store, TaskRecord, DEADLINE_EXCEEDED,
};

/// Tasks ended per deadline statement.
const DEADLINE_BATCH: u32 = 200;

/// The pause between purge batches: workers' claims get the tables.
const PURGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

impl<S: Store> Tasker<S> {
    /// Gives the failed steps of a failed task a new set of attempts.
    pub async fn retry_task(&self, task_id: TaskId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::RetryTask(task_id), actor)
            .await
    }

    /// Gives one failed step a new set of attempts.
    pub async fn retry_step(&self, step_id: StepId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::RetryStep(step_id), actor)
            .await
    }

    /// Cancels a task and its unfinished steps; a running attempt's result
    /// is discarded.
    pub async fn cancel_task(&self, task_id: TaskId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::CancelTask(task_id), actor)
            .await
    }

    /// Marks a task done by hand: its unfinished steps are resolved without
    /// an output and the task ends `resolved_manually`.
    pub async fn resolve_task(&self, task_id: TaskId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::ResolveTask(task_id), actor)
            .await
    }

    /// Cancels one unfinished step and every unfinished step after it; the
    /// rest of the task runs on, and the task ends `cancelled` once nothing
    /// else is left to run.
    pub async fn cancel_step(&self, step_id: StepId, actor: &str) -> Result<()> {
        self.operator(OperatorAction::CancelStep(step_id), actor)
            .await
    }

    /// Marks a step done by hand with `output` for the steps that read it.
    pub async fn resolve_step(
        &self,
        step_id: StepId,
        output: serde_json::Value,
        actor: &str,
    ) -> Result<()> {
        let output = crate::payload::check_owned(output, "output")?;
        self.operator(OperatorAction::ResolveStep { step_id, output }, actor)
            .await
    }

    /// Deletes the tasks `filter` names, with their steps and audit rows,
    /// in batches of `filter.batch` (one short transaction each, pausing
    /// briefly between them so workers keep claiming); returns how many
    /// tasks were deleted. Only finished tasks (and, when named, tasks in
    /// `error`) are ever deleted, never one with a step running.
    ///
    /// ```no_run
    /// # async fn demo(tasker: tasker::Tasker<impl tasker::Store>) -> tasker::Result<()> {
    /// use tasker::store::PurgeFilter;
    /// let month_ago = chrono::Utc::now() - chrono::Duration::days(30);
    /// let deleted = tasker
    ///     .purge(&PurgeFilter {
    ///         states: vec![tasker::TaskState::Complete],
    ///         finished_before: month_ago,
    ///         namespace: None,
    ///         name: None,
    ///         batch: 500,
    ///     })
    ///     .await?;
    /// println!("{deleted} tasks purged");
    /// # Ok(()) }
    /// ```
    pub async fn purge(&self, filter: &PurgeFilter) -> Result<u64> {
        filter.check()?;
        let mut total = 0;
        loop {
            let deleted = self.inner.store.purge_tasks(filter).await?;
            total += deleted;
            if deleted < u64::from(filter.batch) {
                break;
            }
            tokio::time::sleep(PURGE_PAUSE).await;
        }
        if total > 0 {
            tracing::info!(deleted = total, states = ?filter.states, "purged finished tasks");
        }
        Ok(total)
    }

    /// Runs the configured [`RetentionPolicy`](crate::RetentionPolicy) once
    /// if it is due (workers call this from their maintenance tick).
    pub(crate) async fn run_retention_if_due(&self) {
        let Some(policy) = &self.inner.config.retention else {
            return;
        };
        {
            let mut ran = crate::sync::lock(&self.inner.retention_ran);
            if ran.is_some_and(|at| at.elapsed() < policy.every) {
                return;
            }
            *ran = Some(std::time::Instant::now());
        }
        for rule in &policy.rules {
            let Ok(age) = chrono::Duration::from_std(rule.older_than) else {
                continue;
            };
            let filter = PurgeFilter {
                states: rule.states.clone(),
                finished_before: chrono::Utc::now() - age,
                namespace: None,
                name: None,
                batch: policy.batch,
            };
            if let Err(e) = self.purge(&filter).await {
                tracing::warn!("retention: purging {:?} failed: {e}", rule.states);
            }
        }
    }

    /// Ends tasks past their deadline (`max_execution_time`) now: steps not
    /// yet started go to `error` with `DeadlineExceeded`, the task to
    /// `error`, with `task.deadline_exceeded`, `task.failed` and
    /// `workflow.task_finalized` events. Workers do this on every
    /// maintenance tick (a third of the lease); returns how many tasks it
    /// ended.
    pub async fn expire_deadlines(&self) -> usize {
        let error = StepError::permanent(
            "the task's deadline (max_execution_time) passed before this step started",
        )
        .with_class(DEADLINE_EXCEEDED);
        let mut ended = 0;
        loop {
            let expired = match self
                .store()
                .expire_deadlines(&error, "deadline", DEADLINE_BATCH)
                .await
            {
                Ok(expired) => expired,
                Err(e) => {
                    tracing::warn!("ending tasks past their deadline failed: {e}");
                    return ended;
                }
            };
            let full = expired.len() as u32 >= DEADLINE_BATCH;
            ended += expired.len();
            for task in expired {
                self.announce_expired(task, &error);
            }
            if !full {
                return ended;
            }
        }
    }

    fn announce_expired(&self, task: ExpiredTask, error: &StepError) {
        let Some(handler) = self.handler_by_id(task.handler_id) else {
            return;
        };
        tracing::warn!(
            task_id = task.task_id.0,
            steps = task.steps.len(),
            "task {} passed its deadline; {} steps will not run",
            task.task_id,
            task.steps.len()
        );
        let names: Vec<serde_json::Value> = task
            .steps
            .iter()
            .map(|(_, name)| name.as_str().into())
            .collect();
        self.publish(
            handler
                .event(names::TASK_DEADLINE_EXCEEDED)
                .with_task(task.task_id)
                .with_count(task.steps.len() as u64)
                .with_message(error.message().to_owned())
                .with_data(names.into()),
        );
        if task.failed {
            self.publish(
                handler
                    .event(names::TASK_FAILED)
                    .with_task(task.task_id)
                    .with_error(error.class(), error.message()),
            );
            self.publish(
                handler
                    .event(names::WORKFLOW_TASK_FINALIZED)
                    .with_task(task.task_id)
                    .with_task_state(TaskState::Error),
            );
        }
    }

    async fn operator(&self, action: OperatorAction, actor: &str) -> Result<()> {
        crate::payload::check_text(actor, "actor")?;
        tracing::info!(?action, actor, "operator action");
        let store = &self.inner.store;
        let task_id = match &action {
            OperatorAction::RetryTask(id)
            | OperatorAction::CancelTask(id)
            | OperatorAction::ResolveTask(id) => *id,
            OperatorAction::RetryStep(step)
            | OperatorAction::CancelStep(step)
            | OperatorAction::ResolveStep { step_id: step, .. } => {
                store.task_of_step(*step).await?
            }
        };
        let before = store.task(task_id).await?;
        store.operator_action(action.clone(), actor).await?;
        let after = store.task(task_id).await?;
        self.publish_operator_events(&action, &before, &after, actor);
        Ok(())
    }

    /// Events for what an operator action changed, read from the task
    /// before and after.
    fn publish_operator_events(
        &self,
        action: &OperatorAction,
        before: &TaskRecord,
        after: &TaskRecord,
        actor: &str,
    ) {
        let task_event = |name: &'static str| {
            Event::new(name)
                .with_task(after.task_id)
                .with_handler(&after.namespace, &after.name, &after.version)
                .with_actor(actor)
        };
        if matches!(action, OperatorAction::RetryTask(_)) {
            self.publish(task_event(names::TASK_RETRY_REQUESTED));
        }
        if before.state != after.state && after.state == TaskState::Cancelled {
            self.publish(task_event(names::TASK_CANCELLED));
        }
        if before.state != after.state && after.state == TaskState::ResolvedManually {
            self.publish(task_event(names::TASK_RESOLVED_MANUALLY));
        }
        for (old, new) in before.steps.iter().zip(&after.steps) {
            let name = match (old.state, new.state) {
                (StepState::Error, StepState::Ready) => names::STEP_RETRY_REQUESTED,
                (from, StepState::Cancelled) if from != StepState::Cancelled => {
                    names::STEP_CANCELLED
                }
                (from, StepState::ResolvedManually) if from != StepState::ResolvedManually => {
                    names::STEP_RESOLVED_MANUALLY
                }
                _ => continue,
            };
            let mut event = task_event(name).with_step(new.step_id, &new.name);
            if let Some(output) = new
                .output
                .clone()
                .filter(|_| name == names::STEP_RESOLVED_MANUALLY)
            {
                event = event.with_data(output);
            }
            self.publish(event);
        }
        if before.state != after.state && after.state == TaskState::Complete {
            self.publish(task_event(names::TASK_COMPLETED));
        }
        if before.state != after.state
            && matches!(
                after.state,
                TaskState::Complete | TaskState::Cancelled | TaskState::ResolvedManually
            )
        {
            self.publish(task_event(names::WORKFLOW_TASK_FINALIZED).with_task_state(after.state));
        }
    }
}
