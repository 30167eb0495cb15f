use tasker::prelude::*;

pub struct Events;

#[task_handler]
impl Events {
    #[step(events = ["Payment Processed", "task.completed", "billing.sent", "billing.sent", "single"])]
    async fn bill() -> StepResult<()> {
        Ok(())
    }

    #[step(events = "billing.sent")]
    async fn not_a_list() -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
