use tasker::prelude::*;

pub struct Checkout;

#[task_handler(namespace = "ui", step_defaults = "Checkout::defaults")]
impl Checkout {
    #[step]
    async fn charge() -> StepResult<()> {
        Ok(())
    }
}

fn main() {}
