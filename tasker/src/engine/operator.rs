//! Operator actions on tasks and steps (retry, cancel, resolve) and the
//! events they publish.

use super::Tasker;
use crate::error::Result;
use crate::events::{names, Event};
use crate::ids::{StepId, TaskId};
use crate::state::{StepState, TaskState};
use crate::store::{OperatorAction, Store, TaskRecord};

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
