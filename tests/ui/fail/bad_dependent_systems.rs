use tasker::prelude::*;

pub struct Checkout;

#[task_handler(namespace = "ui", metadata = { owner = 7 })]
impl Checkout {
    #[step(dependent_systems = ["stripe api"])]
    async fn charge() -> StepResult<()> {
        Ok(())
    }

    #[step(dependent_systems = ["stripe", "stripe"])]
    async fn refund() -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
